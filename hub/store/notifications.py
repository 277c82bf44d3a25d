"""The notification outbox: messages to responders, queued with the escalation that
makes them and taken by the sender (``hub.notify.outbox``).

A row is ``queued`` until due, ``sending`` while an attempt is under way, then
``sent``, ``failed`` (refused for good) or ``given_up`` (retries exhausted), or
``queued`` again for a retry. A call still ``queued`` when its alarm is resolved
(or its responder called off by an officer) is ``withdrawn`` and never sent: in
that transaction, or, for one queued again by an attempt that was under way at
the resolve, when the outbox comes to claim it. A row's ``purpose`` is
``call``, or ``stand_down``: queued by the resolve or the call-off for a
responder it called off, and sent as a call is. Attempts are claimed
(``sending``, one more attempt) in a transaction before anything is sent, and
settled in another after (a pass's claims in one, the settlements that end
together in one): a hub that stops between the two leaves the row
``sending``, and the next start queues it again (``requeue_interrupted``). So a
message recorded as sent is never sent again, and one whose send was cut short
is sent once more (a webhook receiver drops the copy by its delivery id).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import SQLAlchemyError

from hub import tables
from hub.dispatch import Dispatch
from hub.errors import StoreError
from hub.store.audit import insert_audit
from hub.store.db import Database, chunks
from hub.store.dispatches import insert_called, update_dispatches
from hub.store.ingest_writer import IngestWriter
from hub.store.rows import AuditEntry, NotificationRow, PlannedCall, StandDown, StoodDown

n = tables.notifications

WITHDRAWN = "the alarm was resolved before this was sent"
CALLED_OFF = "the responder was called off before this was sent"
# A call in these states reached its responder, or may yet.
CARRIED = ("sent", "sending")


def queued_rows(calls: Sequence[PlannedCall], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": f"n-{secrets.token_urlsafe(15)}",
            "key": call.key,
            "alarm_id": call.alarm_id,
            "level": call.level,
            "responder_id": call.responder_id,
            "channel_index": call.channel_index,
            "channel_label": call.channel_label,
            "channel_key": call.channel_key,
            "channel_limit": call.channel_limit,
            "purpose": call.purpose,
            "state": "queued",
            "attempts": 0,
            "due_at": now,
            "reason": "",
            "created_at": now,
            "updated_at": now,
        }
        for call in calls
    ]


def insert_queued(conn: Connection, calls: Sequence[PlannedCall], now: datetime) -> None:
    """Queue ``calls`` in ``conn``'s transaction; a call already queued (same key) is
    left as it is."""
    if not calls:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(n).on_conflict_do_nothing(index_elements=["key"])
    conn.execute(statement, queued_rows(calls, now))


def withdraw_queued(
    conn: Connection, alarm_id: str, at: datetime, why: str, responder_id: str | None = None
) -> None:
    """Withdraw ``alarm_id``'s calls still queued (only ``responder_id``'s, when given:
    an officer called them off), in ``conn``'s transaction, ``why`` their reason. One
    under way (``sending``) ends as its attempt does."""
    mine = [n.c.responder_id == responder_id] if responder_id is not None else []
    conn.execute(
        update(n)
        .where(n.c.alarm_id == alarm_id, n.c.purpose == "call", n.c.state == "queued", *mine)
        .values(state="withdrawn", reason=why, updated_at=at)
    )


def carried_calls(conn: Connection, alarm_id: str) -> list[NotificationRow]:
    """``alarm_id``'s calls sent, or under way (they may arrive), in ``conn``'s
    transaction: the channels a stand-down goes on."""
    query = (
        select(n)
        .where(n.c.alarm_id == alarm_id, n.c.purpose == "call", n.c.state.in_(CARRIED))
        .order_by(n.c.created_at, n.c.key)
    )
    return [_row(r) for r in conn.execute(query)]


def record_stand_down(conn: Connection, ended: StoodDown, at: datetime) -> StoodDown:
    """Save what calling dispatches off ended, in ``conn``'s transaction: the
    dispatches, their audit entries, and the stand-downs queued."""
    update_dispatches(conn, ended.cancelled)
    insert_audit(conn, ended.audit)
    insert_queued(conn, ended.messages, at)
    return ended


@dataclass(frozen=True, slots=True)
class Settlement:
    """How an attempt ended: the row's new state, why, and its next due time when
    queued again."""

    id: str
    state: str
    at: datetime
    reason: str = ""
    due_at: datetime | None = None


_SETTLE = (
    update(n)
    .where(n.c.id == bindparam("k_id"))
    .values(
        state=bindparam("v_state"),
        reason=bindparam("v_reason"),
        updated_at=bindparam("v_at"),
        due_at=func.coalesce(bindparam("v_due_at", type_=n.c.due_at.type), n.c.due_at),
    )
)


def _settled(settlement: Settlement) -> dict[str, Any]:
    return {
        "k_id": settlement.id,
        "v_state": settlement.state,
        "v_reason": settlement.reason[:2000],
        "v_at": settlement.at,
        "v_due_at": settlement.due_at,
    }


def _settle(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(_SETTLE, rows)


# A call nobody should get any more: its alarm is resolved, or its responder was
# called off. The resolve and the call-off withdraw the calls queued then; one queued
# again since, by an attempt that was under way (a retry, a restart), is withdrawn
# when it comes to be claimed.
_RESOLVED = exists().where(tables.alarms.c.id == n.c.alarm_id, tables.alarms.c.state == "resolved")
_CALLED_OFF = exists().where(
    tables.dispatches.c.alarm_id == n.c.alarm_id,
    tables.dispatches.c.responder_id == n.c.responder_id,
    tables.dispatches.c.state == "cancelled",
)


def _take(
    conn: Connection, claims: list[str], deferrals: list[tuple[str, datetime]], now: datetime
) -> set[str]:
    for chunk in chunks(claims):
        conn.execute(
            update(n)
            .where(
                n.c.id.in_(chunk),
                n.c.state == "queued",
                n.c.purpose == "call",
                or_(_RESOLVED, _CALLED_OFF),
            )
            .values(
                state="withdrawn",
                reason=case((_RESOLVED, WITHDRAWN), else_=CALLED_OFF),
                updated_at=now,
            )
        )
    # One statement per chunk of ids, not a look-up and then an UPDATE per row.
    queued: set[str] = set()
    for chunk in chunks(claims):
        claimed = conn.execute(
            update(n)
            .where(n.c.id.in_(chunk), n.c.state == "queued")
            .values(state="sending", attempts=n.c.attempts + 1, updated_at=now)
            .returning(n.c.id)
        )
        queued.update(row[0] for row in claimed)
    # A rate limit frees many rows at the same moment: one UPDATE per moment.
    by_due: dict[datetime, list[str]] = {}
    for key, due_at in deferrals:
        by_due.setdefault(due_at, []).append(key)
    for due_at, keys in by_due.items():
        for chunk in chunks(keys):
            conn.execute(
                update(n)
                .where(n.c.id.in_(chunk), n.c.state == "queued")
                .values(due_at=due_at, updated_at=now)
            )
    return queued


def _row(r: Row[Any]) -> NotificationRow:
    return NotificationRow(
        id=r.id,
        call=PlannedCall(
            alarm_id=r.alarm_id,
            level=r.level,
            responder_id=r.responder_id,
            channel_index=r.channel_index,
            channel_label=r.channel_label,
            channel_key=r.channel_key,
            channel_limit=r.channel_limit,
            purpose=r.purpose,
        ),
        state=r.state,
        attempts=r.attempts,
        due_at=r.due_at,
        reason=r.reason,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


class Notifications:
    def __init__(self, database: Database, writer: IngestWriter) -> None:
        self._database = database
        # The outbox's claims and settlements go whole to the writer's thread, as
        # ingest batches do: over the async engine each statement was a hop to the
        # event loop and back with the write lock held. A pass's claims held it 3.5
        # to 7.5 ms that way, and 2.1 to 3.3 ms now (docs/performance.md).
        self._writer = writer

    async def queue(
        self, calls: Sequence[PlannedCall], now: datetime, audit: Sequence[AuditEntry] = ()
    ) -> None:
        """Queue ``calls`` and make their responders' dispatches, with ``audit`` (an
        officer's dispatch), in one transaction."""
        try:
            async with self._database.write() as conn:
                await conn.run_sync(insert_audit, audit)
                await conn.run_sync(insert_queued, calls, now)
                await conn.run_sync(insert_called, calls, now)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot queue notifications: {exc}") from exc

    async def call_off(self, dispatch: Dispatch, stand_down: StandDown, at: datetime) -> StoodDown:
        """An officer calls ``dispatch``'s responder off, in one transaction: their calls
        for its alarm still queued are withdrawn, and ``stand_down`` is given the
        dispatch and their calls sent or under way, to end it and queue stand-downs."""

        def write(conn: Connection) -> StoodDown:
            withdraw_queued(conn, dispatch.alarm_id, at, CALLED_OFF, dispatch.responder_id)
            carried = [
                row
                for row in carried_calls(conn, dispatch.alarm_id)
                if row.call.responder_id == dispatch.responder_id
            ]
            return record_stand_down(conn, stand_down([dispatch], carried), at)

        try:
            async with self._database.write() as conn:
                return await conn.run_sync(write)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot call off dispatch {dispatch.id}: {exc}") from exc

    async def due(self, now: datetime, limit: int = 100) -> list[NotificationRow]:
        query = (
            select(n)
            .where(n.c.state == "queued", n.c.due_at <= now)
            .order_by(n.c.due_at)
            .limit(limit)
        )
        async with self._database.read() as conn:
            return [_row(r) for r in await conn.execute(query)]

    async def next_due(self) -> datetime | None:
        async with self._database.read() as conn:
            result = await conn.execute(select(func.min(n.c.due_at)).where(n.c.state == "queued"))
            value = result.scalar_one_or_none()
        return tables.as_utc(value) if value is not None else None

    async def take(
        self,
        claims: Sequence[str],
        deferrals: Sequence[tuple[str, datetime]],
        now: datetime,
    ) -> set[str]:
        """In one transaction: take the ``claims`` still queued for an attempt
        (``sending``, one more attempt) but withdraw those whose alarm was resolved or
        whose responder was called off since they were queued, and move the
        ``deferrals`` still queued to their due time (a rate limit: no attempt
        spent). The ids claimed (the others withdrawn, or taken by another sender)."""
        try:
            return await self._writer.run(_take, list(claims), list(deferrals), now)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot claim notifications: {exc}") from exc

    async def settle_all(self, settlements: Sequence[Settlement]) -> None:
        """Record attempts' ends in one transaction: ``sent``, ``failed``,
        ``given_up``, or ``queued`` again until their ``due_at``."""
        if not settlements:
            return
        try:
            await self._writer.run(_settle, [_settled(s) for s in settlements])
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot settle notifications: {exc}") from exc

    async def requeue_interrupted(self, now: datetime) -> int:
        """Queue again, due now, every notification left ``sending`` by a hub that
        stopped mid-attempt; how many."""
        statement = (
            update(n)
            .where(n.c.state == "sending")
            .values(state="queued", due_at=now, updated_at=now)
        )
        async with self._database.write() as conn:
            result = await conn.execute(statement)
        return int(result.rowcount)

    async def sent_since(self, since: datetime) -> list[NotificationRow]:
        """The notifications recorded as sent at ``since`` or later, oldest first (the
        rate limits' counts when the sender starts)."""
        query = (
            select(n)
            .where(n.c.state == "sent", n.c.updated_at >= since)
            .order_by(n.c.updated_at, n.c.id)
        )
        async with self._database.read() as conn:
            return [_row(r) for r in await conn.execute(query)]

    async def for_alarm(self, alarm_id: str) -> list[NotificationRow]:
        query = select(n).where(n.c.alarm_id == alarm_id).order_by(n.c.created_at, n.c.key)
        async with self._database.read() as conn:
            return [_row(r) for r in await conn.execute(query)]
