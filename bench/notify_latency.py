"""Escalation -> message at a local receiver, in one process: the alarm desk and the
notification outbox of the hub on a fresh SQLite store, a signed webhook to an
HTTP receiver on 127.0.0.1.

Two measurements. One at a time: an alarm escalates (the desk's timer, its
clock moved on by hand so nobody waits a minute) and the time from the start of
that escalation to the call's arrival is taken, ``--rounds`` times. A storm:
``--storm`` alarms, one per zone, escalate in the same timer pass; the time
from its start to each call's arrival, whether every call came exactly once,
and whether the webhook's rate limit (``--per-minute``) held: the clock moves
on a minute at a time only once the outbox has nothing more it may send. While
the storm escalates and its calls go out, a probe site's fence breaches are
committed through the desk one after another (``--probes``), the alarm path
(breach -> committed, pushed to consoles); the same storm is then run again
with nobody to call, for the alarm path without notifications. Not a test:
run it by hand and put the figures in docs/performance.md::

    .venv/bin/python bench/notify_latency.py --rounds 200 --storm 500 --per-minute 200
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
from sqlalchemy import and_, func, or_, select

from hub import tables
from hub.broadcaster import Broadcaster
from hub.clock import ManualClock
from hub.desk import AlarmDesk
from hub.metrics import HubMetrics
from hub.notify.links import ResponderLinks
from hub.notify.notifier import Notifier
from hub.notify.outbox import Outbox
from hub.picture import Picture
from hub.responder_tokens import ResponderTokens
from hub.store import Batch, CommittedBatch, Store
from riverguard.config import Config
from riverguard.wire.models import Event

ZONES_PER_SITE = 10
# The probe's pace: a busy field's batches, not a flood of its own.
PROBE_PAUSE_S = 0.005


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


PROBE_SITE = 999


def _config(sites: int, url: str, per_minute: int | None, calls: bool = True) -> Config:
    """``sites`` sites of ten zones and a fence each, and a probe site (no. 999); each
    site calls a responder of its own at its first level (nobody when not ``calls``)."""
    numbers = [*range(sites), PROBE_SITE]
    return Config.model_validate(
        {
            "sites": [
                {
                    "id": f"s{n:03d}",
                    "name": f"Site {n}",
                    "grid": "bench/grid",
                    "zones": [{"id": f"z{z:02d}", "name": f"Z{z}"} for z in range(ZONES_PER_SITE)],
                    "escalation": [
                        {
                            "after_s": 60,
                            "level_name": "grid officer",
                            "call": [f"r{n:03d}"] if calls else [],
                        }
                    ],
                }
                for n in numbers
            ],
            "devices": [
                {
                    "id": f"s{n:03d}-f{z:02d}",
                    "site": f"s{n:03d}",
                    "type": "fence",
                    "zones": [f"z{z:02d}"],
                }
                for n in numbers
                for z in range(ZONES_PER_SITE)
            ],
            "notify": {
                "webhooks": [
                    {
                        "id": "bench",
                        "url": url,
                        "secret": "bench-secret-0123456789",
                        "per_minute": per_minute,
                    }
                ],
                "timeout_s": 5,
            },
            "responders": [
                {
                    "id": f"r{n:03d}",
                    "name": f"R{n}",
                    "channels": [{"kind": "webhook", "webhook": "bench"}],
                }
                for n in numbers
            ],
        }
    )


async def _breach(desk: AlarmDesk, clock: ManualClock, device: str, seq: int) -> str:
    committed = await _breach_batch(desk, clock, device, seq)
    return next(iter(committed.outcome.changed))


async def _breach_batch(
    desk: AlarmDesk, clock: ManualClock, device: str, seq: int
) -> CommittedBatch:
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
    return await desk.commit(
        Batch(events=[event], received_at={event.id: now}, last_seen={device: (site, now)})
    )


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


async def _wait_for(receiver: Receiver, count: int) -> None:
    async with asyncio.timeout(120):
        while len(receiver.arrivals) < count:
            receiver.arrived.clear()
            await receiver.arrived.wait()


async def _probe(desk: AlarmDesk, clock: ManualClock, count: int) -> list[float]:
    """The alarm path, ``count`` times: a probe site's breach committed through the desk
    and pushed, one every few milliseconds."""
    taken: list[float] = []
    for n in range(count):
        device = f"s{PROBE_SITE:03d}-f{n % ZONES_PER_SITE:02d}"
        start = time.perf_counter()
        risk_before = desk.risks([device.split("-f", 1)[0]])
        committed = await _breach_batch(desk, clock, device, 20_000 + n)
        desk.push_current(committed.outcome.changed.values(), risk_before, committed.alarm_json)
        taken.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(PROBE_PAUSE_S)  # a steady pace, as a field's batches come
    return taken


async def _settled(store: Store, clock: ManualClock) -> None:
    """Until the outbox has nothing it may send now: no row mid-send, none due."""
    n = tables.notifications
    busy = select(func.count()).where(
        or_(n.c.state == "sending", and_(n.c.state == "queued", n.c.due_at <= clock.now()))
    )
    async with asyncio.timeout(120):
        while True:
            async with store.engine.connect() as conn:
                if not (await conn.execute(busy)).scalar_one():
                    return
            await asyncio.sleep(0.05)  # polling the store: it has no event to await


async def _waves(
    store: Store, clock: ManualClock, receiver: Receiver, counted: int, expected: int
) -> list[int]:
    """Calls that arrived in each minute of the clock (from ``counted`` arrivals on),
    moved on a minute only once the outbox has nothing more it may send, until
    ``expected`` have arrived or a minute brought none."""
    counts: list[int] = []
    while True:
        await _settled(store, clock)
        counts.append(len(receiver.arrivals) - counted)
        counted = len(receiver.arrivals)
        if counted >= expected or not counts[-1]:
            return counts
        clock.advance(60)


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 1),
        "p99_ms": round(_percentile(values, 0.99), 1),
        "max_ms": round(max(values), 1),
    }


async def _run(
    rounds: int, storm: int, per_minute: int | None, probes: int, calls: bool
) -> dict[str, Any]:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sites = max(1, math.ceil(storm / ZONES_PER_SITE))
    config = _config(sites, f"http://127.0.0.1:{port}/hook", per_minute, calls)
    clock = ManualClock()
    report: dict[str, Any] = {}
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
            if single:
                report["single"] = {"rounds": rounds, **_summary(single)}
            before = len(receiver.arrivals)
            for n in range(storm):
                await _breach(
                    desk, clock, f"s{n // ZONES_PER_SITE:03d}-f{n % ZONES_PER_SITE:02d}", 10_000 + n
                )
            clock.advance(60)
            probe = asyncio.create_task(_probe(desk, clock, probes), name="bench.probe")
            start = time.perf_counter()
            await desk.tick()
            tick_ms = (time.perf_counter() - start) * 1000
            per_clock_minute = (
                await _waves(store, clock, receiver, before, before + storm) if calls else []
            )
            alarm_path = await probe
            storm_ms = [(at - start) * 1000 for _, at in receiver.arrivals[before:]]
            first_minute = storm_ms[: per_clock_minute[0]] if per_clock_minute else []
            copies = Counter(delivery for delivery, _ in receiver.arrivals)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        await store.close()
    server.close()
    await server.wait_closed()
    report["storm"] = {
        "alarms": storm,
        "escalation_pass_ms": round(tick_ms, 1),
        "alarm_path": {"probes": probes, **_summary(alarm_path)},
    }
    if calls:
        report["storm"].update(
            {
                "calls_received": len(storm_ms),
                "sent_twice": sum(1 for count in copies.values() if count > 1),
                "calls_per_clock_minute": per_clock_minute,
                "per_minute_limit": per_minute,
                "first_minute": _summary(first_minute),
            }
        )
    return report


async def measure(rounds: int, storm: int, per_minute: int | None, probes: int) -> dict[str, Any]:
    """The storm with its calls, then the same storm with nobody to call."""
    report = await _run(rounds, storm, per_minute, probes, calls=True)
    quiet = await _run(0, storm, per_minute, probes, calls=False)
    report["storm_without_notifications"] = quiet["storm"]
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="single escalations")
    parser.add_argument("--storm", type=int, default=500, help="alarms escalating at once")
    parser.add_argument(
        "--per-minute", type=int, default=200, help="the webhook's rate limit (sends a minute)"
    )
    parser.add_argument("--probes", type=int, default=300, help="breaches on the alarm path")
    args = parser.parse_args()
    # The hub logs each send at info: not part of the report.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    json.dump(
        asyncio.run(measure(args.rounds, args.storm, args.per_minute, args.probes)),
        sys.stdout,
        indent=2,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
