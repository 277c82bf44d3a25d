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
with nobody to call, for the alarm path without notifications.

The two storms run alike but for the calls: each on a fresh store (the single
escalations have one of their own), the store polled the same way while the
probe runs, and the receiver in a process of its own, as a responder's is on
another machine (in this process its HTTP handling was charged to the alarm
path of the storm with calls only). Not a test: run it by hand and put the
figures in docs/performance.md::

    .venv/bin/python bench/notify_latency.py --rounds 200 --storm 500 --per-minute 200 --probes 300
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import and_, func, or_, select

from hub import tables
from hub.broadcaster import Broadcaster
from hub.clock import ManualClock
from hub.desk import AlarmDesk
from hub.metrics import HubMetrics
from hub.notify.links import ResponderLinks
from hub.notify.outbox import Outbox
from hub.notify.send_process import SendProcess
from hub.picture import Picture
from hub.responder_tokens import ResponderTokens
from hub.store import Batch, CommittedBatch, Store
from riverguard.config import Config
from riverguard.heap import freeze_startup_heap
from riverguard.wire.models import Event

ZONES_PER_SITE = 10
# The probe's pace: a busy field's batches, not a flood of its own.
PROBE_PAUSE_S = 0.005


def _now() -> float:
    """Seconds on the system's monotonic clock: the same in this process and the
    receiver's."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


async def _receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A bare HTTP/1.1 receiver: prints each delivery id with its arrival time."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        headers = dict(
            line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
        )
        lowered = {name.lower(): value for name, value in headers.items()}
        await reader.readexactly(int(lowered.get("content-length", "0")))
        print(lowered.get("x-riverguard-delivery", ""), _now(), flush=True)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
    finally:
        writer.close()


async def serve_receiver() -> None:
    """The receiver's process: its port on the first line, then an arrival a line."""
    server = await asyncio.start_server(_receive, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


class Receiver:
    """The receiver's process, seen from the bench: the arrival time of each delivery id."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.port = port
        self.arrivals: list[tuple[str, float]] = []
        self.arrived = asyncio.Event()
        self._process = process
        self._reading = asyncio.create_task(self._read(), name="bench.receiver")

    @classmethod
    async def start(cls) -> Receiver:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve-receiver", stdout=PIPE
        )
        assert process.stdout is not None
        return cls(process, int(await process.stdout.readline()))

    async def _read(self) -> None:
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            delivery, at = line.decode().split()
            self.arrivals.append((delivery, float(at)))
            self.arrived.set()

    async def stop(self) -> None:
        self._process.terminate()
        await self._process.wait()
        self._reading.cancel()
        await asyncio.gather(self._reading, return_exceptions=True)


PROBE_SITE = 999


class BenchClock(ManualClock):
    """The manual clock, which can also let time pass without waking anyone."""

    def pass_quietly(self, seconds: float) -> None:
        """The minute before an escalation: in the hub nothing wakes the outbox then
        (nothing of it is due) and the desk's timer is the first to act, fired here by
        hand. ``advance`` woke the outbox too, which then claimed and sent the pass's
        first calls beside the pass instead of after it."""
        self._now += timedelta(seconds=seconds)


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


async def _probe(desk: AlarmDesk, clock: ManualClock, count: int) -> list[tuple[float, float]]:
    """The alarm path, ``count`` times: a probe site's breach committed through the desk
    and pushed, one every few milliseconds; when each started and its time in ms."""
    taken: list[tuple[float, float]] = []
    for n in range(count):
        device = f"s{PROBE_SITE:03d}-f{n % ZONES_PER_SITE:02d}"
        start = _now()
        risk_before = desk.risks([device.split("-f", 1)[0]])
        committed = await _breach_batch(desk, clock, device, 20_000 + n)
        desk.push_current(committed.outcome.changed.values(), risk_before, committed.alarm_json)
        taken.append((start, (_now() - start) * 1000))
        await asyncio.sleep(PROBE_PAUSE_S)  # a steady pace, as a field's batches come
    return taken


async def _busy(store: Store, clock: ManualClock) -> int:
    """Notifications mid-send or due now."""
    n = tables.notifications
    busy = select(func.count()).where(
        or_(n.c.state == "sending", and_(n.c.state == "queued", n.c.due_at <= clock.now()))
    )
    async with store.engine.connect() as conn:
        return int((await conn.execute(busy)).scalar_one())


async def _settled(store: Store, clock: ManualClock) -> None:
    """Until the outbox has nothing it may send now: no row mid-send, none due."""
    async with asyncio.timeout(120):
        while True:
            if not await _busy(store, clock):
                return
            await asyncio.sleep(0.05)  # polling the store: it has no event to await


async def _polled_until(store: Store, clock: ManualClock, probe: asyncio.Task[Any]) -> None:
    """The store polled as ``_settled`` does until the probe ends: both storms' alarm
    paths share the loop with the same polling."""
    while not probe.done():
        await _busy(store, clock)
        await asyncio.wait({probe}, timeout=0.05)


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


def _outbox(store: Store, config: Config, sender: SendProcess, clock: ManualClock) -> Outbox:
    return Outbox(
        store,
        config,
        sender,
        ResponderLinks("http://127.0.0.1:8080"),
        ResponderTokens(b"bench-responder-key-0123456789"),
        clock=clock,
        metrics=HubMetrics(),
    )


def _desk(store: Store, config: Config, clock: ManualClock, outbox: Outbox) -> AlarmDesk:
    metrics = HubMetrics()
    return AlarmDesk(
        store,
        Picture(config, clock.now),
        Broadcaster(metrics, start_seq=0),
        metrics,
        clock,
        risk_points=lambda _: None,
        calls_queued=outbox.wake,
    )


def _phase(values: list[float]) -> dict[str, float]:
    return {"probes": len(values), **_summary(values)} if values else {"probes": 0}


@contextlib.asynccontextmanager
async def _fresh_store() -> AsyncIterator[Store]:
    """A store of its own, its WAL checkpointed as the hub's is (``hub.app``): without
    that the log grows through the whole run, and the quiet storm's p99 strayed
    from 3.7 to 9.5 ms between runs."""
    with tempfile.TemporaryDirectory() as directory:
        store = await Store.open(f"sqlite+aiosqlite:///{directory}/hub.db")
        checkpoints = asyncio.create_task(store.run_checkpoints(), name="bench.checkpoints")
        try:
            yield store
        finally:
            checkpoints.cancel()
            await asyncio.gather(checkpoints, return_exceptions=True)
            await store.close()


async def _single(rounds: int, per_minute: int | None) -> dict[str, Any]:
    """One alarm escalating at a time, ``rounds`` times: escalation -> call at the receiver."""
    receiver = await Receiver.start()
    config = _config(1, f"http://127.0.0.1:{receiver.port}/hook", per_minute)
    clock = BenchClock()
    taken: list[float] = []
    async with _fresh_store() as store, SendProcess(config.notify, clock.now) as sender:
        await sender.ready()
        outbox = _outbox(store, config, sender, clock)
        desk = _desk(store, config, clock, outbox)
        running = asyncio.create_task(outbox.run(), name="bench.outbox")
        freeze_startup_heap()  # as the hub does once started: see _storm
        for n in range(rounds):
            alarm_id = await _breach(desk, clock, "s000-f00", n)
            clock.pass_quietly(60)
            start = _now()
            await desk.tick()
            await _wait_for(receiver, n + 1)
            taken.append((receiver.arrivals[-1][1] - start) * 1000)
            await desk.resolve(alarm_id, "bench", "false_alarm", None)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    await receiver.stop()
    return {"rounds": rounds, **_summary(taken)}


async def _storm(
    storm: int, per_minute: int | None, probes: int, calls: bool
) -> tuple[dict[str, Any], list[float]]:
    """``storm`` alarms escalating in one timer pass while the probe measures the alarm
    path; with a responder to call at each site, or nobody. The report, and the alarm
    path's times (ms) after the pass, for pooling."""
    receiver = await Receiver.start()
    sites = max(1, math.ceil(storm / ZONES_PER_SITE))
    config = _config(sites, f"http://127.0.0.1:{receiver.port}/hook", per_minute, calls)
    clock = BenchClock()
    async with _fresh_store() as store, SendProcess(config.notify, clock.now) as sender:
        await sender.ready()
        outbox = _outbox(store, config, sender, clock)
        desk = _desk(store, config, clock, outbox)
        running = asyncio.create_task(outbox.run(), name="bench.outbox")
        # As the hub does once started: without it an oldest-generation
        # collection of the bench's start-up heap stopped the loop for 60 to 90 ms
        # in the middle of the probes, in both storms.
        freeze_startup_heap()
        for n in range(storm):
            await _breach(
                desk, clock, f"s{n // ZONES_PER_SITE:03d}-f{n % ZONES_PER_SITE:02d}", 10_000 + n
            )
        clock.pass_quietly(60)
        probe = asyncio.create_task(_probe(desk, clock, probes), name="bench.probe")
        start = _now()
        await desk.tick()
        pass_over = _now()
        tick_ms = (pass_over - start) * 1000
        per_clock_minute = await _waves(store, clock, receiver, 0, storm) if calls else []
        await _polled_until(store, clock, probe)
        alarm_path = await probe
        storm_ms = [(at - start) * 1000 for _, at in receiver.arrivals]
        first_minute = storm_ms[: per_clock_minute[0]] if per_clock_minute else []
        copies = Counter(delivery for delivery, _ in receiver.arrivals)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    await receiver.stop()
    after_pass = [ms for at, ms in alarm_path if at >= pass_over]
    report: dict[str, Any] = {
        "alarms": storm,
        "escalation_pass_ms": round(tick_ms, 1),
        "alarm_path": {"probes": probes, **_summary([ms for _, ms in alarm_path])},
        # The probes that started while the pass held the desk a chunk at a time, and
        # those after, while the calls went out.
        "alarm_path_during_pass": _phase([ms for at, ms in alarm_path if at < pass_over]),
        "alarm_path_after_pass": _phase(after_pass),
    }
    if calls:
        report.update(
            {
                "calls_received": len(storm_ms),
                "sent_twice": sum(1 for count in copies.values() if count > 1),
                "calls_per_clock_minute": per_clock_minute,
                "per_minute_limit": per_minute,
                "first_minute": _summary(first_minute),
            }
        )
    return report, after_pass


async def measure(
    rounds: int, storm: int, per_minute: int | None, probes: int, repeat: int = 1
) -> dict[str, Any]:
    """The single escalations, the storm with its calls, then the same storm with
    nobody to call; with ``repeat`` above one, both storms that many times in turn, and
    their after-pass probes pooled: a p99 of one run's 280 probes is its third
    slowest, and strayed between runs by as much as the calls moved it."""
    report: dict[str, Any] = {}
    if rounds:
        report["single"] = await _single(rounds, per_minute)
    storms = {"storm": True, "storm_without_notifications": False}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in storms}
    pooled: dict[str, list[float]] = {name: [] for name in storms}
    for n in range(repeat):
        if repeat > 1:
            print(f"  storms {n + 1}/{repeat}", file=sys.stderr, flush=True)
        for name, calls in storms.items():
            run, after_pass = await _storm(storm, per_minute, probes, calls)
            runs[name].append(run)
            pooled[name].extend(after_pass)
    for name, reports in runs.items():
        report[name] = reports[0] if repeat == 1 else reports
    if repeat > 1:
        report["after_pass_pooled"] = {name: _phase(ms) for name, ms in pooled.items()}
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="single escalations")
    parser.add_argument("--storm", type=int, default=500, help="alarms escalating at once")
    parser.add_argument(
        "--per-minute", type=int, default=200, help="the webhook's rate limit (sends a minute)"
    )
    parser.add_argument("--probes", type=int, default=300, help="breaches on the alarm path")
    parser.add_argument("--repeat", type=int, default=1, help="both storms this many times, pooled")
    parser.add_argument("--serve-receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        asyncio.run(serve_receiver())
        return 0
    # The hub logs each send at info: not part of the report.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    json.dump(
        asyncio.run(measure(args.rounds, args.storm, args.per_minute, args.probes, args.repeat)),
        sys.stdout,
        indent=2,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
