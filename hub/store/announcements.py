"""Announcements, each speaker's state in them, and the routine limit per site."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import tables
from hub.errors import RoutineLimitReached, StoreError
from hub.store.audit import insert_audit
from hub.store.db import Database, chunks
from hub.store.rows import AnnouncementRow, AuditEntry, RoutineLimit

# AnnouncementRow's fields are the announcements table's columns by the same names,
# but for ``speakers`` (a table of its own); ``routine`` is the store's alone.
_COLUMNS = tuple(field.name for field in fields(AnnouncementRow) if field.name != "speakers")


def _columns(row: Any) -> dict[str, Any]:
    """Those fields of an AnnouncementRow or of a row of the table."""
    return {name: getattr(row, name) for name in _COLUMNS}


class Announcements:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(
        self,
        row: AnnouncementRow,
        audit: AuditEntry | None = None,
        *,
        routine_limit: RoutineLimit | None = None,
    ) -> None:
        """Record ``row``, its speakers in their first states.

        With ``routine_limit`` the announcement is routine: it is recorded only if
        its site is under the limit, checked in this transaction, else
        ``RoutineLimitReached``. The check and the insert are one step: SQLite has
        one writer at a time, and on PostgreSQL a per-site advisory lock keeps two
        replicas from both taking the last place.
        """
        try:
            async with self._database.write() as conn:
                if routine_limit is not None:
                    await self._database.exclusive(conn, f"riverguard.routine:{row.site}")
                    count = await _count_routine(conn, row.site, routine_limit.since)
                    if count >= routine_limit.limit:
                        raise RoutineLimitReached(row.site, count)
                if audit is not None:
                    await conn.run_sync(insert_audit, [audit])
                await conn.execute(
                    insert(tables.announcements).values(
                        **_columns(row), routine=routine_limit is not None
                    )
                )
                await conn.execute(
                    insert(tables.announcement_speakers),
                    [
                        {
                            "announcement_id": row.id,
                            "speaker": speaker,
                            "state": state,
                            "detail": "",
                            "updated_at": row.created_at,
                        }
                        for speaker, state in row.speakers.items()
                    ],
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record announcement {row.id}: {exc}") from exc

    async def add_speaker(self, ann_id: str, speaker: str, now: datetime) -> None:
        """Another speaker of an announcement the hub learns of from acks (the edge's own)."""
        async with self._database.write() as conn:
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
        async with self._database.read() as conn:
            return await _count_routine(conn, site, since)

    async def get(self, ann_id: str) -> AnnouncementRow | None:
        async with self._database.read() as conn:
            found = await _announcements(conn, tables.announcements.c.id == ann_id)
        return found[0] if found else None

    async def since(self, since: datetime) -> list[AnnouncementRow]:
        """Announcements made at or after ``since``, oldest first."""
        async with self._database.read() as conn:
            return await _announcements(conn, tables.announcements.c.created_at >= since)

    async def of_alarm(self, alarm_id: str) -> list[AnnouncementRow]:
        async with self._database.read() as conn:
            return await _announcements(conn, tables.announcements.c.alarm_id == alarm_id)

    async def set_speaker_states(
        self,
        ann_id: str,
        states: Mapping[str, tuple[str, str]],
        history: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        """Set speakers' (state, detail) and replace the announcement's history."""
        s = tables.announcement_speakers
        async with self._database.write() as conn:
            for speaker, (state, detail) in states.items():
                await conn.execute(
                    update(s)
                    .where(s.c.announcement_id == ann_id, s.c.speaker == speaker)
                    .values(state=state, detail=detail, updated_at=now)
                )
            await conn.execute(
                update(tables.announcements)
                .where(tables.announcements.c.id == ann_id)
                .values(history=history)
            )


async def _count_routine(conn: AsyncConnection, site: str, since: datetime) -> int:
    a = tables.announcements
    result = await conn.execute(
        select(func.count()).where(a.c.site == site, a.c.routine, a.c.created_at > since)
    )
    return int(result.scalar_one())


async def _announcements(conn: AsyncConnection, where: Any) -> list[AnnouncementRow]:
    a = tables.announcements
    s = tables.announcement_speakers
    rows = (await conn.execute(select(a).where(where).order_by(a.c.created_at))).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    speakers: dict[str, dict[str, str]] = {ann_id: {} for ann_id in ids}
    for chunk in chunks(ids):
        result = await conn.execute(
            select(s.c.announcement_id, s.c.speaker, s.c.state)
            .where(s.c.announcement_id.in_(chunk))
            .order_by(s.c.speaker)
        )
        for ann_id, speaker, state in result:
            speakers[ann_id][speaker] = state
    return [AnnouncementRow(**_columns(row), speakers=speakers[row.id]) for row in rows]
