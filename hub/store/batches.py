"""An ingest batch in one transaction: its events, their alarms, the notifications
their escalations make, snapshots, dead letters and devices, through the ingest
writer the store opened with."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from hub import tables
from hub.errors import StoreError
from hub.store.alarms import alarm_row
from hub.store.audit import insert_audit
from hub.store.db import upsert_many
from hub.store.devices import touch_devices, upsert_devices
from hub.store.dispatches import insert_called
from hub.store.events import event_row, insert_rejections, insert_snapshots
from hub.store.ingest_writer import IngestWriter
from hub.store.notifications import insert_queued
from hub.store.rows import (
    AlarmChanges,
    AuditEntry,
    Batch,
    CommittedBatch,
    NoAlarmChanges,
    PlannedCall,
)
from riverguard.wire.models import Event

log = structlog.get_logger()

# Alarm and device keys remembered as stored, at most (see Batches._stored).
_STORED_KEYS_MAX = 100_000
# Devices' last-heard times are written at most this often (see Batches.commit).
LAST_SEEN_WRITE_S = 5.0

Decide = Callable[[list[Event]], AlarmChanges]
# The notifications an outcome's escalations make, their audit, and when they are queued.
Plan = Callable[[AlarmChanges], tuple[Sequence[PlannedCall], Sequence[AuditEntry], datetime]]


class Batches:
    def __init__(self, writer: IngestWriter) -> None:
        self._writer = writer
        # Keys of alarm and device rows known to exist (rows of these tables are never
        # deleted): an upsert of one of them needs no look-up first. Learnt only from
        # committed transactions.
        self._stored: dict[str, set[Any]] = {"alarms": set(), "devices": set()}
        # Devices' last-heard times not yet written, and when they last were.
        self._last_seen: dict[str, tuple[str, datetime]] = {}
        self._last_seen_written = -math.inf
        self.last_seen_write_s = LAST_SEEN_WRITE_S

    async def commit(
        self, batch: Batch, decide: Decide | None = None, plan: Plan | None = None
    ) -> CommittedBatch:
        """Commit new events, their alarms, snapshots and dead letters in one transaction.

        Events whose id is already stored (or repeated within the batch) are
        duplicates: not stored again and not given to ``decide``, which maps the
        new events to their alarms and audit records (``hub.alarms.apply_events``;
        pure, so it may run on the writer's thread). ``plan`` names the
        notifications the changed alarms' escalations make: they are queued, their
        responders' dispatches made and audited, in the same transaction (asked only
        when an alarm changed; a batch that escalates nothing writes nothing more).

        Devices' last-heard times (``batch.last_seen``) are kept and written with a
        batch at most every ``last_seen_write_s`` and at ``close``: an UPDATE per
        device per batch cost more than the events' own INSERT. A crash loses a
        few seconds of them, never an event; the picture has them live.
        """
        touch = self._take_last_seen(batch)
        try:
            committed, alarms, devices = await self._writer.run(
                self._commit, batch, touch, decide, plan
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

    async def close(self) -> None:
        """Write the last-heard times still waiting."""
        if not self._last_seen:
            return
        try:
            await self._writer.run(touch_devices, dict(self._last_seen), set())
        except (SQLAlchemyError, StoreError) as exc:
            log.warning("devices' last-heard times not written", error=str(exc))

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

    def _commit(
        self,
        conn: Connection,
        batch: Batch,
        touch: Mapping[str, tuple[str, datetime]],
        decide: Decide | None,
        plan: Plan | None,
    ) -> tuple[CommittedBatch, set[Any], set[Any]]:
        """The batch's transaction: what it committed, and the alarm and device keys
        stored once it commits."""
        stored: Mapping[str, AbstractSet[Any]] = self._stored
        existing = self._writer.existing_event_ids(conn, [e.id for e in batch.events])
        new: list[Event] = []
        duplicates: list[str] = []
        for ev in batch.events:
            if ev.id in existing:
                duplicates.append(ev.id)
            else:
                existing.add(ev.id)
                new.append(ev)
        outcome = decide(new) if decide is not None and new else NoAlarmChanges()
        if new:
            received_at, text = batch.received_at, batch.event_json
            self._writer.insert_events(
                conn,
                [
                    event_row(ev, received_at[ev.id], outcome.alarm_of.get(ev.id), text.get(ev.id))
                    for ev in new
                ],
            )
        # Audited in the same transaction, ahead of the alarm change itself.
        insert_audit(conn, outcome.audit)
        alarm_json = {a.id: a.model_dump_json() for a in outcome.changed.values()}
        alarms = upsert_many(
            conn,
            tables.alarms,
            [alarm_row(a, alarm_json[a.id]) for a in outcome.changed.values()],
            stored=stored["alarms"],
        )
        if plan is not None and outcome.changed:
            calls, called_audit, queued_at = plan(outcome)
            if calls:
                insert_audit(conn, called_audit)
                insert_queued(conn, calls, queued_at)
                insert_called(conn, calls, queued_at)
        insert_snapshots(conn, batch.snapshots)
        devices = touch_devices(conn, touch, stored["devices"])
        devices |= upsert_devices(conn, batch.devices, stored["devices"])
        insert_rejections(conn, batch.rejections)
        return CommittedBatch(new, duplicates, outcome, alarm_json), alarms, devices
