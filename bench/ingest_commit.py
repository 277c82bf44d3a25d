"""CPU of one ingest transaction in the state store, by batch size.

Opens a fresh SQLite store (WAL, ``synchronous=FULL``, as the hub runs it) and
commits batches of fence events through ``store.batches.commit`` with the alarm
rules deciding, as ingest does: every batch joins the four zones' open alarms
and updates the devices' last-heard times when they are due. Reports the
process CPU (user and system) and the wall time per batch. Not a test: run it
by hand and put the figures in docs/performance.md::

    .venv/bin/python bench/ingest_commit.py --sizes 1 10 50 --batches 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from hub import alarms as rules
from hub.store import Batch, Store
from riverguard.wire.models import Alarm, Event

T0 = datetime(2026, 7, 27, 21, 21, 5, tzinfo=UTC)
DEVICES = 100
ZONES = 4


def _event(n: int) -> Event:
    device = f"load-001-f{n % DEVICES:05d}"
    return Event.model_validate(
        {
            "id": f"{device}:{n}",
            "site": "load-001",
            "device": device,
            "kind": "fence.breach",
            "zone": f"z{n % ZONES + 1}",
            "ts": T0 + timedelta(milliseconds=n),
            "edge_ts": T0,
            "severity": "critical",
            "snapshot": False,
            "attrs": {"seq": n},
        }
    )


def _batch(events: list[Event]) -> Batch:
    return Batch(
        events=events,
        received_at={e.id: T0 for e in events},
        event_json={e.id: e.model_dump_json() for e in events},
        last_seen={e.device: (e.site, e.ts) for e in events},
    )


async def _measure(size: int, batches: int, warm_up: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="riverguard-bench-commit-") as directory:
        store = await Store.open(f"sqlite+aiosqlite:///{directory}/hub.db")
        active: dict[rules.ZoneKey, Alarm] = {}

        def decide(new: list[Event]) -> rules.Outcome:
            outcome = rules.apply_events(active, new, T0)
            active.update({(a.site, a.zone): a for a in outcome.changed.values()})
            return outcome

        numbers = iter(range(10**9))
        prepared = [
            _batch([_event(next(numbers)) for _ in range(size)]) for _ in range(warm_up + batches)
        ]
        try:
            for batch in prepared[:warm_up]:
                await store.batches.commit(batch, decide)
            before, started = os.times(), time.perf_counter()
            for done, batch in enumerate(prepared[warm_up:], 1):
                await store.batches.commit(batch, decide)
                if done % 50 == 0:
                    print(f"\r  {size} events a batch: {done}/{batches}", end="", file=sys.stderr)
            after, wall = os.times(), time.perf_counter() - started
            print(file=sys.stderr)
        finally:
            await store.close()
    return {
        "events_per_batch": size,
        "user_ms": round((after.user - before.user) / batches * 1000, 2),
        "system_ms": round((after.system - before.system) / batches * 1000, 2),
        "wall_ms": round(wall / batches * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--warm-up", type=int, default=20)
    args = parser.parse_args()
    results = [asyncio.run(_measure(size, args.batches, args.warm_up)) for size in args.sizes]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
