"""The audit trail: who did what, written in the transaction of the change itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from hub import tables
from hub.store.db import Database
from hub.store.rows import AuditEntry

# AuditEntry's fields are the audit table's columns, by the same names.
_COLUMNS = tuple(field.name for field in fields(AuditEntry))


class Audit:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def save(self, entries: Sequence[AuditEntry]) -> None:
        async with self._database.write() as conn:
            await conn.run_sync(insert_audit, entries)

    async def find(
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
        async with self._database.read() as conn:
            return [
                AuditEntry(**{name: getattr(r, name) for name in _COLUMNS})
                for r in await conn.execute(query)
            ]


def insert_audit(conn: Connection, entries: Sequence[AuditEntry]) -> None:
    if not entries:
        return
    conn.execute(
        insert(tables.audit),
        # The id is the database's to give.
        [{name: getattr(e, name) for name in _COLUMNS if name != "id"} for e in entries],
    )
