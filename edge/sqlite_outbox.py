"""The on-disk outbox: SQLite in WAL mode with ``synchronous=FULL``, group-committed.

Every entry is a row; an in-memory mirror (id -> entry, in send order) answers
``due``, ``len`` and the drop policy without touching the disk. Writes
(adds, commits, drops) are queued and written by ``run``, the one writer
task, in a single transaction per round: while one fsync is in progress the
next round's writes accumulate, so the cost of durability is per round, not
per event (see ``edge.outbox`` for how the agent waits on ``flush``).

All SQLite calls run on one thread of our own, fed through a queue, that hands
each result back with ``call_soon_threadsafe``: the connection is used from
that thread only, and a write still running when the writer task is cancelled
finishes before ``close`` runs. (A ``ThreadPoolExecutor`` did the same with
locks, a semaphore and two chained futures per call; its ``submit`` alone was
~8 % of the edge's profile at 1,500 events/s.) ``flush`` only waits for the
round in progress; a round with nothing to write does not go to the thread.

Snapshots are kept in memory only until their first send; a resend reads them
back from disk.

Schema: ``outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE,
critical INTEGER, payload BLOB, snapshot BLOB)`` in insertion order, and
``meta(key, value)`` with the ever-dropped count.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

from edge.outbox import DEFAULT_LIMIT, OutboxEntry, call_logged, make_room, reset_order
from riverguard import sqlite_checkpoints
from riverguard.wire.models import Event

log = structlog.get_logger()

_T = TypeVar("_T")
# After a failed write (disk full, I/O error), wait this long before trying again.
RETRY_AFTER_S = 1.0
# Shortest time between the starts of two write rounds: what is added meanwhile waits
# (up to this long) and joins the next round.
MIN_ROUND_INTERVAL_S = 0.005

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        critical INTEGER NOT NULL,
        payload BLOB NOT NULL,
        snapshot BLOB
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_INSERT = (
    "INSERT INTO outbox (id, critical, payload, snapshot) VALUES (?, ?, ?, ?)"
    " ON CONFLICT(id) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class _Delete:
    ids: tuple[str, ...]


# An entry to write, or ids to delete.
_Op = OutboxEntry | _Delete
# A call for the outbox thread and the future its result goes to; None stops the thread.
_Job = tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop] | None


class SqliteOutbox:
    def __init__(
        self,
        path: Path,
        limit: int = DEFAULT_LIMIT,
        checkpoint_every_s: float = sqlite_checkpoints.CHECKPOINT_EVERY_S,
        min_round_interval_s: float = MIN_ROUND_INTERVAL_S,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.path = path
        self.limit = limit
        self.checkpoint_every_s = checkpoint_every_s
        self.min_round_interval_s = min_round_interval_s
        self.dropped = 0
        self._entries: OrderedDict[str, OutboxEntry] = OrderedDict()
        self._added = 0
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._pending: list[_Op] = []
        self._generation = 0  # of the last queued write
        self._durable = 0  # of the last write on disk
        self._dirty = asyncio.Event()
        self._progress = asyncio.Event()
        # ``when_durable`` callbacks and the generation each waits for, in order.
        self._on_durable: deque[tuple[int, Callable[[], None]]] = deque()
        self._dropped_on_disk = 0
        # Rounds written and entries per round, for the metrics and the report.
        self.rounds = 0
        self.rows_written = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._entries

    # --- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return
        rows, dropped = await self._call(self._open)
        for payload in rows:
            # The snapshot stays on disk until the event is due (``due`` reads it).
            event = Event.model_validate_json(payload)
            self._added += 1
            self._entries[event.id] = OutboxEntry(event, payload, order=self._added)
        self.dropped = self._dropped_on_disk = dropped
        log.info("outbox opened", path=str(self.path), entries=len(self._entries), dropped=dropped)

    async def run(self) -> None:
        """The writer, and the WAL's checkpoints beside it (``riverguard.sqlite_checkpoints``),
        forever."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                sqlite_checkpoints.run_checkpoints(self.path, "outbox", self.checkpoint_every_s)
            )
            await self._write_rounds()

    async def _write_rounds(self) -> None:
        """One transaction per round of queued writes, forever."""
        started = 0.0
        while True:
            await self._dirty.wait()
            # Rounds start at most every ``min_round_interval_s``: a round's fixed cost (a
            # hand-over to the thread, a transaction, an fsync, a publish) paid for a few
            # events at a time was ~10-20 % of the edge's CPU at 2,000-3,000 events/s.
            wait = started + self.min_round_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            started = time.monotonic()
            self._dirty.clear()
            ops, self._pending = self._pending, []
            generation = self._generation
            dropped = self.dropped
            if ops or dropped != self._dropped_on_disk:
                try:
                    await self._call(functools.partial(self._write, ops, dropped))
                except sqlite3.Error as exc:
                    # Nothing waiting on this round is published or acknowledged: retry it.
                    log.exception("outbox write failed", error=str(exc), retry_in_s=RETRY_AFTER_S)
                    self._pending = ops + self._pending
                    await asyncio.sleep(RETRY_AFTER_S)
                    self._dirty.set()
                    continue
                self.rounds += 1
                self.rows_written += sum(1 for op in ops if isinstance(op, OutboxEntry))
            self._made_durable(generation)

    async def flush(self) -> None:
        # What is not durable yet is either queued (``_queue`` woke the writer) or in
        # the round being written (which sets ``_progress`` when done).
        target = self._generation
        while self._durable < target:
            await self._progress.wait()

    def when_durable(self, callback: Callable[[], None]) -> None:
        if self._durable >= self._generation:
            call_logged(callback)
        else:
            self._on_durable.append((self._generation, callback))

    async def close(self) -> None:
        """Write what is queued (directly: the writer task may be gone) and close."""
        if self._pending:
            ops, self._pending = self._pending, []
            await self._call(functools.partial(self._write, ops, self.dropped))
            self._made_durable(self._generation)
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        if self._thread is not None:
            self._jobs.put(None)
            # The thread has nothing left to do but to end: a short join.
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    # --- the Outbox protocol --------------------------------------------------------

    async def add(self, entry: OutboxEntry) -> int:
        if entry.id in self._entries:
            return 0  # already kept (a device's redelivery after an edge restart)
        victims = make_room(self._entries, self.limit)
        self._added += 1
        entry.order = self._added
        self._entries[entry.id] = entry
        if victims:
            self.dropped += len(victims)
            self._queue(_Delete(tuple(victim.id for victim in victims)))
        self._queue(entry)
        return len(victims)

    async def ack(self, ids: Iterable[str]) -> int:
        removed = [event_id for event_id in ids if self._entries.pop(event_id, None) is not None]
        if removed:
            self._queue(_Delete(tuple(removed)))
        return len(removed)

    async def due(self, now: float, resend_after: float, limit: int) -> list[OutboxEntry]:
        result: list[OutboxEntry] = []
        for entry in self._entries.values():
            if len(result) >= limit:
                break
            if entry.sent_at is not None and now - entry.sent_at < resend_after:
                break  # sent later than every entry after it: nothing further is due
            result.append(entry)
        missing = [entry for entry in result if entry.event.snapshot and entry.snapshot is None]
        if missing:
            await self.flush()  # the snapshot may still be on its way to disk
            snapshots = await self._call(
                functools.partial(self._snapshots, [entry.id for entry in missing])
            )
            for entry in missing:
                entry.snapshot = snapshots.get(entry.id)
        return result

    async def mark_sent(self, entries: Sequence[OutboxEntry], now: float) -> None:
        for entry in entries:
            if entry.id in self._entries:
                entry.sent_at = now
                entry.sends += 1
                entry.snapshot = None  # on disk; read back if it is resent
                self._entries.move_to_end(entry.id)

    async def reset(self) -> None:
        reset_order(self._entries)

    # --- internals ------------------------------------------------------------------

    def _made_durable(self, generation: int) -> None:
        self._durable = generation
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()
        waiting = self._on_durable
        while waiting and waiting[0][0] <= generation:
            call_logged(waiting.popleft()[1])

    def _queue(self, op: _Op) -> None:
        self._pending.append(op)
        self._generation += 1
        self._dirty.set()

    async def _call(self, function: Callable[[], _T]) -> _T:
        # SQLite blocks (an fsync takes milliseconds): run it on our one outbox thread.
        if self._thread is None:
            # A daemon: an edge that dies without ``close`` must still exit; a write cut
            # short is a transaction SQLite rolls back, and nothing waiting on it went out.
            self._thread = threading.Thread(target=self._serve, name="edge.outbox", daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._jobs.put((function, future, loop))
        return await future

    def _serve(self) -> None:
        """The outbox thread: run each job in turn, hand its outcome to the event loop."""
        while (job := self._jobs.get()) is not None:
            function, future, loop = job
            try:
                result = function()
            except BaseException as exc:  # handed to the awaiting task
                outcome = functools.partial(_set_exception, future, exc)
            else:
                outcome = functools.partial(_set_result, future, result)
            # RuntimeError: the loop is closed, and nobody awaits the result any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(outcome)

    def _open(self) -> tuple[list[bytes], int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsync'd at every commit, so a committed round survives power loss.
        db.execute("PRAGMA synchronous=FULL")
        # No checkpoint inside a round's commit: ``run`` checkpoints beside the writer.
        db.execute("PRAGMA wal_autocheckpoint=0")
        for statement in _SCHEMA:
            db.execute(statement)
        rows = db.execute("SELECT payload FROM outbox ORDER BY seq").fetchall()
        found = db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        self._db = db
        return [bytes(row[0]) for row in rows], int(found[0] if found else 0)

    def _write(self, ops: list[_Op], dropped: int) -> None:
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("outbox is not open")
        db.execute("BEGIN IMMEDIATE")
        try:
            puts: list[tuple[str, int, bytes, bytes | None]] = []
            for op in ops:
                if isinstance(op, OutboxEntry):
                    puts.append((op.id, int(op.critical), op.payload, op.snapshot))
                    continue
                if puts:  # the adds before this delete, in one statement
                    db.executemany(_INSERT, puts)
                    puts = []
                db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in op.ids])
            if puts:
                db.executemany(_INSERT, puts)
            if dropped != self._dropped_on_disk:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('dropped', ?)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (dropped,),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._dropped_on_disk = dropped

    def _snapshots(self, ids: list[str]) -> dict[str, bytes]:
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("outbox is not open")
        found: dict[str, bytes] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for event_id, snapshot in db.execute(
                f"SELECT id, snapshot FROM outbox WHERE id IN ({marks})",  # noqa: S608  # only '?' marks
                chunk,
            ):
                if snapshot is not None:
                    found[event_id] = bytes(snapshot)
        return found


def _set_result(future: asyncio.Future[Any], result: object) -> None:
    if not future.done():  # the awaiting task may have been cancelled meanwhile
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
