"""Dispatches: responders sent to alarms (``hub.dispatch``), one row per alarm and
responder, made in the transaction of the escalation that called them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import SQLAlchemyError

from hub import tables
from hub.dispatch import ENDED, Dispatch, dispatch_id
from hub.errors import StoreError
from hub.store.audit import insert_audit
from hub.store.db import Database
from hub.store.rows import AuditEntry, PlannedCall

d = tables.dispatches


def insert_called(conn: Connection, calls: Sequence[PlannedCall], now: datetime) -> None:
    """A dispatch for each responder ``calls`` name, in ``conn``'s transaction; one
    already made for that alarm and responder (an earlier level) is kept."""
    called = {(call.alarm_id, call.responder_id): call.level for call in calls}
    if not called:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(d).on_conflict_do_nothing(index_elements=["id"]),
        [
            {
                "id": dispatch_id(alarm_id, responder_id),
                "alarm_id": alarm_id,
                "responder_id": responder_id,
                "level": level,
                "state": "notified",
                "notified_at": now,
            }
            for (alarm_id, responder_id), level in called.items()
        ],
    )


# What a resolve ends: a dispatch on scene is left for its responder to finish.
STOOD_DOWN_FROM = ("notified", "accepted", "on_the_way")


def stand_down_from(conn: Connection, alarm_id: str) -> list[Dispatch]:
    """``alarm_id``'s dispatches a resolve cancels, read in ``conn``'s transaction."""
    query = (
        select(d)
        .where(d.c.alarm_id == alarm_id, d.c.state.in_(STOOD_DOWN_FROM))
        .order_by(d.c.notified_at, d.c.id)
    )
    return [_dispatch(r) for r in conn.execute(query)]


def _values(dispatch: Dispatch) -> dict[str, Any]:
    return {
        "state": dispatch.state,
        "accepted_at": dispatch.accepted_at,
        "departed_at": dispatch.departed_at,
        "arrived_at": dispatch.arrived_at,
        "ended_at": dispatch.ended_at,
        "overdue_at": dispatch.overdue_at,
        "note": dispatch.note,
    }


def update_dispatches(conn: Connection, dispatches: Sequence[Dispatch]) -> None:
    for dispatch in dispatches:
        conn.execute(update(d).where(d.c.id == dispatch.id).values(_values(dispatch)))


def _dispatch(r: Row[Any]) -> Dispatch:
    return Dispatch(
        id=r.id,
        alarm_id=r.alarm_id,
        responder_id=r.responder_id,
        level=r.level,
        state=r.state,
        notified_at=r.notified_at,
        accepted_at=r.accepted_at,
        departed_at=r.departed_at,
        arrived_at=r.arrived_at,
        ended_at=r.ended_at,
        overdue_at=r.overdue_at,
        note=r.note,
    )


class Dispatches:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, dispatch_id_: str) -> Dispatch | None:
        async with self._database.read() as conn:
            row = (await conn.execute(select(d).where(d.c.id == dispatch_id_))).first()
        return _dispatch(row) if row is not None else None

    async def of_alarm(self, alarm_id: str) -> list[Dispatch]:
        query = select(d).where(d.c.alarm_id == alarm_id).order_by(d.c.notified_at, d.c.id)
        async with self._database.read() as conn:
            return [_dispatch(r) for r in await conn.execute(query)]

    async def active(self) -> list[Dispatch]:
        query = select(d).where(d.c.state.not_in(sorted(ENDED))).order_by(d.c.notified_at)
        async with self._database.read() as conn:
            return [_dispatch(r) for r in await conn.execute(query)]

    async def create(self, calls: Sequence[PlannedCall], now: datetime) -> None:
        try:
            async with self._database.write() as conn:
                await conn.run_sync(insert_called, calls, now)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record dispatches: {exc}") from exc

    async def save(self, dispatch: Dispatch, audit: AuditEntry | None = None) -> None:
        """Save ``dispatch``'s state and times; its audit record in the same transaction."""
        try:
            async with self._database.write() as conn:
                if audit is not None:
                    await conn.run_sync(insert_audit, [audit])
                await conn.run_sync(update_dispatches, [dispatch])
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot save dispatch {dispatch.id}: {exc}") from exc
