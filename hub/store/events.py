"""Events as received, their snapshots, the dead letters, and what InfluxDB still lacks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from hub import tables
from hub.errors import StoreError
from hub.store.db import Database, JsonText, chunks, stored
from hub.store.ingest_writer import IngestWriter
from hub.store.rows import Rejection, Snapshot
from riverguard.wire.models import Event, EventKind


class Events:
    def __init__(self, database: Database, writer: IngestWriter) -> None:
        self._database = database
        self._writer = writer

    async def existing_ids(self, ids: Sequence[str]) -> set[str]:
        async with self._database.read() as conn:
            return await conn.run_sync(self._writer.existing_event_ids, ids)

    async def of_alarm(self, alarm_id: str) -> list[tuple[Event, datetime]]:
        """An alarm's events with their receipt times, oldest first."""
        e = tables.events
        async with self._database.read() as conn:
            result = await conn.execute(
                select(e.c.payload, e.c.received_at)
                .where(e.c.alarm_id == alarm_id)
                .order_by(e.c.received_at, e.c.ts)
            )
            return [(stored(Event, row[0]), row[1]) for row in result]

    async def kinds_of_alarms(self, alarm_ids: Sequence[str]) -> dict[str, tuple[EventKind, ...]]:
        """What triggered each of ``alarm_ids``: its events' kinds, each once, in the
        order first received; one read for a pass of the outbox, and no event's
        payload parsed for it."""
        e = tables.events
        first_seen = func.min(e.c.received_at)
        kinds: dict[str, list[EventKind]] = {}
        async with self._database.read() as conn:
            for chunk in chunks(list(dict.fromkeys(alarm_ids))):
                result = await conn.execute(
                    select(e.c.alarm_id, e.c.kind)
                    .where(e.c.alarm_id.in_(chunk))
                    .group_by(e.c.alarm_id, e.c.kind)
                    .order_by(e.c.alarm_id, first_seen, func.min(e.c.ts))
                )
                for alarm_id, kind in result:
                    kinds.setdefault(alarm_id, []).append(kind)
        return {alarm_id: tuple(found) for alarm_id, found in kinds.items()}

    async def snapshot(self, event_id: str) -> bytes | None:
        async with self._database.read() as conn:
            result = await conn.execute(
                select(tables.snapshots.c.jpeg).where(tables.snapshots.c.event_id == event_id)
            )
            value = result.scalar_one_or_none()
        return bytes(value) if value is not None else None

    async def with_snapshot(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events have a stored snapshot (also one that came after its event)."""
        found: set[str] = set()
        async with self._database.read() as conn:
            for chunk in chunks(list(dict.fromkeys(event_ids))):
                result = await conn.execute(
                    select(tables.snapshots.c.event_id).where(
                        tables.snapshots.c.event_id.in_(chunk)
                    )
                )
                found.update(row[0] for row in result)
        return found

    async def influx_pending(self, limit: int) -> list[Event]:
        async with self._database.read() as conn:
            result = await conn.execute(
                select(tables.events.c.payload)
                .where(tables.events.c.influx_written.is_(False))
                .limit(limit)
            )
            return [stored(Event, row[0]) for row in result]

    async def mark_influx_written(self, ids: Sequence[str]) -> None:
        try:
            await self._writer.run(_mark_influx_written, ids)
        except SQLAlchemyError as exc:
            raise StoreError(f"state store write failed: {exc}") from exc

    async def count_influx_pending(self) -> int:
        async with self._database.read() as conn:
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
        async with self._database.read() as conn:
            return int((await conn.execute(query)).scalar_one())


def event_row(
    ev: Event, received_at: datetime, alarm_id: str | None, text: str | None = None
) -> dict[str, Any]:
    """``ev`` as an events row; ``text``: its JSON, when already serialised."""
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


def insert_snapshots(conn: Connection, snaps: Sequence[Snapshot]) -> None:
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


def insert_rejections(conn: Connection, rejections: Sequence[Rejection]) -> None:
    if not rejections:
        return
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
            for r in rejections
        ],
    )


def _mark_influx_written(conn: Connection, ids: Sequence[str]) -> None:
    for chunk in chunks(ids):
        conn.execute(
            update(tables.events).where(tables.events.c.id.in_(chunk)).values(influx_written=True)
        )
