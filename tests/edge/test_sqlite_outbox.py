"""The on-disk outbox keeps events across restarts, in order, fsync'd in group commits."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import structlog

from edge.outbox import OutboxEntry
from edge.sqlite_outbox import SqliteOutbox
from riverguard.testing import TINY_JPEG, wait_for
from riverguard.wire.models import Event, Severity
from tests.edge.support import background

T = datetime(2026, 7, 27, 21, 0, tzinfo=UTC)
log = structlog.get_logger()


def _entry(seq: int, severity: Severity = "warning", snapshot: bytes | None = None) -> OutboxEntry:
    event = Event(
        id=f"db-cam-01:{seq}",
        site="danshui-bridge",
        device="db-cam-01",
        kind="camera.intrusion",
        zone="z1",
        ts=T,
        edge_ts=T,
        severity=severity,
        snapshot=snapshot is not None,
    )
    return OutboxEntry.of(event, snapshot)


@asynccontextmanager
async def opened(
    path: Path,
    limit: int = 1000,
    checkpoint_every_s: float = 1.0,
    min_round_interval_s: float = 0.005,
) -> AsyncIterator[SqliteOutbox]:
    """An open outbox with its writer running; closed (and flushed) afterwards."""
    outbox = SqliteOutbox(path, limit, checkpoint_every_s, min_round_interval_s)
    await outbox.open()
    try:
        async with background(outbox.run(), "test.outbox.writer"):
            yield outbox
    finally:
        await outbox.close()


def _rows(path: Path) -> list[str]:
    """What another process reading the file sees now."""
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT id FROM outbox ORDER BY seq")]


async def test_flushed_entries_are_on_disk_for_another_reader(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with opened(path) as outbox:
        for seq in (1, 2, 3):
            await outbox.add(_entry(seq))
        await outbox.flush()
        assert ["db-cam-01:1", "db-cam-01:2", "db-cam-01:3"] == _rows(path)
        with sqlite3.connect(path) as db:
            assert ("wal",) == db.execute("PRAGMA journal_mode").fetchone()


async def test_entries_survive_a_reopen_in_insertion_order_without_the_committed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with opened(path) as outbox:
        for seq in (3, 1, 2):
            await outbox.add(_entry(seq))
        await outbox.ack(["db-cam-01:1"])
    async with opened(path) as again:
        assert 2 == len(again)
        due = await again.due(now=0.0, resend_after=5.0, limit=10)
        assert ["db-cam-01:3", "db-cam-01:2"] == [entry.id for entry in due]
        assert "warning" == due[0].event.severity


async def test_a_snapshot_leaves_memory_after_the_first_send_and_is_read_back_for_a_resend(
    tmp_path: Path,
) -> None:
    async with opened(tmp_path / "outbox.sqlite3") as outbox:
        entry = _entry(1, snapshot=TINY_JPEG)
        await outbox.add(entry)
        await outbox.flush()
        await outbox.mark_sent([entry], now=100.0)
        assert entry.snapshot is None
        [due] = await outbox.due(now=106.0, resend_after=5.0, limit=10)
        assert TINY_JPEG == due.snapshot


async def test_snapshots_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with opened(path) as outbox:
        await outbox.add(_entry(1, snapshot=TINY_JPEG))
    async with opened(path) as again:
        [due] = await again.due(now=0.0, resend_after=5.0, limit=10)
        assert TINY_JPEG == due.snapshot


async def test_full_outbox_drops_oldest_non_critical_never_critical_and_counts_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with opened(path, limit=3) as outbox:
        await outbox.add(_entry(1, "critical"))
        await outbox.add(_entry(2, "warning"))
        await outbox.add(_entry(3, "critical"))
        assert 1 == await outbox.add(_entry(4, "critical"))  # drops 2, the only non-critical
        assert 0 == await outbox.add(_entry(5, "critical"))  # nothing to drop: grows instead
        assert 4 == len(outbox)
        assert 1 == outbox.dropped
        await outbox.flush()
        assert ["db-cam-01:1", "db-cam-01:3", "db-cam-01:4", "db-cam-01:5"] == _rows(path)
    async with opened(path, limit=3) as again:
        assert 1 == again.dropped  # the count is kept on disk too


async def test_a_redelivered_event_is_kept_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with opened(path) as outbox:
        await outbox.add(_entry(1))
    async with opened(path) as again:
        await again.add(_entry(1))
        await again.flush()
        assert 1 == len(again)
        assert ["db-cam-01:1"] == _rows(path)


async def test_when_durable_calls_back_in_order_once_the_writes_before_it_are_on_disk(
    tmp_path: Path,
) -> None:
    """The agent acknowledges and publishes in these; a failing callback stops nothing."""
    path = tmp_path / "outbox.sqlite3"

    def failing() -> None:
        raise RuntimeError("a bug in a callback")

    async with opened(path) as outbox:
        seen: list[tuple[str, list[str]]] = []
        outbox.when_durable(lambda: seen.append(("nothing queued", _rows(path))))
        assert [("nothing queued", [])] == seen  # at once
        await outbox.add(_entry(1))
        outbox.when_durable(lambda: seen.append(("after 1", _rows(path))))
        outbox.when_durable(failing)
        await outbox.add(_entry(2))
        outbox.when_durable(lambda: seen.append(("after 2", _rows(path))))
        assert 1 == len(seen)  # not before the round is written
        await outbox.flush()
        assert ["nothing queued", "after 1", "after 2"] == [label for label, _ in seen]
        assert "db-cam-01:1" in seen[1][1]
        assert ["db-cam-01:1", "db-cam-01:2"] == seen[2][1]
        await outbox.add(_entry(3))
        await outbox.flush()
        assert ["db-cam-01:1", "db-cam-01:2", "db-cam-01:3"] == _rows(path)


async def test_group_commit_writes_many_events_per_fsync(tmp_path: Path) -> None:
    """Adds from a busy receiver while a publisher flushes: measured, and far above one per fsync.

    Prints the rate: ``pytest tests/edge/test_sqlite_outbox.py -k group_commit -s``.
    """
    count = 20_000
    async with opened(tmp_path / "outbox.sqlite3", limit=count) as outbox:
        added = 0
        start = time.perf_counter()

        async def receiver() -> None:
            nonlocal added
            for seq in range(count):
                await outbox.add(_entry(seq))
                added += 1
                if seq % 50 == 0:
                    await asyncio.sleep(0)  # other messages and tasks get their turn

        async def publisher() -> None:
            while added < count:
                await outbox.flush()
                await asyncio.sleep(0)
            await outbox.flush()

        await asyncio.gather(receiver(), publisher())
        elapsed = time.perf_counter() - start
        rate = count / elapsed
        print(  # the figure the report quotes
            f"\noutbox: {count} events on disk in {elapsed:.2f} s = {rate:.0f} events/s,"
            f" {outbox.rounds} fsync'd commits ({count / outbox.rounds:.0f} events each)"
        )
        assert count == outbox.rows_written
        assert outbox.rounds < count / 10
        assert rate > 2_000

        # For comparison: one fsync'd commit per event.
        single = 300
        start = time.perf_counter()
        for seq in range(count, count + single):
            await outbox.add(_entry(seq))
            await outbox.flush()
        single_rate = single / (time.perf_counter() - start)
        print(f"outbox: one commit per event: {single_rate:.0f} events/s")


def _rows_in_database_file(path: Path) -> int:
    """Entries in a copy of the database file alone, without its WAL: what checkpoints
    put there."""
    copy = path.with_name("copy.sqlite3")
    shutil.copyfile(path, copy)
    with contextlib.closing(sqlite3.connect(copy)) as db:
        try:
            return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        except sqlite3.OperationalError:  # not even the table is there yet
            return 0


async def test_rounds_leave_checkpoints_to_the_task_beside_the_writer(tmp_path: Path) -> None:
    """No round's commit copies the WAL into the database (it took 15-25 ms in one
    commit of a few); the checkpoint task does, on its own connection."""
    quiet, busy = tmp_path / "quiet" / "outbox.sqlite3", tmp_path / "busy" / "outbox.sqlite3"
    async with opened(quiet, limit=2000, checkpoint_every_s=3600) as outbox:
        # 600 rounds of one entry: more WAL pages than SQLite's autocheckpoint threshold.
        for seq in range(600):
            await outbox.add(_entry(seq))
            await outbox.flush()
        assert 0 == _rows_in_database_file(quiet)
    async with opened(busy, checkpoint_every_s=0.05) as outbox:
        for seq in range(30):
            await outbox.add(_entry(seq))
        await outbox.flush()
        await wait_for(lambda: _rows_in_database_file(busy) == 30, what="a checkpoint")


async def test_adds_within_the_round_interval_share_the_next_round(tmp_path: Path) -> None:
    """A round's fixed cost is paid at most once per interval, however the adds trickle in."""
    async with opened(tmp_path / "outbox.sqlite3", min_round_interval_s=0.3) as outbox:
        await outbox.add(_entry(0))
        await outbox.flush()
        for seq in range(1, 21):
            await outbox.add(_entry(seq))
            await asyncio.sleep(0.005)  # a receiver's pace, not a wait for a result
        await outbox.flush()
        assert (2, 21) == (outbox.rounds, outbox.rows_written)
