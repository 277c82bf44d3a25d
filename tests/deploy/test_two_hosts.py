"""A site and the hub on two machines (network namespaces), the uplink over TLS only, cut.

The site machine runs its own broker, the edge (only its site's part of the
configuration, from ``riverguard site-config``), a simulated speaker, and the
test's swimmer (fence reports on the site broker). The hub machine runs the
central broker (plain on its loopback for the hub, TLS with client
certificates on the link), InfluxDB and the hub. The only way between them is
the veth pair, and the edge's uplink crosses it over TLS. Both brokers run
deploy/mosquitto/central.conf and site.conf as shipped (system paths replaced
by the test's files), with the logins of ``riverguard broker-logins`` and the
certificates of ``riverguard certs``.

While the swimmer crosses the fences, the cable is pulled for 60 s:
the site's speaker warns from the site alone; the hub shows the edge offline
and the site's zones unguarded; once the cable is back every event is stored
once, in order, in SQLite and InfluxDB, reaches the console, and the alarm's
timeline shows the edge's own warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from riverguard import broker_acl, broker_logins, certs
from riverguard.config import Config, load_config
from riverguard.hub_session import HubSession
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.mqtt_client import Client, MqttError
from riverguard.services import Influxd, ManagedProcess, riverguard_process
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.socket_auth import subprotocols
from tests.conftest import EXAMPLE_CONFIG, REPO
from tests.deploy.netns import Hosts, Tunnel, accepts, check_netns
from tests.deployment import shipped_mosquitto_conf

pytestmark = [pytest.mark.integration, pytest.mark.netns, pytest.mark.timeout(400)]

SITE = "danshui-bridge"
EDGE = broker_acl.edge_username(SITE)
SPEAKER = "db-spk-01"
# The swimmer: (device, zone, state), one report every SWIM_EVERY_S while the cable is out.
CROSSING = [
    ("db-fence-01", "z1", "breach"),
    ("db-fence-01", "z1", "clear"),
    ("db-fence-02", "z2", "breach"),
    ("db-fence-02", "z2", "clear"),
] * 4
SWIM_EVERY_S = 2.5
CUT_S = 60.0
# Ports inside the namespaces: each machine has its own.
CENTRAL_PORT, CENTRAL_TLS_PORT, INFLUX_PORT, HUB_PORT = 1883, 8883, 8086, 8080
SITE_BROKER_PORT, EDGE_HTTP_PORT = 1883, 9100
# The edge's keepalive (riverguard.mqtt.make_client) and the broker's grace: 1.5 x 15 s.
OFFLINE_TIMEOUT_S = 22.5


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    refused = check_netns()
    if refused is not None:
        pytest.skip(refused)
    made = Hosts()
    try:
        made.open()
        yield made
    finally:
        made.close()


def _config(tmp_path: Path) -> tuple[Config, Path]:
    """The example, the site warning by itself at once (``always``; ``when_hub_unreachable``
    would add its grace, a wait for an officer, to the figure)."""
    raw = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    for site in raw["sites"]:
        if site["id"] == SITE:
            site.update(auto_warning="always")
    config = Config.model_validate(raw)
    path = tmp_path / "riverguard.json"
    path.write_text(config.model_dump_json(), encoding="utf-8")
    return config, path


def _in(namespace: str, process: ManagedProcess) -> ManagedProcess:
    """``process`` run inside ``namespace`` (``ip netns exec`` execs: the PID is its own)."""
    process.argv = ["ip", "netns", "exec", namespace, *process.argv]
    return process


@dataclass
class ShippedBroker:
    """Mosquitto with one of deploy/mosquitto/*.conf as shipped, inside a namespace: its
    system paths replaced by the test's files (``riverguard broker-logins``' and
    ``riverguard certs``'), its listeners and ports as they are (each machine its own)."""

    process: ManagedProcess

    @classmethod
    def start(
        cls, conf: str, namespace: str, directory: Path, access: Path, certs_dir: Path
    ) -> ShippedBroker:
        directory.mkdir(parents=True, exist_ok=True)
        own = directory / "access"  # each broker its own copy: the plugin may write its file
        shutil.copytree(access, own)
        access = own
        conf_path = shipped_mosquitto_conf(conf, directory, access, certs_dir)
        argv = ["ip", "netns", "exec", namespace, "mosquitto", "-c", str(conf_path)]
        process = ManagedProcess(conf, argv, directory / "mosquitto.log")
        process.start()
        ready = functools.partial(accepts, namespace, "127.0.0.1", 1883)
        process.wait_until(ready, 15, "listening")
        return cls(process)

    def stop(self) -> None:
        self.process.stop()


def _log(process: ManagedProcess) -> str:
    return process.log_path.read_text(encoding="utf-8", errors="replace")


class Console:
    """The duty console's WebSocket, through a tunnel into the hub machine."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, dict[str, Any]]] = []  # (monotonic, message)

    async def pump(self, url: str, token: str) -> None:
        async with websockets.connect(url, max_size=None, subprotocols=subprotocols(token)) as ws:
            async for raw in ws:
                self.messages.append((time.monotonic(), json.loads(raw)))

    def of(self, kind: str, match: Callable[[dict[str, Any]], bool]) -> list[float]:
        return [at for at, m in self.messages if m["type"] == kind and match(m["data"])]

    def edge_online(self) -> bool:
        for _, message in reversed(self.messages):
            data = message["data"]
            if message["type"] == "edge" and data["site"] == SITE:
                return bool(data["online"])
            if message["type"] == "hello":
                return any(e["site"] == SITE and e["online"] for e in data["edges"])
        return False

    def event_ids(self) -> list[str]:
        return [m["data"]["id"] for _, m in self.messages if m["type"] == "event"]


@dataclass
class Run:
    """One run of the two machines: what the steps of the scenario use."""

    hosts: Hosts
    central: ShippedBroker
    edge: ManagedProcess
    speaker: ManagedProcess
    hub_dir: Path
    api: httpx.AsyncClient  # the hub's HTTP, through a tunnel
    influx: httpx.AsyncClient  # InfluxDB's HTTP, through a tunnel
    console: Console
    hub_port: int  # the tunnel's end at the hub's HTTP
    site_port: int  # ... at the site broker
    link_port: int  # ... at the central broker's TLS listener, from the site machine
    passwords: dict[str, str]  # of the console's users
    sim: BrokerSettings
    uplink: BrokerSettings
    tls: Path
    tmp_path: Path


@contextlib.asynccontextmanager
async def _running(*processes: ManagedProcess) -> AsyncIterator[None]:
    try:
        for process in processes:
            process.start()
        yield
    finally:
        for process in reversed(processes):
            process.stop()


async def _refused(
    settings: BrokerSettings, broker: ShippedBroker, line: str, seen: list[str]
) -> None:
    """The client does not get in over the link, and the central broker's log says why
    in a line after those of the refusals before (one refusal, one line)."""
    logged_before = len(_log(broker.process))
    with pytest.raises(MqttError):
        async with asyncio.timeout(20), make_client(settings):
            pass

    def logged() -> str:
        fresh = [
            entry for entry in _log(broker.process)[logged_before:].splitlines() if line in entry
        ]
        return fresh[0] if fresh else ""

    seen.append(await wait_for(logged, 10, what=f"central broker log line with {line!r}"))


async def test_the_site_guards_through_a_cut_uplink_and_the_hub_gets_everything_once(
    hosts: Hosts, tmp_path: Path
) -> None:
    config, config_path = _config(tmp_path)
    site_config = tmp_path / "site.json"
    subprocess.run(
        [sys.executable, "-m", "riverguard", "site-config", "--config", str(config_path),
         "--site", SITE, "--out", str(site_config)],
        check=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    tls = tmp_path / "tls"
    certs.make_all(
        tls, certs.plan([hosts.hub_ip, "127.0.0.1"], [(SITE, [hosts.site_ip, "127.0.0.1"])])
    )
    access = tmp_path / "broker-logins"
    broker_logins.write(config_path, access, devices=False)
    logins: dict[str, str] = json.loads((access / broker_logins.LOGINS).read_text("utf-8"))
    # The site broker's certificate under the name site.conf gives it.
    site_certs = tmp_path / "site-certs"
    site_certs.mkdir()
    shutil.copy(tls / "ca.crt", site_certs / "ca.crt")
    for suffix in ("crt", "key"):
        shutil.copy(tls / f"broker-{SITE}.{suffix}", site_certs / f"broker-site.{suffix}")

    def login(username: str, host: str, port: int, **tls_files: Any) -> BrokerSettings:
        return BrokerSettings(
            host=host, port=port, username=username, password=logins[username], **tls_files
        )

    edge_tls = {
        "tls": True,
        "ca_file": tls / "ca.crt",
        "certfile": tls / f"{EDGE}.crt",
        "keyfile": tls / f"{EDGE}.key",
    }
    # --- the hub machine ---------------------------------------------------------
    influxd = Influxd(tmp_path / "influxdb", INFLUX_PORT)
    users = tmp_path / "users.json"
    passwords = {user.username: f"pw-{user.username}-{hosts.tag}" for user in config.users}
    users.write_text(json.dumps(passwords), encoding="utf-8")
    hub_dir = tmp_path / "hub"
    hub = _in(
        hosts.hub,
        riverguard_process(
            "hub",
            ["hub"],
            {
                "RIVERGUARD_CONFIG": str(config_path),
                **login("hub", "127.0.0.1", CENTRAL_PORT).env("RIVERGUARD_BROKER"),
                "RIVERGUARD_DATA_DIR": str(hub_dir),
                "RIVERGUARD_HTTP_PORT": str(HUB_PORT),
                "RIVERGUARD_INFLUX_URL": f"http://127.0.0.1:{INFLUX_PORT}",
                "RIVERGUARD_USERS_FILE": str(users),
            },
            tmp_path / "hub.log",
        ),
    )
    # --- the site machine --------------------------------------------------------
    uplink = login(EDGE, hosts.hub_ip, CENTRAL_TLS_PORT, **edge_tls)
    edge = _in(
        hosts.site,
        riverguard_process(
            "edge",
            ["edge", "--site", SITE],
            {
                "RIVERGUARD_CONFIG": str(site_config),
                **uplink.env("RIVERGUARD_BROKER"),
                **login(EDGE, "127.0.0.1", SITE_BROKER_PORT).env("RIVERGUARD_FIELD_BROKER"),
                "RIVERGUARD_DATA_DIR": str(tmp_path / "edge"),
                "RIVERGUARD_METRICS_PORT": str(EDGE_HTTP_PORT),
            },
            tmp_path / "edge.log",
        ),
    )
    sim = login(broker_acl.SIM, "127.0.0.1", SITE_BROKER_PORT)
    speaker = _in(
        hosts.site,
        riverguard_process(
            "speaker",
            ["sim", "speakers", "--site", SITE],
            {"RIVERGUARD_CONFIG": str(site_config), **sim.env("RIVERGUARD_BROKER")},
            tmp_path / "speaker.log",
        ),
    )

    _in(hosts.hub, influxd.process)
    influxd.directory.mkdir(parents=True, exist_ok=True)
    influxd.write_config()
    console = Console()
    brokers: list[ShippedBroker] = []
    async with (
        Tunnel(hosts.hub, "127.0.0.1", INFLUX_PORT) as influx_port,
        Tunnel(hosts.hub, "127.0.0.1", HUB_PORT) as hub_port,
        Tunnel(hosts.site, "127.0.0.1", SITE_BROKER_PORT) as site_port,
        Tunnel(hosts.site, hosts.hub_ip, CENTRAL_TLS_PORT) as link_port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{influx_port.port}", timeout=10) as influx,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub_port.port}", timeout=10) as api,
    ):

        async def pings() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return (await influx.get("/ping")).status_code == 204
            return False

        try:
            brokers.append(
                ShippedBroker.start("central.conf", hosts.hub, tmp_path / "central", access, tls)
            )
            central = brokers[-1]
            brokers.append(
                ShippedBroker.start("site.conf", hosts.site, tmp_path / "site", access, site_certs)
            )
            influxd.process.start()
            await wait_for(pings, 30, what="influxd answering /ping")
            created = await influx.post("/query", data={"q": 'CREATE DATABASE "riverguard"'})
            assert 200 == created.status_code, created.text
            async with _running(hub, edge, speaker):
                run = Run(
                    hosts=hosts,
                    central=central,
                    edge=edge,
                    speaker=speaker,
                    hub_dir=hub_dir,
                    api=api,
                    influx=influx,
                    console=console,
                    hub_port=hub_port.port,
                    site_port=site_port.port,
                    link_port=link_port.port,
                    passwords=passwords,
                    sim=sim,
                    uplink=uplink,
                    tls=tls,
                    tmp_path=tmp_path,
                )
                await _scenario(run)
        finally:
            influxd.stop()
            for broker in reversed(brokers):
                broker.stop()


async def _scenario(run: Run) -> None:
    api, console = run.api, run.console

    async def healthy() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return (await api.get("/healthz")).status_code == 200
        return False

    await wait_for(healthy, 60, what="the hub's /healthz")
    session = await HubSession.login_async(api, "officer-li", run.passwords["officer-li"])
    bearer = session.access_token
    api.headers.update(session.headers)
    ws_url = f"ws://127.0.0.1:{run.hub_port}/api/ws?events=*"
    pump = asyncio.create_task(console.pump(ws_url, bearer), name="test.console")
    try:
        await wait_for(console.edge_online, 60, what="the edge online on the console")
        await _link_refusals(run)
        await _cut_and_cross(run)
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await pump
        print(f"edge log tail:\n{run.edge.log_tail(15)}")


async def _link_refusals(run: Run) -> None:
    """Over the link, from the site machine: another CA's certificate, an expired one and
    plain text on the TLS port get nowhere, each with its line in the broker's log."""
    tls, tmp_path, central = run.tls, run.tmp_path, run.central
    other, expired = tmp_path / "other-ca", tmp_path / "expired"
    certs.make_all(other, certs.plan([], [(SITE, [])]))
    expired.mkdir()
    ca, _ = certs.load_or_create_ca(tls)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    old = certs.issue(
        ca, expired, certs.Request("old-edge", False, True, common_name=EDGE), days=1, now=long_ago
    )
    # Through the tunnel into the site machine, then over the veth to the central broker.
    base = run.uplink.model_copy(update={"host": "127.0.0.1", "port": run.link_port})
    seen: list[str] = []
    other_ca = base.model_copy(
        update={"certfile": other / f"{EDGE}.crt", "keyfile": other / f"{EDGE}.key"}
    )
    await _refused(other_ca, central, "certificate verify failed", seen)
    too_old = base.model_copy(update={"certfile": old.cert_path, "keyfile": old.key_path})
    await _refused(too_old, central, "certificate verify failed", seen)
    plain = base.model_copy(
        update={"tls": False, "ca_file": None, "certfile": None, "keyfile": None}
    )
    await _refused(plain, central, "wrong version number", seen)
    print("central broker refusals:", *seen, sep="\n  ")


async def _cut_and_cross(run: Run) -> None:
    hosts, console = run.hosts, run.console
    published: list[tuple[str, int, dt.datetime]] = []  # (device, seq, device time)
    device = run.sim.model_copy(update={"port": run.site_port})
    hosts.link(up=False)
    cut_at = time.monotonic()
    async with make_client(device) as swimmer:
        for seq, step in enumerate(CROSSING, start=1):
            await asyncio.sleep(SWIM_EVERY_S)
            await _report(swimmer, seq, step, published)
        # The hub cannot hear the site: its edge offline, every zone unguarded.
        zones = sorted(z.id for z in _site_zones())
        offline = await wait_for(
            lambda: console.of("edge", lambda d: d["site"] == SITE and not d["online"]),
            max(1.0, cut_at + CUT_S - time.monotonic()),
            what="the edge offline on the console while the cable is out",
        )
        unguarded = console.of("site", lambda d: d["id"] == SITE and d["unguarded"] == zones)
        assert unguarded, "the site's zones unguarded on the console while the cable is out"
        remaining = cut_at + CUT_S - time.monotonic()
        assert remaining > 0, "the swimmer took longer than the cut"
        await asyncio.sleep(remaining)  # the outage itself, not a wait for something
        hosts.link(up=True)
        back_at = time.monotonic()
    print(
        f"cable out {back_at - cut_at:.1f} s; the hub showed the edge offline after "
        f"{offline[0] - cut_at:.1f} s and its zones unguarded after "
        f"{unguarded[0] - cut_at:.1f} s (the broker's keepalive grace: {OFFLINE_TIMEOUT_S} s "
        "after the edge's last packet, checked now and then)"
    )
    assert offline[0] - cut_at < CUT_S
    # The site's own speaker warned, by the speaker's and the swimmer's own clocks.
    breach_at = published[0][2]
    playing = _speaker_played(run.speaker)
    assert playing, f"the speaker never played the edge's warning:\n{run.speaker.log_tail()}"
    warned_s = (playing[0] - breach_at).total_seconds()
    print(f"the site's speaker played the warning {warned_s * 1000:.0f} ms after the breach")
    assert 0 <= warned_s < 1.0
    await _everything_once(run, published, back_at)


async def _report(
    client: Client,
    seq: int,
    step: tuple[str, str, str],
    published: list[tuple[str, int, dt.datetime]],
) -> None:
    fence, zone, state = step
    now = dt.datetime.now(dt.UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the wire carries ms
    payload = json.dumps(fence_report(seq, zone, state, now)).encode()
    await client.publish(topics.field_report(SITE, "fence", fence), payload, qos=1)
    published.append((fence, seq, now))


def _site_zones() -> list[Any]:
    return list(load_config(EXAMPLE_CONFIG).site(SITE).zones)


def _speaker_played(speaker: ManagedProcess) -> list[dt.datetime]:
    """When the simulated speaker started the edge's own warning, by its own log's clock."""
    times = []
    for line in _log(speaker).splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if (
                entry.get("event") == "speaker state"
                and entry.get("state") == "playing"
                and str(entry.get("id", "")).startswith("edge-auto-")
            ):
                times.append(dt.datetime.fromisoformat(entry["timestamp"]))
    return times


async def _everything_once(
    run: Run, published: list[tuple[str, int, dt.datetime]], back_at: float
) -> None:
    console, api, influx = run.console, run.api, run.influx
    expected = [(fence, ts) for fence, _, ts in published]

    def stored() -> list[tuple[str, str, dt.datetime]]:
        with contextlib.closing(sqlite3.connect(run.hub_dir / "hub.db")) as db:
            rows = db.execute(
                "SELECT id, device, ts FROM events WHERE site = ? ORDER BY rowid", (SITE,)
            ).fetchall()
        return [
            (event_id, device, dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC))
            for event_id, device, ts in rows
        ]

    await wait_for(lambda: len(stored()) >= len(published), 90, what="every event stored in SQL")
    rows = stored()
    print(f"all {len(rows)} events stored {time.monotonic() - back_at:.1f} s after the cable")
    assert expected == [(device, ts) for _, device, ts in rows]  # each once, in order
    ids = [event_id for event_id, _, _ in rows]

    async def in_influx() -> list[str]:
        query = "SELECT id FROM events WHERE site = 'danshui-bridge'"
        answer = await influx.get("/query", params={"db": "riverguard", "q": query})
        series = answer.json()["results"][0].get("series", [])
        found = [row[1] for row in series[0]["values"]] if series else []
        return found if len(found) >= len(ids) else []

    influx_ids = await wait_for(in_influx, 60, what="every event in InfluxDB")
    assert ids == influx_ids  # once each, in time order, which is the order sent
    await wait_for(
        lambda: set(ids) <= set(console.event_ids()), 30, what="every event on the console"
    )
    assert ids == [event_id for event_id in console.event_ids() if event_id in set(ids)]

    async def timeline_with_the_warning() -> list[dict[str, Any]]:
        alarms = (await api.get("/api/alarms", params={"site": SITE})).json()
        for alarm in alarms:
            if alarm["zone"] != "z1":
                continue
            built = (await api.get(f"/api/alarms/{alarm['id']}/timeline")).json()
            warnings = [
                entry
                for entry in built["entries"]
                if entry["type"] == "announcement" and entry["by"] == "edge-auto"
            ]
            if warnings:
                return warnings
        return []

    warnings = await wait_for(
        timeline_with_the_warning, 30, what="the edge's warning on the timeline"
    )
    print(f"the alarm's timeline shows the edge's own warning: {warnings[0]['data']['id']}")
