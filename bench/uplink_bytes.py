"""What a site's uplink carries: bytes per event and per idle hour, TLS included.

Runs on one machine: a central broker (TLS with client certificates, as
deploy/mosquitto/central.conf), InfluxDB and the hub; a site broker; one edge
whose uplink goes through a counting TCP proxy to the central broker's TLS
port. Device messages are published on the site broker, so only what the edge
(or, with ``--bridge``, a Mosquitto bridge of the site broker) sends over the
uplink is counted: TLS records both ways, handshake included, TCP/IP headers
not (about 52 bytes a packet more on the air).

Phases: idle (the site's devices repeating their status every 30 s, as the
simulators do), then events one a second, then a burst, then (``--outage``)
the proxy dropping every connection for a while as events come one a second,
and what crosses once it forwards again. Not a test: run it by
hand and put the figures in docs/performance.md::

    .venv/bin/python bench/uplink_bytes.py --idle 120 --slow 30 --burst 2000 --outage 60
    .venv/bin/python bench/uplink_bytes.py --bridge --idle 120 --slow 30 --burst 2000 --outage 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from riverguard import broker_acl, certs
from riverguard.config import load_config
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.services import Influxd, Mosquitto, TlsListener, free_port, riverguard_process
from riverguard.settings import DEFAULT_CONFIG
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.models import DeviceStatus
from riverguard.wire.times import utcnow

SITE = "danshui-bridge"
EDGE = broker_acl.edge_username(SITE)
STATUS_EVERY_S = 30.0


class CountingProxy:
    """Forwards TCP to ``port`` on loopback and counts the bytes each way."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.up = 0  # site -> centre
        self.down = 0
        self.port = 0
        self.open = True
        self._writers: list[asyncio.StreamWriter] = []

    def cut(self) -> None:
        """Pull the cable: every connection dropped, none taken until ``mend``."""
        self.open = False
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    def mend(self) -> None:
        self.open = True

    async def start(self) -> None:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]

    def reset(self) -> tuple[int, int]:
        counted = (self.up, self.down)
        self.up = self.down = 0
        return counted

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        far_reader, far_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, up: bool) -> None:
            with_errors = (ConnectionError, OSError)
            try:
                while data := await source.read(65536):
                    if up:
                        self.up += len(data)
                    else:
                        self.down += len(data)
                    sink.write(data)
                    await sink.drain()
            except with_errors:
                pass
            finally:
                sink.close()

        if not self.open:  # the cable is out: nothing gets through
            writer.transport.abort()
            far_writer.transport.abort()
            return
        self._writers += [writer, far_writer]
        # The measurement over, asyncio cancels this: the connection ends with it.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pipe(reader, far_writer, True), pipe(far_reader, writer, False))


def _bridge_lines(proxy_port: int, tls: Path, password: str) -> list[str]:
    """A Mosquitto bridge of the site broker to the central one, through the proxy."""
    site = f"{topics.ROOT}/{SITE}"
    out = ["events", "events/batch", "snapshots/+", "devices/+/status", "edge/status"]
    into = ["speakers/+/announce", "speakers/+/stop", "committed"]
    return [
        "connection central",
        f"address 127.0.0.1:{proxy_port}",
        f"remote_username {EDGE}",
        f"remote_password {password}",
        f"remote_clientid {EDGE}-bridge",
        "cleansession false",
        "bridge_protocol_version mqttv50",
        f"bridge_cafile {tls / 'ca.crt'}",
        f"bridge_certfile {tls / f'{EDGE}.crt'}",
        f"bridge_keyfile {tls / f'{EDGE}.key'}",
        "bridge_insecure false",
        *(f"topic {site}/{t} out 1" for t in out),
        f"topic {site}/speakers/+/ack out 1",
        *(f"topic {site}/{t} in 1" for t in into),
        f"topic {topics.hub_status()} in 1",
    ]


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:  # noqa: PLR0915
    config = load_config(DEFAULT_CONFIG)
    tls = tmp / "tls"
    certs.make_all(tls, certs.plan(["127.0.0.1"], [(SITE, [])]))
    names = [identity.username for identity in broker_acl.identities(config)]
    access = broker_acl.broker_access(config, {name: f"pw-{name}-bench" for name in names})
    logins = access.passwords
    central = Mosquitto(
        tmp / "central",
        free_port(),
        access,
        tls=TlsListener(
            free_port(),
            "127.0.0.1",
            tls / "ca.crt",
            tls / "broker-central.crt",
            tls / "broker-central.key",
            require_certificate=True,
        ),
    )
    site_broker = Mosquitto(tmp / "site", free_port(), access)
    influxd = Influxd(tmp / "influx", free_port())
    assert central.tls is not None
    proxy = CountingProxy(central.tls.port)
    await proxy.start()

    def login(name: str, port: int) -> BrokerSettings:
        return BrokerSettings(host="127.0.0.1", port=port, username=name, password=logins[name])

    hub_db = tmp / "hub" / "hub.db"
    hub = riverguard_process(
        "hub",
        ["hub"],
        {
            **login("hub", central.port).env("RIVERGUARD_BROKER"),
            "RIVERGUARD_DATA_DIR": str(tmp / "hub"),
            "RIVERGUARD_HTTP_PORT": str(free_port()),
            "RIVERGUARD_INFLUX_URL": influxd.url,
        },
        tmp / "hub.log",
    )
    uplink = BrokerSettings(
        host="127.0.0.1",
        port=proxy.port,
        username=EDGE,
        password=logins[EDGE],
        tls=True,
        ca_file=tls / "ca.crt",
        certfile=tls / f"{EDGE}.crt",
        keyfile=tls / f"{EDGE}.key",
    )
    site_login = login(EDGE, site_broker.port)
    if args.bridge:
        # One broker for the edge (the site's); the bridge carries the uplink.
        edge_env = site_login.env("RIVERGUARD_BROKER")
    else:
        edge_env = {
            **uplink.env("RIVERGUARD_BROKER"),
            **site_login.env("RIVERGUARD_FIELD_BROKER"),
        }
    edge = riverguard_process(
        "edge",
        ["edge", "--site", SITE],
        {**edge_env, "RIVERGUARD_DATA_DIR": str(tmp / "edge")},
        tmp / "edge.log",
    )
    started: list[Any] = []
    try:
        for service in (central, influxd):
            service.start()
            started.append(service)
        if args.bridge:
            site_broker.directory.mkdir(parents=True, exist_ok=True)
            site_broker.write_config()
            lines = _bridge_lines(proxy.port, tls, logins[EDGE])
            with site_broker.conf_path.open("a", encoding="utf-8") as conf:
                conf.write("\n".join(lines) + "\n")
            site_broker.process.start()
        else:
            site_broker.start()
        started.append(site_broker)
        hub.start()
        started.append(hub)
        edge.start()
        started.append(edge)
        sim = login(broker_acl.SIM, site_broker.port)
        async with make_client(sim) as device:
            devices = config.devices_of(SITE)

            async def statuses() -> None:
                while True:
                    for d in devices:
                        status = DeviceStatus(online=True, ts=utcnow()).model_dump_json()
                        await device.publish(
                            topics.field_status(SITE, d.type, d.id), status, qos=1, retain=True
                        )
                    await asyncio.sleep(STATUS_EVERY_S)

            def stored() -> int:
                if not hub_db.exists():
                    return 0
                try:
                    with sqlite3.connect(hub_db) as db:
                        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
                except sqlite3.OperationalError:
                    return 0  # the hub has not made its tables yet

            # Settled: the edge online at the hub (its first event stored proves the path).
            seq = 0

            async def report(state: str = "breach") -> None:
                nonlocal seq
                seq += 1
                payload = json.dumps(fence_report(seq, "z1", state)).encode()
                await device.publish(
                    topics.field_report(SITE, "fence", "db-fence-01"), payload, qos=1
                )

            async def first_stored() -> bool:
                await report()  # again until the edge is subscribed and the hub stores it
                return stored() >= 1

            await wait_for(first_stored, 60, interval=0.2, what="the first event stored")
            status_task = asyncio.create_task(statuses())
            await asyncio.sleep(5)
            proxy.reset()
            await asyncio.sleep(args.idle)
            idle = proxy.reset()
            status_task.cancel()
            results: dict[str, Any] = {
                "variant": "bridge" if args.bridge else "second connection",
                "idle_s": args.idle,
                "idle_bytes": {"up": idle[0], "down": idle[1]},
                "idle_per_hour": round((idle[0] + idle[1]) * 3600 / args.idle),
                "status_devices": len(devices),
            }
            before = stored()
            proxy.reset()
            for _ in range(args.slow):
                await report()
                await asyncio.sleep(1.0)
            await wait_for(
                lambda: stored() >= before + args.slow,
                60,
                interval=0.2,
                what="the slow events stored",
            )
            await asyncio.sleep(2)  # the commit's own bytes
            slow = proxy.reset()
            results["slow"] = {
                "events": args.slow,
                "bytes": {"up": slow[0], "down": slow[1]},
                "per_event": round((slow[0] + slow[1]) / args.slow, 1),
            }
            before = stored()
            for _ in range(args.burst):
                await report()
            await wait_for(
                lambda: stored() >= before + args.burst, 120, interval=0.2, what="the burst stored"
            )
            await asyncio.sleep(2)
            burst = proxy.reset()
            results["burst"] = {
                "events": args.burst,
                "bytes": {"up": burst[0], "down": burst[1]},
                "per_event": round((burst[0] + burst[1]) / args.burst, 1),
            }
            if args.outage:
                results["outage"] = await _outage(args, proxy, report, stored)
            return results
    finally:
        for service in reversed(started):
            service.stop()


async def _outage(
    args: argparse.Namespace,
    proxy: CountingProxy,
    report: Callable[[], Awaitable[None]],
    stored: Callable[[], int],
) -> dict[str, Any]:
    """The cable out for ``args.outage`` s while events come one a second; then the bytes
    until every one of them is stored (what an outage costs the uplink once it is back)."""
    before = stored()
    proxy.cut()
    started = time.monotonic()
    count = 0
    while time.monotonic() - started < args.outage:
        await report()
        count += 1
        await asyncio.sleep(1.0)
    proxy.reset()
    proxy.mend()
    back = time.monotonic()
    await wait_for(
        lambda: stored() >= before + count, 180, interval=0.2, what="the outage's events stored"
    )
    stored_s = time.monotonic() - back
    await asyncio.sleep(10)  # resends and commits still under way are counted too
    up, down = proxy.reset()
    return {
        "outage_s": args.outage,
        "events": count,
        "stored_s_after_return": round(stored_s, 1),
        "bytes_after_return": {"up": up, "down": down},
        "per_event": round((up + down) / max(count, 1), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, default=120, help="seconds of idle measured")
    parser.add_argument("--slow", type=int, default=30, help="events at one a second")
    parser.add_argument("--burst", type=int, default=2000, help="events as fast as published")
    parser.add_argument("--bridge", action="store_true", help="a Mosquitto bridge instead")
    parser.add_argument(
        "--outage", type=float, default=0, help="seconds of a cut uplink (events one a second)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riverguard-uplink-") as tmp:
        print(json.dumps(asyncio.run(measure(args, Path(tmp))), indent=2))


if __name__ == "__main__":
    main()
