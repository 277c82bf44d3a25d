"""Alarms: the whole alarm object as JSON, with the columns queries need beside it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from hub import tables
from hub.errors import StoreError
from hub.store.audit import insert_audit
from hub.store.db import Database, JsonText, chunks, stored, upsert_many
from hub.store.dispatches import insert_called, stand_down_from
from hub.store.notifications import (
    WITHDRAWN,
    carried_calls,
    insert_queued,
    record_stand_down,
    withdraw_queued,
)
from hub.store.rows import AuditEntry, PlannedCall, StandDown, StoodDown
from riverguard.wire.models import Alarm


class Alarms:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def active(self) -> list[Alarm]:
        async with self._database.read() as conn:
            result = await conn.execute(
                select(tables.alarms.c.data)
                .where(tables.alarms.c.state.in_(("open", "acknowledged")))
                .order_by(tables.alarms.c.opened_at)
            )
            return [stored(Alarm, row[0]) for row in result]

    async def get(self, alarm_id: str) -> Alarm | None:
        async with self._database.read() as conn:
            result = await conn.execute(
                select(tables.alarms.c.data).where(tables.alarms.c.id == alarm_id)
            )
            data = result.scalar_one_or_none()
        return stored(Alarm, data) if data is not None else None

    async def get_many(self, alarm_ids: Sequence[str]) -> dict[str, Alarm]:
        """The stored alarms of ``alarm_ids``, by id (an unknown id is left out): one
        read for a pass of the outbox instead of one per message."""
        found: dict[str, Alarm] = {}
        async with self._database.read() as conn:
            for chunk in chunks(list(dict.fromkeys(alarm_ids))):
                result = await conn.execute(
                    select(tables.alarms.c.id, tables.alarms.c.data).where(
                        tables.alarms.c.id.in_(chunk)
                    )
                )
                found.update((alarm_id, stored(Alarm, data)) for alarm_id, data in result)
        return found

    async def save(
        self,
        alarm: Alarm,
        audit: Sequence[AuditEntry] = (),
        calls: Sequence[PlannedCall] = (),
    ) -> None:
        """Save ``alarm``; its audit records go first, and the notifications it makes
        (``calls``: an escalation's) are queued and their responders' dispatches
        made, all in the same transaction."""
        try:
            async with self._database.write() as conn:
                await conn.run_sync(insert_audit, audit)
                await conn.run_sync(upsert_many, tables.alarms, [alarm_row(alarm)])
                await conn.run_sync(insert_queued, calls, alarm.updated_at)
                await conn.run_sync(insert_called, calls, alarm.updated_at)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot save alarm {alarm.id}: {exc}") from exc

    async def resolve(
        self,
        alarm: Alarm,
        audit: Sequence[AuditEntry] = (),
        stand_down: StandDown | None = None,
    ) -> StoodDown:
        """Save ``alarm``, just resolved, with its audit records, in one transaction
        with what it ends: its calls still queued are withdrawn (none is sent after
        the resolve) and ``stand_down`` is given its open dispatches and its calls
        sent or under way, to end the dispatches and queue stand-down messages."""

        def write(conn: Connection) -> StoodDown:
            insert_audit(conn, audit)
            upsert_many(conn, tables.alarms, [alarm_row(alarm)])
            withdraw_queued(conn, alarm.id, alarm.updated_at, WITHDRAWN)
            if stand_down is None:
                return StoodDown()
            ended = stand_down(stand_down_from(conn, alarm.id), carried_calls(conn, alarm.id))
            return record_stand_down(conn, ended, alarm.updated_at)

        try:
            async with self._database.write() as conn:
                return await conn.run_sync(write)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot resolve alarm {alarm.id}: {exc}") from exc

    async def save_all(
        self,
        alarms: Sequence[Alarm],
        audit: Sequence[AuditEntry] = (),
        calls: Sequence[PlannedCall] = (),
        at: datetime | None = None,
    ) -> None:
        """Save ``alarms`` as ``save`` does one, all in one transaction (the alarm
        timer's pass: one commit, not one per alarm); ``calls`` queued at ``at``."""
        if not alarms:
            return
        queued_at = at or max(alarm.updated_at for alarm in alarms)

        def write(conn: Connection) -> None:
            insert_audit(conn, audit)
            upsert_many(conn, tables.alarms, [alarm_row(alarm) for alarm in alarms])
            insert_queued(conn, calls, queued_at)
            insert_called(conn, calls, queued_at)

        try:
            async with self._database.write() as conn:
                await conn.run_sync(write)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot save {len(alarms)} alarms: {exc}") from exc

    async def find(
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
        async with self._database.read() as conn:
            return [stored(Alarm, row[0]) for row in await conn.execute(query)]

    async def count_by_state(self) -> dict[str, int]:
        async with self._database.read() as conn:
            result = await conn.execute(
                select(tables.alarms.c.state, func.count()).group_by(tables.alarms.c.state)
            )
            return {row[0]: int(row[1]) for row in result}


def alarm_row(alarm: Alarm, text: str | None = None) -> dict[str, Any]:
    """``alarm`` as an alarms row; ``text``: its JSON, when already serialised."""
    return {
        "id": alarm.id,
        "site": alarm.site,
        "zone": alarm.zone,
        "state": alarm.state,
        "data": JsonText(text if text is not None else alarm.model_dump_json()),
        "opened_at": alarm.opened_at,
        "updated_at": alarm.updated_at,
    }
