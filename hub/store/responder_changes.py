"""Responders, rotas and call lists replaced through the admin API, each change saved with
its audit entry in one transaction (hub/responder_layer.py lays them over the file)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from hub import tables
from hub.store.audit import insert_audit
from hub.store.db import Database, upsert_many
from hub.store.rows import AuditEntry


class ResponderChanges:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def load(self) -> dict[str, Any]:
        """Every stored change, by key, oldest first."""
        t = tables.responder_changes
        async with self._database.read() as conn:
            result = await conn.execute(select(t.c.key, t.c.value).order_by(t.c.updated_at))
            return {r.key: r.value for r in result}

    async def save(
        self, key: str, value: Any, username: str, at: datetime, audit: AuditEntry
    ) -> None:
        async with self._database.write() as conn:
            await conn.run_sync(_save, key, value, username, at, audit=audit)


def _save(
    conn: Connection, key: str, value: Any, username: str, at: datetime, *, audit: AuditEntry
) -> None:
    row = {"key": key, "value": value, "username": username, "updated_at": at}
    upsert_many(conn, tables.responder_changes, [row])
    insert_audit(conn, [audit])
