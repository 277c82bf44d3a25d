"""Escalation -> message at a local receiver, in one process: the alarm desk and the
notification outbox of the hub on a fresh SQLite store, a signed webhook to an
HTTP receiver on 127.0.0.1.

Two measurements. One at a time: an alarm escalates (the desk's timer, its
clock moved on by hand so nobody waits a minute) and the time from the start of
that escalation to the call's arrival is taken, ``--rounds`` times. A storm:
``--storm`` alarms, one per zone, escalate in the same timer pass; the time
from its start to each call's arrival, and whether every call came exactly
once. Not a test: run it by hand and put the figures in docs/performance.md::

    .venv/bin/python bench/notify_latency.py --rounds 200 --storm 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from typing import Any

import httpx
import structlog

from hub.broadcaster import Broadcaster
from hub.clock import ManualClock
from hub.desk import AlarmDesk
from hub.metrics import HubMetrics
from hub.notify.links import ResponderLinks
from hub.notify.notifier import Notifier
from hub.notify.outbox import Outbox
from hub.picture import Picture
from hub.responder_tokens import ResponderTokens
from hub.store import Batch, Store
from riverguard.config import Config
from riverguard.wire.models import Event

ZONES_PER_SITE = 10


class Receiver:
    """A bare HTTP/1.1 receiver: the arrival time of each delivery id."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, float]] = []
        self.arrived = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = dict(
                line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
            )
            lowered = {name.lower(): value for name, value in headers.items()}
            await reader.readexactly(int(lowered.get("content-length", "0")))
            self.arrivals.append((lowered.get("x-riverguard-delivery", ""), time.perf_counter()))
            self.arrived.set()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()


def _config(sites: int, url: str) -> Config:
    return Config.model_validate(
        {
            "sites": [
                {
                    "id": f"s{n:03d}",
                    "name": f"Site {n}",
                    "grid": "bench/grid",
                    "zones": [{"id": f"z{z:02d}", "name": f"Z{z}"} for z in range(ZONES_PER_SITE)],
                    "escalation": [
                        {"after_s": 60, "level_name": "grid officer", "call": [f"r{n:03d}"]}
                    ],
                }
                for n in range(sites)
            ],
            "devices": [
                {
                    "id": f"s{n:03d}-f{z:02d}",
                    "site": f"s{n:03d}",
                    "type": "fence",
                    "zones": [f"z{z:02d}"],
                }
                for n in range(sites)
                for z in range(ZONES_PER_SITE)
            ],
            "notify": {
                "webhooks": [{"id": "bench", "url": url, "secret": "bench-secret-0123456789"}],
                "timeout_s": 5,
            },
            "responders": [
                {
                    "id": f"r{n:03d}",
                    "name": f"R{n}",
                    "channels": [{"kind": "webhook", "webhook": "bench"}],
                }
                for n in range(sites)
            ],
        }
    )


async def _breach(desk: AlarmDesk, clock: ManualClock, device: str, seq: int) -> str:
    site, number = device.split("-f", maxsplit=1)
    zone = f"z{number}"
    now = clock.now()
    event = Event.model_validate(
        {
            "id": f"{device}:{seq}",
            "site": site,
            "device": device,
            "kind": "fence.breach",
            "zone": zone,
            "ts": now,
            "edge_ts": now,
            "severity": "critical",
        }
    )
    committed = await desk.commit(
        Batch(events=[event], received_at={event.id: now}, last_seen={device: (site, now)})
    )
    return next(iter(committed.outcome.changed))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


async def _wait_for(receiver: Receiver, count: int) -> None:
    async with asyncio.timeout(120):
        while len(receiver.arrivals) < count:
            receiver.arrived.clear()
            await receiver.arrived.wait()


async def measure(rounds: int, storm: int) -> dict[str, Any]:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sites = max(1, math.ceil(storm / ZONES_PER_SITE))
    config = _config(sites, f"http://127.0.0.1:{port}/hook")
    clock = ManualClock()
    with tempfile.TemporaryDirectory() as directory:
        store = await Store.open(f"sqlite+aiosqlite:///{directory}/hub.db")
        async with httpx.AsyncClient() as http:
            metrics = HubMetrics()
            outbox = Outbox(
                store,
                config,
                Notifier(config.notify, http, clock=clock.now),
                ResponderLinks("http://127.0.0.1:8080"),
                ResponderTokens(b"bench-responder-key-0123456789"),
                clock=clock,
                metrics=metrics,
            )
            picture = Picture(config, clock.now)
            desk = AlarmDesk(
                store,
                picture,
                Broadcaster(metrics, start_seq=0),
                metrics,
                clock,
                risk_points=lambda _: None,
                calls_queued=outbox.wake,
            )
            sender = asyncio.create_task(outbox.run(), name="bench.outbox")
            single: list[float] = []
            for n in range(rounds):
                alarm_id = await _breach(desk, clock, "s000-f00", n)
                clock.advance(60)
                start = time.perf_counter()
                await desk.tick()
                await _wait_for(receiver, n + 1)
                single.append((receiver.arrivals[-1][1] - start) * 1000)
                await desk.resolve(alarm_id, "bench", "false_alarm", None)
            before = len(receiver.arrivals)
            for n in range(storm):
                await _breach(
                    desk, clock, f"s{n // ZONES_PER_SITE:03d}-f{n % ZONES_PER_SITE:02d}", 10_000 + n
                )
            clock.advance(60)
            start = time.perf_counter()
            await desk.tick()
            tick_ms = (time.perf_counter() - start) * 1000
            await _wait_for(receiver, before + storm)
            storm_ms = [(at - start) * 1000 for _, at in receiver.arrivals[before:]]
            copies = Counter(delivery for delivery, _ in receiver.arrivals)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        await store.close()
    server.close()
    await server.wait_closed()
    return {
        "single": {
            "rounds": rounds,
            "p50_ms": round(statistics.median(single), 1),
            "p99_ms": round(_percentile(single, 0.99), 1),
            "max_ms": round(max(single), 1),
        },
        "storm": {
            "alarms": storm,
            "calls_received": len(storm_ms),
            "sent_twice": sum(1 for count in copies.values() if count > 1),
            "escalation_pass_ms": round(tick_ms, 1),
            "p50_ms": round(statistics.median(storm_ms), 1),
            "p99_ms": round(_percentile(storm_ms, 0.99), 1),
            "last_ms": round(max(storm_ms), 1),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="single escalations")
    parser.add_argument("--storm", type=int, default=500, help="alarms escalating at once")
    args = parser.parse_args()
    # The hub logs each send at info: not part of the report.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    json.dump(asyncio.run(measure(args.rounds, args.storm)), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
