"""The state store: events, alarms, announcements, users, tokens, statuses.

SQLAlchemy 2 Core over an async engine; SQLite (WAL) by default, the same code
for PostgreSQL. Every method is one transaction. Upserts are written as
"update, else insert" so they stay portable across dialects; the hub is the
only writer of a given row.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError
from sqlalchemy import (
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from hub import migrate, tables
from hub.alarms import Outcome
from hub.errors import RoutineLimitReached, StoreError
from riverguard import sqlite_checkpoints
from riverguard.wire.models import Alarm, Availability, Event
from riverguard.wire.times import clamp_stored, format_ts

log = structlog.get_logger()

_T = TypeVar("_T")

_TRIGGERED = "trigger after an announcement"
# SQLite limits bound parameters per statement; chunk IN (...) lists below it.
_IN_CHUNK = 500
# Alarm and device keys remembered as stored, at most (see Store._stored).
_STORED_KEYS_MAX = 100_000
# Devices' last-heard times are written at most this often (see Store.commit_batch).
LAST_SEEN_WRITE_S = 5.0


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    name: str
    role: str
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class TokenRow:
    token_hash: str
    username: str
    kind: str
    session_id: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: str
    site: str
    online: bool | None
    battery: float | None
    rssi: int | None
    status_ts: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class EdgeRow:
    site: str
    online: bool
    version: str
    outbox: int
    ts: datetime
    # online, offline (lost: its last will) or stopped (a clean shutdown); PROTOCOL 7.10.
    state: Availability


@dataclass(frozen=True, slots=True)
class RoutineLimit:
    """A site's routine-announcement limit: fewer than ``limit`` since ``since``."""

    limit: int
    since: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    event_id: str
    site: str
    jpeg: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Rejection:
    topic: str
    reason: str
    detail: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record: who did what, when, to what, with the before and after states."""

    ts: datetime
    username: str
    action: str
    alarm_id: str | None = None
    target: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    detail: str = ""
    id: int | None = None

    def shape(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": format_ts(self.ts),
            "username": self.username,
            "action": self.action,
            "alarm_id": self.alarm_id,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "detail": self.detail,
        }


def alarm_audit(
    action: str, username: str, before: Alarm | None, after: Alarm, detail: str = ""
) -> AuditEntry:
    return AuditEntry(
        ts=after.updated_at,
        username=username,
        action=action,
        alarm_id=after.id,
        target=after.id,
        before=before.model_dump(mode="json") if before is not None else None,
        after=after.model_dump(mode="json"),
        detail=detail,
    )


@dataclass
class Batch:
    """What one ingest batch commits in one transaction."""

    events: list[Event] = field(default_factory=list)
    received_at: dict[str, datetime] = field(default_factory=dict)
    snapshots: list[Snapshot] = field(default_factory=list)
    last_seen: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    # Each event's JSON, serialised once: stored, and pushed to consoles as it is.
    event_json: dict[str, str] = field(default_factory=dict)
    # Device statuses, newest per device: written with the batch, not one transaction each.
    devices: list[DeviceRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Committed:
    new: list[Event]
    duplicates: list[str]
    outcome: Outcome
    # The JSON stored for each changed alarm (by id): consoles get the same text.
    alarm_json: dict[str, str] = field(default_factory=dict)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # We emit BEGIN ourselves (_sqlite_begin); the driver's implicit one cannot be IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL: readers (REST, WebSocket hello) never block the ingest writer.
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit acknowledged to an edge (PROTOCOL 3.3) survives a power cut.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # No checkpoint inside a commit: Store.run_checkpoints does it off the ingest path.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with
    # SQLITE_BUSY_SNAPSHOT if another connection wrote in between (the busy
    # timeout does not apply). Write transactions take the lock up front instead.
    immediate = conn.get_execution_options().get("begin_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_begin_immediate(conn: Connection) -> None:
    # Straight to the driver: the statement needs none of SQLAlchemy's execution path.
    conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


class Store:
    def __init__(self, engine: AsyncEngine, sqlite_ingest: Engine | None = None) -> None:
        self.engine = engine
        self._writer = engine.execution_options(begin_immediate=True)
        # SQLite has one writer at a time, and a connection waiting for the lock
        # sleeps in growing steps (1, 2, 5, 10 ms...) in its busy handler. Queueing
        # writers here instead hands the lock over at once.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        # SQLite: an ingest batch's transaction runs whole on a thread of its own over
        # a plain (sync) connection: one hand-over between threads per batch, where
        # aiosqlite takes three or four per statement (cursor, execute, fetch, close).
        self._sqlite_ingest = sqlite_ingest
        # The ingest thread's one connection, opened there and kept: checking a
        # connection out of the pool and back for every batch cost more than its SQL.
        self._ingest_conn: Connection | None = None
        self._ingest_thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub.ingest-store")
            if sqlite_ingest is not None
            else None
        )
        # Keys of alarm and device rows known to exist (rows of these tables are never
        # deleted): an upsert of one of them needs no look-up first. Learnt only from
        # committed transactions.
        self._stored: dict[str, set[Any]] = {"alarms": set(), "devices": set()}
        # Devices' last-heard times not yet written, and when they last were.
        self._last_seen: dict[str, tuple[str, datetime]] = {}
        self._last_seen_written = -math.inf
        self.last_seen_write_s = LAST_SEEN_WRITE_S

    @classmethod
    async def open(cls, url: str | URL, connect_args: Mapping[str, Any] | None = None) -> Store:
        """Connect, configure and migrate to the newest schema; ``connect_args`` go to
        the driver (hub/database.py: PostgreSQL's TLS)."""
        engine = create_async_engine(
            url, json_serializer=_json_text, connect_args=dict(connect_args or {})
        )
        sqlite_ingest = None
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
            # Only ever writes: every transaction of it takes the write lock at BEGIN.
            sqlite_ingest = create_engine(
                make_url(url).set(drivername="sqlite"), json_serializer=_json_text
            )
            event.listen(sqlite_ingest, "connect", _sqlite_pragmas)
            event.listen(sqlite_ingest, "begin", _sqlite_begin_immediate)
        try:
            await migrate.upgrade(engine)
        # OSError: a refused connection or TLS handshake (ssl.SSLError), which the
        # driver raises as it is.
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreError(f"cannot migrate the state store: {exc}") from exc
        return cls(engine, sqlite_ingest)

    async def run_checkpoints(self, every_s: float = sqlite_checkpoints.CHECKPOINT_EVERY_S) -> None:
        """SQLite: copy the WAL into the database file every ``every_s``
        (``riverguard.sqlite_checkpoints``); never returns. Nothing to do on PostgreSQL."""
        if self._sqlite_ingest is None:
            return
        database = self._sqlite_ingest.url.database or ""
        await sqlite_checkpoints.run_checkpoints(database, "state store", every_s)

    @property
    def ingest_engine(self) -> Engine:
        """The engine ingest batches are committed through."""
        return self._sqlite_ingest or self.engine.sync_engine

    async def close(self) -> None:
        if self._last_seen:
            try:
                await self._hot_write(_touch_devices, dict(self._last_seen), set())
            except (SQLAlchemyError, StoreError) as exc:
                log.warning("devices' last-heard times not written", error=str(exc))
        if self._ingest_thread is not None:
            # On its own thread: the connection belongs to it.
            await asyncio.get_running_loop().run_in_executor(
                self._ingest_thread, self._close_ingest
            )
            self._ingest_thread.shutdown(wait=True)
        await self.engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self._read() as conn:
                await conn.execute(text("SELECT 1"))
        except StoreError:
            return False
        return True

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"state store read failed: {exc}") from exc

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite it takes the write lock at BEGIN (see below)."""
        async with self._write_lock or contextlib.nullcontext():
            try:
                async with self._writer.begin() as conn:
                    yield conn
            except SQLAlchemyError as exc:
                raise StoreError(f"state store write failed: {exc}") from exc

    async def _hot_write(self, body: Callable[..., _T], *args: Any) -> _T:
        """``body(connection, *args)`` as one write transaction, for the writes of every
        ingest batch; on SQLite on the ingest thread (see ``__init__``)."""
        if self._ingest_thread is None or self._sqlite_ingest is None:
            async with self._write() as conn:
                return await conn.run_sync(body, *args)
        async with self._write_lock or contextlib.nullcontext():
            return await asyncio.get_running_loop().run_in_executor(
                self._ingest_thread, lambda: self._in_ingest_transaction(body, *args)
            )

    def _in_ingest_transaction(self, body: Callable[..., _T], *args: Any) -> _T:
        """On the ingest thread: ``body`` in a transaction of its kept connection."""
        assert self._sqlite_ingest is not None
        conn = self._ingest_conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._ingest_conn = self._sqlite_ingest.connect()
        try:
            with conn.begin():
                return body(conn, *args)
        except SQLAlchemyError:
            # Whatever state a failure (disk full, I/O error) left it in, the next
            # batch starts on a fresh connection.
            self._ingest_conn = None
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
            raise

    def _close_ingest(self) -> None:
        if self._ingest_conn is not None:
            self._ingest_conn.close()
            self._ingest_conn = None
        if self._sqlite_ingest is not None:
            self._sqlite_ingest.dispose()

    # --- events --------------------------------------------------------------

    async def commit_batch(
        self, batch: Batch, decide: Callable[[list[Event]], Outcome] | None = None
    ) -> Committed:
        """Commit new events, their alarms, snapshots and dead letters in one transaction.

        Events whose id is already stored (or repeated within the batch) are
        duplicates: not stored again and not given to ``decide``, which maps the
        new events to their alarms (``hub.alarms.apply_events``; pure, so it may run
        on the store's thread).

        Devices' last-heard times (``batch.last_seen``) are kept and written with a
        batch at most every ``last_seen_write_s`` and at ``close``: an UPDATE per
        device per batch cost more than the events' own INSERT. A crash loses a
        few seconds of them, never an event; the picture has them live.
        """
        touch = self._take_last_seen(batch)
        try:
            committed, alarms, devices = await self._hot_write(
                _commit, batch, touch, decide, self._stored
            )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot commit an ingest batch: {exc}") from exc
        if touch:
            self._last_seen_written = time.monotonic()
            for device, seen in touch.items():
                if self._last_seen.get(device) == seen:
                    del self._last_seen[device]
        for name, keys in (("alarms", alarms), ("devices", devices)):
            known = self._stored[name]
            if len(known) > _STORED_KEYS_MAX:
                known.clear()  # a cache: look the old ones up again rather than grow forever
            known |= keys
        return committed

    def _take_last_seen(self, batch: Batch) -> dict[str, tuple[str, datetime]]:
        """The last-heard times to write with this batch: none, or all that wait."""
        waiting = self._last_seen
        for device, seen in batch.last_seen.items():
            known = waiting.get(device)
            if known is None or seen[1] > known[1]:
                waiting[device] = seen
        for row in batch.devices:
            # A status row carries the device's last-heard time itself.
            known = waiting.get(row.id)
            if known is not None and row.last_seen is not None and known[1] <= row.last_seen:
                del waiting[row.id]
        if time.monotonic() - self._last_seen_written < self.last_seen_write_s:
            return {}
        return dict(waiting)

    async def existing_event_ids(self, ids: Sequence[str]) -> set[str]:
        async with self._read() as conn:
            return await conn.run_sync(_existing, ids)

    async def get_snapshot(self, event_id: str) -> bytes | None:
        async with self._read() as conn:
            result = await conn.execute(
                select(tables.snapshots.c.jpeg).where(tables.snapshots.c.event_id == event_id)
            )
            value = result.scalar_one_or_none()
        return bytes(value) if value is not None else None

    async def snapshot_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events have a stored snapshot (also one that came after its event)."""
        found: set[str] = set()
        async with self._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(event_ids))):
                result = await conn.execute(
                    select(tables.snapshots.c.event_id).where(
                        tables.snapshots.c.event_id.in_(chunk)
                    )
                )
                found.update(row[0] for row in result)
        return found

    async def get_event(self, event_id: str) -> Event | None:
        async with self._read() as conn:
            result = await conn.execute(
                select(tables.events.c.payload).where(tables.events.c.id == event_id)
            )
            payload = result.scalar_one_or_none()
        return _stored(Event, payload) if payload is not None else None

    async def influx_pending(self, limit: int) -> list[Event]:
        async with self._read() as conn:
            result = await conn.execute(
                select(tables.events.c.payload)
                .where(tables.events.c.influx_written.is_(False))
                .limit(limit)
            )
            return [_stored(Event, row[0]) for row in result]

    async def mark_influx_written(self, ids: Sequence[str]) -> None:
        try:
            await self._hot_write(_mark_influx_written, ids)
        except SQLAlchemyError as exc:
            raise StoreError(f"state store write failed: {exc}") from exc

    async def count_influx_pending(self) -> int:
        async with self._read() as conn:
            result = await conn.execute(
                select(func.count())
                .select_from(tables.events)
                .where(tables.events.c.influx_written.is_(False))
            )
            return int(result.scalar_one())

    async def count_rejected(self, reason: str | None = None) -> int:
        query = select(func.count()).select_from(tables.rejected)
        if reason is not None:
            query = query.where(tables.rejected.c.reason == reason)
        async with self._read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def reject(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        await self.commit_batch(Batch(rejections=list(rejections)))

    # --- alarms --------------------------------------------------------------

    async def active_alarms(self) -> list[Alarm]:
        async with self._read() as conn:
            result = await conn.execute(
                select(tables.alarms.c.data)
                .where(tables.alarms.c.state.in_(("open", "acknowledged")))
                .order_by(tables.alarms.c.opened_at)
            )
            return [_stored(Alarm, row[0]) for row in result]

    async def get_alarm(self, alarm_id: str) -> Alarm | None:
        async with self._read() as conn:
            result = await conn.execute(
                select(tables.alarms.c.data).where(tables.alarms.c.id == alarm_id)
            )
            data = result.scalar_one_or_none()
        return _stored(Alarm, data) if data is not None else None

    async def save_alarm(self, alarm: Alarm, audit: AuditEntry | None = None) -> None:
        """Save ``alarm``; its audit record goes first, in the same transaction."""
        try:
            async with self._write() as conn:
                if audit is not None:
                    await conn.run_sync(_insert_audit, [audit])
                await conn.run_sync(_upsert_many, tables.alarms, [_alarm_row(alarm)])
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot save alarm {alarm.id}: {exc}") from exc

    async def list_alarms(
        self,
        *,
        state: str | None = None,
        site: str | None = None,
        since: datetime | None = None,
        limit: int = 200,
    ) -> list[Alarm]:
        query = select(tables.alarms.c.data)
        if state is not None:
            query = query.where(tables.alarms.c.state == state)
        if site is not None:
            query = query.where(tables.alarms.c.site == site)
        if since is not None:
            query = query.where(tables.alarms.c.updated_at >= since)
        query = query.order_by(tables.alarms.c.opened_at.desc()).limit(limit)
        async with self._read() as conn:
            return [_stored(Alarm, row[0]) for row in await conn.execute(query)]

    async def count_alarms_by_state(self) -> dict[str, int]:
        async with self._read() as conn:
            result = await conn.execute(
                select(tables.alarms.c.state, func.count()).group_by(tables.alarms.c.state)
            )
            return {row[0]: int(row[1]) for row in result}

    # --- announcements -------------------------------------------------------

    async def insert_announcement(
        self,
        record: Mapping[str, Any],
        speakers: Mapping[str, str],
        audit: AuditEntry | None = None,
        *,
        routine_limit: RoutineLimit | None = None,
    ) -> None:
        """``record`` holds the announcements row; ``speakers`` each one's first state.

        With ``routine_limit`` the announcement is routine: it is recorded only if
        its site is under the limit, checked in this transaction, else
        ``RoutineLimitReached``. The check and the insert are one step: SQLite has
        one writer at a time, and on PostgreSQL a per-site advisory lock keeps two
        replicas from both taking the last place.
        """
        now = record["created_at"]
        site = record["site"]
        try:
            async with self._write() as conn:
                if routine_limit is not None:
                    if conn.dialect.name == "postgresql":
                        await conn.execute(
                            text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                            {"key": f"riverguard.routine:{site}"},
                        )
                    count = await _count_routine(conn, site, routine_limit.since)
                    if count >= routine_limit.limit:
                        raise RoutineLimitReached(site, count)
                if audit is not None:
                    await conn.run_sync(_insert_audit, [audit])
                await conn.execute(
                    insert(tables.announcements).values(**record, routine=routine_limit is not None)
                )
                await conn.execute(
                    insert(tables.announcement_speakers),
                    [
                        {
                            "announcement_id": record["id"],
                            "speaker": speaker,
                            "state": state,
                            "detail": "",
                            "updated_at": now,
                        }
                        for speaker, state in speakers.items()
                    ],
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record announcement {record['id']}: {exc}") from exc

    async def add_announcement_speaker(self, ann_id: str, speaker: str, now: datetime) -> None:
        """Another speaker of an announcement the hub learns of from acks (the edge's own)."""
        async with self._write() as conn:
            await conn.execute(
                insert(tables.announcement_speakers).values(
                    announcement_id=ann_id,
                    speaker=speaker,
                    state="pending",
                    detail="",
                    updated_at=now,
                )
            )

    async def count_routine(self, site: str, since: datetime) -> int:
        """The site's routine announcements made after ``since``."""
        async with self._read() as conn:
            return await _count_routine(conn, site, since)

    async def get_announcement(self, ann_id: str) -> dict[str, Any] | None:
        async with self._read() as conn:
            found = await _announcements(conn, tables.announcements.c.id == ann_id)
        return found[0] if found else None

    async def recent_announcements(self, since: datetime) -> list[dict[str, Any]]:
        async with self._read() as conn:
            return await _announcements(conn, tables.announcements.c.created_at >= since)

    async def set_speaker_states(
        self,
        ann_id: str,
        states: Mapping[str, tuple[str, str]],
        history: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        """Set speakers' (state, detail) and replace the announcement's history."""
        async with self._write() as conn:
            for speaker, (state, detail) in states.items():
                await conn.execute(
                    update(tables.announcement_speakers)
                    .where(
                        tables.announcement_speakers.c.announcement_id == ann_id,
                        tables.announcement_speakers.c.speaker == speaker,
                    )
                    .values(state=state, detail=detail, updated_at=now)
                )
            await conn.execute(
                update(tables.announcements)
                .where(tables.announcements.c.id == ann_id)
                .values(history=history)
            )

    # --- users and tokens ----------------------------------------------------

    async def upsert_user(
        self, username: str, name: str, role: str, password_hash: str | None, now: datetime
    ) -> None:
        values = {"name": name, "role": role, "password_hash": password_hash, "updated_at": now}
        async with self._write() as conn:
            result = await conn.execute(
                update(tables.users).where(tables.users.c.username == username).values(**values)
            )
            if result.rowcount == 0:
                await conn.execute(insert(tables.users).values(username=username, **values))

    async def get_user(self, username: str) -> UserRow | None:
        async with self._read() as conn:
            result = await conn.execute(
                select(tables.users).where(tables.users.c.username == username)
            )
            row = result.one_or_none()
        return UserRow(row.username, row.name, row.role, row.password_hash) if row else None

    async def usernames(self) -> list[str]:
        async with self._read() as conn:
            result = await conn.execute(select(tables.users.c.username))
            return [row.username for row in result]

    async def insert_tokens(
        self,
        tokens: Sequence[TokenRow],
        audit: AuditEntry | None = None,
        *,
        replaces: str | None = None,
    ) -> bool:
        """Store ``tokens``; with ``replaces`` (a refresh token's hash), only if that token
        still exists, which is then removed with its session's access tokens, all in one
        transaction: a refresh token is good once. False when it was already used."""
        now = min(token.created_at for token in tokens)
        async with self._write() as conn:
            t = tables.tokens
            if replaces is not None:
                gone = await conn.execute(
                    delete(t).where(t.c.token_hash == replaces, t.c.kind == "refresh")
                )
                if gone.rowcount != 1:
                    return False
                sessions = {token.session_id for token in tokens}
                await conn.execute(
                    delete(t).where(t.c.session_id.in_(sessions), t.c.kind == "access")
                )
            if audit is not None:
                await conn.run_sync(_insert_audit, [audit])
            await conn.execute(delete(t).where(t.c.expires_at < now))
            await conn.execute(
                insert(t),
                [
                    {
                        "token_hash": token.token_hash,
                        "username": token.username,
                        "created_at": token.created_at,
                        "expires_at": token.expires_at,
                        "kind": token.kind,
                        "session_id": token.session_id,
                    }
                    for token in tokens
                ],
            )
        return True

    async def token_owner(
        self, token_hash: str, kind: str, now: datetime
    ) -> tuple[UserRow, str, datetime] | None:
        """The user, session and expiry of a live token of that kind."""
        t = tables.tokens
        query = (
            select(tables.users, t.c.session_id, t.c.expires_at)
            .join(t, t.c.username == tables.users.c.username)
            .where(t.c.token_hash == token_hash, t.c.kind == kind, t.c.expires_at > now)
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        return (
            UserRow(row.username, row.name, row.role, row.password_hash),
            row.session_id,
            (row.expires_at),
        )

    async def session_alive(self, session_id: str, now: datetime) -> bool:
        """Whether the session still has a live token (its refresh token, at least)."""
        t = tables.tokens
        query = select(t.c.token_hash).where(t.c.session_id == session_id, t.c.expires_at > now)
        async with self._read() as conn:
            return (await conn.execute(query.limit(1))).first() is not None

    async def end_sessions(
        self,
        *,
        session_id: str | None = None,
        usernames: Sequence[str] = (),
        audit: Sequence[AuditEntry] = (),
    ) -> int:
        """Remove every token of a session, or of these users; the number removed."""
        t = tables.tokens
        where = []
        if session_id is not None:
            where.append(t.c.session_id == session_id)
        if usernames:
            where.append(t.c.username.in_(list(usernames)))
        if not where:
            return 0
        async with self._write() as conn:
            if audit:
                await conn.run_sync(_insert_audit, list(audit))
            result = await conn.execute(delete(t).where(or_(*where)))
        return int(result.rowcount or 0)

    # --- audit and timelines -------------------------------------------------

    async def audit(self, entries: Sequence[AuditEntry]) -> None:
        async with self._write() as conn:
            await conn.run_sync(_insert_audit, entries)

    async def list_audit(
        self,
        *,
        username: str | None = None,
        action: str | None = None,
        alarm_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        before_id: int | None = None,
        limit: int = 200,
        oldest_first: bool = False,
    ) -> list[AuditEntry]:
        a = tables.audit
        query = select(a)
        if username is not None:
            query = query.where(a.c.username == username)
        if action is not None:
            query = query.where(a.c.action == action)
        if alarm_id is not None:
            query = query.where(a.c.alarm_id == alarm_id)
        if start is not None:
            query = query.where(a.c.ts >= start)
        if end is not None:
            query = query.where(a.c.ts < end)
        if before_id is not None:
            query = query.where(a.c.id < before_id)
        order = a.c.id.asc() if oldest_first else a.c.id.desc()
        query = query.order_by(order).limit(limit)
        async with self._read() as conn:
            return [
                AuditEntry(
                    ts=r.ts,
                    username=r.username,
                    action=r.action,
                    alarm_id=r.alarm_id,
                    target=r.target,
                    before=r.before,
                    after=r.after,
                    detail=r.detail,
                    id=r.id,
                )
                for r in await conn.execute(query)
            ]

    async def alarm_events(self, alarm_id: str) -> list[tuple[Event, datetime]]:
        """An alarm's events with their receipt times, oldest first."""
        e = tables.events
        async with self._read() as conn:
            result = await conn.execute(
                select(e.c.payload, e.c.received_at)
                .where(e.c.alarm_id == alarm_id)
                .order_by(e.c.received_at, e.c.ts)
            )
            return [(_stored(Event, row[0]), row[1]) for row in result]

    async def alarm_announcements(self, alarm_id: str) -> list[dict[str, Any]]:
        async with self._read() as conn:
            return await _announcements(conn, tables.announcements.c.alarm_id == alarm_id)

    # --- device and edge statuses --------------------------------------------

    async def load_devices(self) -> list[DeviceRow]:
        async with self._read() as conn:
            result = await conn.execute(select(tables.devices))
            return [
                DeviceRow(r.id, r.site, r.online, r.battery, r.rssi, r.status_ts, r.last_seen)
                for r in result
            ]

    async def load_edges(self) -> list[EdgeRow]:
        async with self._read() as conn:
            result = await conn.execute(select(tables.edges))
            return [
                EdgeRow(r.site, r.online, r.version, r.outbox, r.ts, state=r.state) for r in result
            ]

    async def save_edge(self, row: EdgeRow) -> None:
        values = {
            "online": row.online,
            "state": row.state,
            "version": row.version,
            "outbox": row.outbox,
            "ts": row.ts,
        }
        async with self._write() as conn:
            result = await conn.execute(
                update(tables.edges).where(tables.edges.c.site == row.site).values(**values)
            )
            if result.rowcount == 0:
                await conn.execute(insert(tables.edges).values(site=row.site, **values))


# --- helpers -------------------------------------------------------------------


class JsonText(str):
    """JSON already serialised (by pydantic, once per event): stored as it is."""

    __slots__ = ()


def _json_text(value: Any) -> str:
    if isinstance(value, JsonText):
        return value
    return json.dumps(value, ensure_ascii=False)


def _event_row(
    ev: Event, received_at: datetime, alarm_id: str | None, text: str | None = None
) -> dict[str, Any]:
    return {
        "id": ev.id,
        "site": ev.site,
        "device": ev.device,
        "kind": ev.kind,
        "zone": ev.zone,
        "ts": ev.ts,
        "edge_ts": ev.edge_ts,
        "severity": ev.severity,
        "payload": JsonText(text) if text is not None else ev.model_dump(mode="json"),
        "received_at": received_at,
        "alarm_id": alarm_id,
        "influx_written": False,
    }


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _commit(
    conn: Connection,
    batch: Batch,
    touch: Mapping[str, tuple[str, datetime]],
    decide: Callable[[list[Event]], Outcome] | None,
    stored: Mapping[str, AbstractSet[Any]],
) -> tuple[Committed, set[Any], set[Any]]:
    """An ingest batch's transaction (``Store.commit_batch``): what it committed, and
    the alarm and device keys stored once it commits."""
    existing = _existing(conn, [e.id for e in batch.events])
    new: list[Event] = []
    duplicates: list[str] = []
    for ev in batch.events:
        if ev.id in existing:
            duplicates.append(ev.id)
        else:
            existing.add(ev.id)
            new.append(ev)
    outcome = decide(new) if decide is not None and new else Outcome()
    if new:
        _insert_events(
            conn,
            [
                _event_row(
                    ev,
                    batch.received_at[ev.id],
                    outcome.alarm_of.get(ev.id),
                    batch.event_json.get(ev.id),
                )
                for ev in new
            ],
        )
    # Escalations by a trigger after an announcement are audited in the
    # same transaction, ahead of the alarm change itself.
    _insert_audit(
        conn,
        [
            alarm_audit("escalate", "system", before, after, _TRIGGERED)
            for before, after in outcome.escalated
        ],
    )
    alarm_json = {a.id: a.model_dump_json() for a in outcome.changed.values()}
    alarms = _upsert_many(
        conn,
        tables.alarms,
        [_alarm_row(a, alarm_json[a.id]) for a in outcome.changed.values()],
        stored=stored["alarms"],
    )
    _insert_snapshots(conn, batch.snapshots)
    devices = _touch_devices(conn, touch, stored["devices"])
    devices |= _upsert_many(
        conn, tables.devices, [_device_row(d) for d in batch.devices], stored=stored["devices"]
    )
    if batch.rejections:
        conn.execute(
            insert(tables.rejected),
            [
                {
                    "topic": r.topic,
                    "reason": r.reason,
                    "detail": r.detail,
                    "payload": r.payload,
                    "received_at": r.received_at,
                }
                for r in batch.rejections
            ],
        )
    return Committed(new, duplicates, outcome, alarm_json), alarms, devices


def _insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name != "sqlite":
        conn.execute(insert(tables.events), rows)
        return
    # On SQLite the statement goes to the driver with the values as SQLAlchemy would
    # bind them: its per-row parameter processing was a third of an ingest batch's CPU.
    # test_store checks that both ways store the same bytes.
    conn.exec_driver_sql(
        _SQLITE_INSERT_EVENT,
        [
            (
                row["id"],
                row["site"],
                row["device"],
                row["kind"],
                row["zone"],
                _sqlite_time(row["ts"]),
                _sqlite_time(row["edge_ts"]),
                row["severity"],
                _json_text(row["payload"]),
                _sqlite_time(row["received_at"]),
                row["alarm_id"],
                int(row["influx_written"]),
            )
            for row in rows
        ],
    )


_SQLITE_INSERT_EVENT = (
    "INSERT INTO events (id, site, device, kind, zone, ts, edge_ts, severity, payload,"
    " received_at, alarm_id, influx_written) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@functools.lru_cache(maxsize=4096)
def _sqlite_time(value: datetime) -> str:
    """A time as SQLAlchemy's SQLite DATETIME stores it (``tables.UTCDateTime``: UTC).

    Cached: a batch's events share their receipt time, and events of one
    millisecond their times. Equal instants in other zones give the same text.
    """
    value = tables.as_utc(value)
    # SQLAlchemy's own storage format, %-formatted as it does: 1.6x faster than
    # replace() + isoformat(), three times per event.
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def _mark_influx_written(conn: Connection, ids: Sequence[str]) -> None:
    for chunk in _chunks(ids):
        conn.execute(
            update(tables.events).where(tables.events.c.id.in_(chunk)).values(influx_written=True)
        )


def _insert_snapshots(conn: Connection, snaps: list[Snapshot]) -> None:
    for snap in snaps:
        # A resent snapshot replaces the stored one: same event, same picture.
        conn.execute(delete(tables.snapshots).where(tables.snapshots.c.event_id == snap.event_id))
        conn.execute(
            insert(tables.snapshots).values(
                event_id=snap.event_id,
                site=snap.site,
                jpeg=snap.jpeg,
                received_at=snap.received_at,
            )
        )


def _existing(conn: Connection, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    sqlite = conn.dialect.name == "sqlite"
    for chunk in _chunks(list(dict.fromkeys(ids))):
        if sqlite:
            # Straight to the driver: building and caching the expanding IN for every
            # batch cost more than the look-up itself.
            marks = ",".join("?" * len(chunk))
            result = conn.exec_driver_sql(
                f"SELECT id FROM events WHERE id IN ({marks})",  # noqa: S608  # only '?' marks
                tuple(chunk),
            )
        else:
            result = conn.execute(select(tables.events.c.id).where(tables.events.c.id.in_(chunk)))
        found.update(row[0] for row in result)
    return found


def _alarm_row(alarm: Alarm, text: str | None = None) -> dict[str, Any]:
    return {
        "id": alarm.id,
        "site": alarm.site,
        "zone": alarm.zone,
        "state": alarm.state,
        "data": JsonText(text if text is not None else alarm.model_dump_json()),
        "opened_at": alarm.opened_at,
        "updated_at": alarm.updated_at,
    }


def _device_row(row: DeviceRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "site": row.site,
        "online": row.online,
        "battery": row.battery,
        "rssi": row.rssi,
        "status_ts": row.status_ts,
        "last_seen": row.last_seen,
    }


@functools.lru_cache(maxsize=64)
def _update_by_key(table: Table, columns: tuple[str, ...]) -> Any:
    """UPDATE ``columns`` of the row whose key is ``k_``; built once per shape, as its
    cache key costs SQLAlchemy more to work out than the statement costs to run."""
    key = table.primary_key.columns.values()[0]
    # Bound names must differ from the column names SQLAlchemy binds itself.
    return (
        update(table)
        .where(key == bindparam("k_"))
        .values({name: bindparam(f"v_{name}") for name in columns})
    )


def _upsert_many(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    update_columns: Sequence[str] | None = None,
    stored: AbstractSet[Any] = frozenset(),
) -> set[Any]:
    """Update the rows whose key exists, insert the others: three statements for any number.

    ``rows`` share their keys; the table's first primary key column is the key.
    ``update_columns``: what an existing row gets (default: every column given).
    ``stored``: keys known to exist, not looked up. Returns the keys that exist
    once the transaction commits.
    """
    if not rows:
        return set()
    key = table.primary_key.columns.values()[0]
    existing = {row[key.name] for row in rows if row[key.name] in stored}
    unknown = [row[key.name] for row in rows if row[key.name] not in existing]
    for chunk in _chunks(unknown):
        result = conn.execute(select(key).where(key.in_(chunk)))
        existing.update(value for (value,) in result)
    updates = [row for row in rows if row[key.name] in existing]
    inserts = [row for row in rows if row[key.name] not in existing]
    if updates:
        columns = tuple(name for name in update_columns or rows[0] if name != key.name)
        conn.execute(
            _update_by_key(table, columns),
            [{"k_": row[key.name], **{f"v_{n}": row[n] for n in columns}} for row in updates],
        )
    if inserts:
        conn.execute(insert(table), inserts)
    return existing | {row[key.name] for row in inserts}


def _insert_audit(conn: Connection, entries: Sequence[AuditEntry]) -> None:
    if not entries:
        return
    conn.execute(
        insert(tables.audit),
        [
            {
                "ts": e.ts,
                "username": e.username,
                "action": e.action,
                "alarm_id": e.alarm_id,
                "target": e.target,
                "before": e.before,
                "after": e.after,
                "detail": e.detail,
            }
            for e in entries
        ],
    )


def _touch_devices(
    conn: Connection,
    last_seen: Mapping[str, tuple[str, datetime]],
    stored: AbstractSet[str] = frozenset(),
) -> set[Any]:
    """When each device was last heard of; a known device keeps its status columns."""
    rows = [{"id": d, "site": site, "last_seen": seen} for d, (site, seen) in last_seen.items()]
    return _upsert_many(conn, tables.devices, rows, update_columns=("last_seen",), stored=stored)


async def _count_routine(conn: AsyncConnection, site: str, since: datetime) -> int:
    a = tables.announcements
    result = await conn.execute(
        select(func.count()).where(a.c.site == site, a.c.routine, a.c.created_at > since)
    )
    return int(result.scalar_one())


async def _announcements(conn: AsyncConnection, where: Any) -> list[dict[str, Any]]:
    a = tables.announcements
    s = tables.announcement_speakers
    rows = (await conn.execute(select(a).where(where).order_by(a.c.created_at))).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    speakers: dict[str, dict[str, str]] = {ann_id: {} for ann_id in ids}
    for chunk in _chunks(ids):
        result = await conn.execute(
            select(s.c.announcement_id, s.c.speaker, s.c.state)
            .where(s.c.announcement_id.in_(chunk))
            .order_by(s.c.speaker)
        )
        for ann_id, speaker, state in result:
            speakers[ann_id][speaker] = state
    return [
        {
            "id": row.id,
            "alarm_id": row.alarm_id,
            "site": row.site,
            "requested_by": row.requested_by,
            "created_at": row.created_at,
            "clip": row.clip,
            "priority": row.priority,
            "repeat": row.repeat,
            "volume": row.volume,
            "expires_at": row.expires_at,
            "speakers": speakers[row.id],
            "history": row.history,
        }
        for row in rows
    ]


_Stored = TypeVar("_Stored", Event, Alarm)


def _stored(model: type[_Stored], data: Any) -> _Stored:
    """A stored event or alarm; one kept with a time the wire no longer takes (a year-9999
    event an older hub committed) is read with that time moved into range, not refused."""
    try:
        return model.model_validate(data)
    except ValidationError:
        if not isinstance(data, dict):
            raise
        return model.model_validate(clamp_stored(data))
