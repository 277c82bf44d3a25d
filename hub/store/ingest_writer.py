"""How ingest batches are written: one protocol, chosen once when the store opens.

``SqliteIngestWriter`` runs each batch's transaction whole on a thread of its
own over a plain (sync) connection, straight to the driver where SQLAlchemy's
per-row work cost more than the SQL; ``CoreIngestWriter`` (PostgreSQL) runs it
through SQLAlchemy Core on the async engine. Both store the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sqlalchemy import Table, create_engine, event, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from hub import tables
from hub.store.db import Database, chunks, json_text, sqlite_pragmas
from riverguard import sqlite_checkpoints

_T = TypeVar("_T")


class IngestWriter(Protocol):
    """Runs the writes of every ingest batch (events, their alarms, influx marks)."""

    @property
    def engine(self) -> Engine:
        """The sync engine batches are committed through."""

    async def run(self, body: Callable[..., _T], *args: Any) -> _T:
        """``body(connection, *args)`` as one write transaction; SQLAlchemy's errors
        pass through as they are."""

    def insert_events(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT events rows (``tables.events`` columns by name)."""

    def existing_event_ids(self, conn: Connection, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are stored events."""

    async def run_checkpoints(self, every_s: float) -> None:
        """Keep the database file up to date with its log, if the database has one to do."""

    async def close(self) -> None: ...


def open_writer(database: Database) -> IngestWriter:
    if database.sqlite:
        return SqliteIngestWriter(database)
    return CoreIngestWriter(database)


class CoreIngestWriter:
    """Batches through SQLAlchemy Core in the async engine's write transactions."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def engine(self) -> Engine:
        return self._database.engine.sync_engine

    async def run(self, body: Callable[..., _T], *args: Any) -> _T:
        async with self._database.write() as conn:
            return await conn.run_sync(body, *args)

    def insert_events(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        conn.execute(insert(tables.events), list(rows))

    def existing_event_ids(self, conn: Connection, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(list(dict.fromkeys(ids))):
            result = conn.execute(select(tables.events.c.id).where(tables.events.c.id.in_(chunk)))
            found.update(row[0] for row in result)
        return found

    async def run_checkpoints(self, every_s: float) -> None:
        """Nothing to do: PostgreSQL checkpoints by itself."""

    async def close(self) -> None:
        """The async engine is the database's to close."""


class SqliteIngestWriter:
    """One write transaction per batch on a thread of its own.

    One hand-over between threads per batch, where aiosqlite takes three or four
    per statement (cursor, execute, fetch, close). Writers queue on the
    database's write lock, so the thread and the async engine never wait on
    SQLite's busy handler for each other.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        url = database.engine.url.set(drivername="sqlite")
        # Only ever writes: every transaction of it takes the write lock at BEGIN.
        self._engine = create_engine(url, json_serializer=json_text)
        event.listen(self._engine, "connect", sqlite_pragmas)
        event.listen(self._engine, "begin", _begin_immediate)
        # The thread's one connection, opened there and kept: checking a connection
        # out of the pool and back for every batch cost more than its SQL.
        self._conn: Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub.ingest-store")
        self._insert_events, self._event_binds = _driver_insert(self._engine, tables.events)
        self._event_values = operator.itemgetter(*tables.events.columns.keys())

    @property
    def engine(self) -> Engine:
        return self._engine

    async def run(self, body: Callable[..., _T], *args: Any) -> _T:
        async with self._database.write_lock or contextlib.nullcontext():
            return await asyncio.get_running_loop().run_in_executor(
                self._thread, lambda: self._in_transaction(body, *args)
            )

    def _in_transaction(self, body: Callable[..., _T], *args: Any) -> _T:
        """On the thread: ``body`` in a transaction of its kept connection."""
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._conn = self._engine.connect()
        try:
            with conn.begin():
                return body(conn, *args)
        except SQLAlchemyError:
            # Whatever state a failure (disk full, I/O error) left it in, the next
            # batch starts on a fresh connection.
            self._conn = None
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
            raise

    def insert_events(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        # The statement goes to the driver with the values bound by each column's own
        # type, as SQLAlchemy would: its per-row parameter processing was a third of
        # an ingest batch's CPU. test_store checks that both ways store the same bytes.
        binds, values_of = self._event_binds, self._event_values
        params = []
        for row in rows:
            values = list(values_of(row))
            for index, bind in binds:
                values[index] = bind(values[index])
            params.append(tuple(values))
        conn.exec_driver_sql(self._insert_events, params)

    def existing_event_ids(self, conn: Connection, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(list(dict.fromkeys(ids))):
            # Straight to the driver: building and caching the expanding IN for every
            # batch cost more than the look-up itself.
            marks = ",".join("?" * len(chunk))
            result = conn.exec_driver_sql(
                f"SELECT id FROM events WHERE id IN ({marks})",  # noqa: S608  # only '?' marks
                tuple(chunk),
            )
            found.update(row[0] for row in result)
        return found

    async def run_checkpoints(self, every_s: float) -> None:
        """Copy the WAL into the database file every ``every_s``
        (``riverguard.sqlite_checkpoints``); never returns."""
        database = self._engine.url.database or ""
        await sqlite_checkpoints.run_checkpoints(database, "state store", every_s)

    async def close(self) -> None:
        # On its own thread: the connection belongs to it.
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()


def _begin_immediate(conn: Connection) -> None:
    # Straight to the driver: the statement needs none of SQLAlchemy's execution path.
    conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


def _driver_insert(
    engine: Engine, table: Table
) -> tuple[str, list[tuple[int, Callable[[Any], Any]]]]:
    """``table``'s INSERT of every column, compiled for ``engine``'s driver, and the bind
    processor of each column that has one (by position), from the table definition."""
    dialect = engine.dialect
    statement = str(insert(table).compile(dialect=dialect))
    binds: list[tuple[int, Callable[[Any], Any]]] = []
    for index, column in enumerate(table.columns):
        bind = column.type.dialect_impl(dialect).bind_processor(dialect)
        if bind is not None:
            binds.append((index, bind))
    return statement, binds
