"""The store's connections: reads, write transactions, and the SQL every repository shares.

SQLAlchemy 2 Core over an async engine; SQLite (WAL) by default, the same code
for PostgreSQL. What differs between the two is chosen once, when the store
opens (``Database.open``): SQLite's pragmas and one writer at a time, or
PostgreSQL's advisory locks. Upserts are written as "update, else insert" so
they stay portable across dialects; the hub is the only writer of a given row.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, event, insert, select, text, update
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from hub import migrate
from hub.errors import StoreError
from riverguard.wire.models import Alarm, Event
from riverguard.wire.times import clamp_stored

# SQLite limits bound parameters per statement; chunk IN (...) lists below it.
IN_CHUNK = 500


class Database:
    """The async engine, with reads and write transactions that translate its errors."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(begin_immediate=True)
        # SQLite has one writer at a time, and a connection waiting for the lock
        # sleeps in growing steps (1, 2, 5, 10 ms...) in its busy handler. Queueing
        # writers here instead hands the lock over at once.
        self.write_lock = asyncio.Lock() if self.sqlite else None
        # How a write transaction holds a key against other hub replicas: PostgreSQL's
        # advisory lock; SQLite's write transactions are one at a time anyway.
        self._exclusive = (
            None if self.sqlite else text("SELECT pg_advisory_xact_lock(hashtext(:key))")
        )

    @classmethod
    async def open(cls, url: str | URL, connect_args: Mapping[str, Any] | None = None) -> Database:
        """Connect, configure and migrate to the newest schema."""
        engine = create_async_engine(
            url, json_serializer=json_text, connect_args=dict(connect_args or {})
        )
        database = cls(engine)
        if database.sqlite:
            event.listen(engine.sync_engine, "connect", sqlite_pragmas)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        try:
            await migrate.upgrade(engine)
        # OSError: a refused connection or TLS handshake (ssl.SSLError), which the
        # driver raises as it is.
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreError(f"cannot migrate the state store: {exc}") from exc
        return database

    @property
    def sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"state store read failed: {exc}") from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite it takes the write lock at BEGIN (see below)."""
        async with self.write_lock or contextlib.nullcontext():
            try:
                async with self._writer.begin() as conn:
                    yield conn
            except SQLAlchemyError as exc:
                raise StoreError(f"state store write failed: {exc}") from exc

    async def exclusive(self, conn: AsyncConnection, key: str) -> None:
        """Hold ``key`` until ``conn``'s write transaction ends, against other hub replicas."""
        if self._exclusive is not None:
            await conn.execute(self._exclusive, {"key": key})


def sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # We emit BEGIN ourselves (_sqlite_begin); the driver's implicit one cannot be IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL: readers (REST, WebSocket hello) never block the ingest writer.
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit acknowledged to an edge (PROTOCOL 3.3) survives a power cut.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # No checkpoint inside a commit: the store's run_checkpoints does it off the ingest path.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with
    # SQLITE_BUSY_SNAPSHOT if another connection wrote in between (the busy
    # timeout does not apply). Write transactions take the lock up front instead.
    immediate = conn.get_execution_options().get("begin_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class JsonText(str):
    """JSON already serialised (by pydantic, once per event): stored as it is."""

    __slots__ = ()


def json_text(value: Any) -> str:
    if isinstance(value, JsonText):
        return value
    return json.dumps(value, ensure_ascii=False)


def chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


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


def upsert_many(
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
    for chunk in chunks(unknown):
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


_Stored = TypeVar("_Stored", Event, Alarm)


def stored(model: type[_Stored], data: Any) -> _Stored:
    """A stored event or alarm; one kept with a time the wire no longer takes (a year-9999
    event an older hub committed) is read with that time moved into range, not refused."""
    try:
        return model.model_validate(data)
    except ValidationError:
        if not isinstance(data, dict):
            raise
        return model.model_validate(clamp_stored(data))
