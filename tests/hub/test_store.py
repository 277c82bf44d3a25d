"""The state store on SQLite and PostgreSQL: audit records go with their change or not at all;
the routine announcement limit is checked and taken in one step."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import column, event, insert, table
from sqlalchemy.ext.asyncio import create_async_engine

from hub import alarms as rules
from hub import dispatch as dispatch_rules
from hub import migrate, tables
from hub.alarms import alarm_audit
from hub.dispatch import Dispatch, DispatchState
from hub.errors import RoutineLimitReached, StoreError
from hub.store import (
    AlarmChanges,
    AnnouncementRow,
    AuditEntry,
    Batch,
    NotificationRow,
    PlannedCall,
    Rejection,
    RoutineLimit,
    Store,
)
from hub.store.events import event_row
from hub.store.notifications import Settlement
from hub.store.rows import StoodDown
from riverguard.testing import wait_for
from riverguard.wire.models import Event

pytestmark = pytest.mark.integration

T0 = datetime(2026, 7, 27, 21, 21, 5, tzinfo=UTC)
SITE = "danshui-bridge"


@pytest.fixture
def store_at(both_stores: str | None, tmp_path: Path) -> str:
    """The URL of a fresh state store of each kind."""
    return both_stores or f"sqlite+aiosqlite:///{tmp_path}/hub.db"


@pytest.fixture
async def store(store_at: str) -> AsyncIterator[Store]:
    opened = await Store.open(store_at)
    try:
        yield opened
    finally:
        await opened.close()


def _event() -> Event:
    return Event.model_validate(
        {
            "id": "db-fence-01:1",
            "site": "danshui-bridge",
            "device": "db-fence-01",
            "kind": "fence.breach",
            "zone": "z1",
            "ts": T0,
            "edge_ts": T0,
            "severity": "warning",
        }
    )


async def test_a_change_whose_audit_record_cannot_be_written_does_not_happen(store: Store) -> None:
    alarm = rules.open_alarm(_event(), T0, "alm-1")
    await store.alarms.save(alarm)
    acked = rules.acknowledge(alarm, "officer-li", T0)
    unwritable = AuditEntry(
        ts=T0, username="officer-li", action="ack", alarm_id="alm-1", before={"x": object()}
    )

    with pytest.raises(StoreError):
        await store.alarms.save(acked, [unwritable])
    await store.alarms.save(acked, [alarm_audit("ack", "officer-li", alarm, acked)])

    entries = await store.audit.find(alarm_id="alm-1")
    assert ["ack"] == [e.action for e in entries]
    assert ("open", "acknowledged") == (entries[0].before["state"], entries[0].after["state"])  # type: ignore[index]
    stored = await store.alarms.get("alm-1")
    assert stored is not None
    assert "acknowledged" == stored.state


async def test_audit_filters_combine_and_page_newest_first(store: Store) -> None:
    for index, (user, action) in enumerate(
        [("a", "login"), ("b", "login"), ("a", "login_failed"), ("a", "login")]
    ):
        ts = T0.replace(second=index)
        await store.audit.save([AuditEntry(ts=ts, username=user, action=action, target=user)])

    logins_of_a = await store.audit.find(username="a", action="login")
    first_page = await store.audit.find(limit=2)
    second_page = await store.audit.find(limit=2, before_id=first_page[-1].id)
    window = await store.audit.find(start=T0.replace(second=1), end=T0.replace(second=3))

    assert [3, 0] == [e.ts.second for e in logins_of_a]
    assert [3, 2, 1, 0] == [e.ts.second for e in first_page + second_page]
    assert [2, 1] == [e.ts.second for e in window]


def _announcement(ann_id: str, created_at: datetime, site: str = SITE) -> AnnouncementRow:
    return AnnouncementRow(
        id=ann_id,
        alarm_id=None,
        site=site,
        requested_by="officer-li",
        created_at=created_at,
        clip={"id": "warning-cmn", "sha256": "0" * 64, "duration_ms": 1000},
        priority=5,
        repeat=1,
        volume=90,
        expires_at=created_at + timedelta(seconds=60),
        speakers={"s": "pending"},
        history=[],
    )


async def test_routine_announcements_over_the_limit_are_refused_and_not_recorded(
    store: Store,
) -> None:
    limit = RoutineLimit(2, T0 - timedelta(seconds=600))
    await store.announcements.insert(_announcement("ann-1", T0))  # life-safety
    for ann_id in ("ann-2", "ann-3"):
        await store.announcements.insert(_announcement(ann_id, T0), routine_limit=limit)
    await store.announcements.insert(
        _announcement("ann-4", T0, site="xiyong-wharf"), routine_limit=limit
    )

    with pytest.raises(RoutineLimitReached) as refused:
        await store.announcements.insert(_announcement("ann-5", T0), routine_limit=limit)
    later = RoutineLimit(2, T0)  # the window has moved past all of them
    await store.announcements.insert(
        _announcement("ann-6", T0 + timedelta(seconds=1)), routine_limit=later
    )

    assert 2 == refused.value.count
    assert None is await store.announcements.get("ann-5")
    # ann-2, ann-3 and ann-6 in the first window; ann-6 alone in the later one.
    assert (3, 1) == (
        await store.announcements.count_routine("danshui-bridge", limit.since),
        await store.announcements.count_routine("danshui-bridge", later.since),
    )


async def test_two_replicas_cannot_both_take_the_last_routine_place(store_at: str) -> None:
    """Two stores on one database (two hub replicas) race for one place: one gets it."""
    replicas = [await Store.open(store_at) for _ in range(2)]
    limit = RoutineLimit(1, T0 - timedelta(seconds=600))
    try:
        results = await asyncio.gather(
            *(
                replica.announcements.insert(_announcement(f"ann-{index}", T0), routine_limit=limit)
                for index, replica in enumerate(replicas)
            ),
            return_exceptions=True,
        )
        count = await replicas[0].announcements.count_routine("danshui-bridge", limit.since)
    finally:
        for replica in replicas:
            await replica.close()

    assert [None] == [r for r in results if r is None]
    assert [RoutineLimitReached] == [type(r) for r in results if r is not None]
    assert 1 == count


async def test_an_announcement_id_may_be_as_long_as_the_protocol_allows(store: Store) -> None:
    """The edge's own ids are ``edge-auto-<zone>-<ms>``; a zone id may be 63 characters."""
    long_id = f"edge-auto-{'z' * 63}-1764278400000"
    await store.announcements.insert(_announcement(long_id, T0))
    await store.announcements.add_speaker(long_id, "t", T0)

    stored = await store.announcements.get(long_id)
    assert stored is not None
    assert {"s": "pending", "t": "pending"} == stored.speakers


async def test_rows_known_to_be_stored_are_updated_without_a_look_up(store: Store) -> None:
    """After one committed batch, the next one on the same alarm and device looks nothing up."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(store.ingest_writer.engine, "before_cursor_execute", record)
    active: dict[rules.ZoneKey, Any] = {}

    def decide(new: list[Event]) -> rules.Outcome:
        outcome = rules.apply_events(active, new, T0, new_id=lambda: "alm-cache")
        active.update({(a.site, a.zone): a for a in outcome.changed.values()})
        return outcome

    def batch(seq: int) -> Batch:
        ev = _event().model_copy(update={"id": f"db-fence-01:{seq}"})
        return Batch(events=[ev], received_at={ev.id: T0}, last_seen={ev.device: (ev.site, T0)})

    await store.batches.commit(batch(1), decide)
    assert any("FROM alarms WHERE" in s for s in statements)
    statements.clear()
    await store.batches.commit(batch(2), decide)
    assert not [s for s in statements if s.startswith("SELECT") and "alarms" in s]
    assert not [s for s in statements if s.startswith("SELECT") and "devices" in s]
    stored = await store.alarms.get("alm-cache")
    assert stored is not None
    assert 2 == stored.event_count


async def test_last_heard_times_are_written_at_most_every_few_seconds_and_at_close(
    store_at: str,
) -> None:
    """The first batch writes a device's last-heard time; later ones wait; close writes them."""
    store = await Store.open(store_at)
    store.batches.last_seen_write_s = 3600.0  # nothing is due again during this test

    def batch(seq: int, seen: datetime) -> Batch:
        ev = _event().model_copy(update={"id": f"db-fence-01:{seq}", "ts": seen})
        return Batch(events=[ev], received_at={ev.id: seen}, last_seen={ev.device: (ev.site, seen)})

    async def stored_last_seen(at: Store) -> datetime | None:
        return next(d.last_seen for d in await at.devices.load() if d.id == "db-fence-01")

    try:
        await store.batches.commit(batch(1, T0))
        assert T0 == await stored_last_seen(store)
        later = T0 + timedelta(seconds=7)
        await store.batches.commit(batch(2, later))
        await store.batches.commit(batch(3, T0 + timedelta(seconds=1)))  # an older one, late
        assert T0 == await stored_last_seen(store)
        assert {"db-fence-01:1", "db-fence-01:2", "db-fence-01:3"} == (
            await store.events.existing_ids([f"db-fence-01:{n}" for n in (1, 2, 3)])
        )
    finally:
        await store.close()
    reopened = await Store.open(store_at)
    try:
        assert later == await stored_last_seen(reopened)
    finally:
        await reopened.close()


async def test_events_written_for_sqlite_by_hand_are_stored_as_sqlalchemy_would(
    tmp_path: Path,
) -> None:
    """The SQLite fast path of the events INSERT binds every column as SQLAlchemy does."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    offset = timezone(timedelta(hours=8))  # a non-UTC time is converted, as by UTCDateTime
    rows = [
        event_row(
            _event().model_copy(update={"id": event_id, "attrs": {"文字": '中文 "q"'}}),
            received_at=(T0 + timedelta(microseconds=123456)).astimezone(offset),
            alarm_id=alarm_id,
        )
        for event_id, alarm_id in (("by-sqlalchemy", "alm-1"), ("by-hand", None))
    ]
    try:
        with store.ingest_writer.engine.begin() as conn:
            conn.execute(insert(tables.events), [rows[0]])
            store.ingest_writer.insert_events(conn, [rows[1]])
            result = conn.exec_driver_sql("SELECT * FROM events")
            stored = {row.id: dict(zip(result.keys(), row, strict=True)) for row in result}
    finally:
        await store.close()
    by_sqlalchemy, by_hand = stored.pop("by-sqlalchemy"), stored.pop("by-hand")
    assert {} == stored
    assert "by-sqlalchemy" == by_sqlalchemy.pop("id")
    assert "by-hand" == by_hand.pop("id")
    assert "alm-1" == by_sqlalchemy.pop("alarm_id")
    assert None is by_hand.pop("alarm_id")
    assert json.loads(by_sqlalchemy.pop("payload"))["id"] == "by-sqlalchemy"
    assert json.loads(by_hand.pop("payload"))["id"] == "by-hand"
    assert by_sqlalchemy == by_hand


async def test_sqlite_commits_leave_checkpoints_to_their_own_task(tmp_path: Path) -> None:
    """Ingest commits never copy the WAL into the database; run_checkpoints does."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/hub.db")

    def events_in_database_file() -> int:
        # A copy of the database file alone, without its WAL: what checkpoints put there.
        shutil.copyfile(tmp_path / "hub.db", tmp_path / "copy.db")
        with contextlib.closing(sqlite3.connect(tmp_path / "copy.db")) as copy:
            try:
                return int(copy.execute("SELECT count(*) FROM events").fetchone()[0])
            except sqlite3.OperationalError:  # not even the table is there yet
                return 0

    try:
        for seq in range(1, 301):
            ev = _event().model_copy(update={"id": f"db-fence-01:{seq}"})
            await store.batches.commit(Batch(events=[ev], received_at={ev.id: T0}))
        assert 0 == events_in_database_file()
        checkpoints = asyncio.create_task(store.run_checkpoints(every_s=0.05))
        try:
            await wait_for(lambda: events_in_database_file() == 300, what="a checkpoint")
        finally:
            checkpoints.cancel()
    finally:
        await store.close()


async def test_a_batch_the_store_refuses_leaves_the_next_one_unharmed(store: Store) -> None:
    """A failed ingest transaction is rolled back whole; the next batch commits as usual."""
    first = _event().model_copy(update={"id": "db-fence-01:1"})
    broken = Batch(
        events=[first],
        received_at={first.id: T0},
        # NOT NULL violated: the whole transaction fails, the event with it.
        rejections=[Rejection(None, "invalid", "", b"", T0)],  # type: ignore[arg-type]
    )
    with pytest.raises(StoreError):
        await store.batches.commit(broken)
    assert set() == await store.events.existing_ids([first.id])

    second = _event().model_copy(update={"id": "db-fence-01:2"})
    committed = await store.batches.commit(
        Batch(events=[first, second], received_at={first.id: T0, second.id: T0})
    )
    assert [first.id, second.id] == [e.id for e in committed.new]
    assert {first.id, second.id} == await store.events.existing_ids([first.id, second.id])


async def test_the_outbox_claims_only_queued_rows_and_settles_each_as_told(store: Store) -> None:
    """A claim takes the rows still queued (one attempt more each) and leaves a row
    another sender took; rate-limited rows move to their due time with no attempt
    spent; settlements record each row's own end."""

    def decide(new: list[Event]) -> rules.Outcome:
        return rules.apply_events({}, new, T0, new_id=lambda: "alm-outbox")

    def plan(_outcome: AlarmChanges) -> tuple[list[PlannedCall], list[AuditEntry], datetime]:
        calls = [
            PlannedCall("alm-outbox", 1, "officer-wang", index, "email", "email", None)
            for index in range(4)
        ]
        return calls, [], T0

    event = _event().model_copy(update={"id": "db-fence-01:outbox"})
    await store.batches.commit(Batch(events=[event], received_at={event.id: T0}), decide, plan)
    rows = sorted(
        await store.notifications.for_alarm("alm-outbox"), key=lambda r: r.call.channel_index
    )
    first, second, limited, other = (row.id for row in rows)
    notifications = store.notifications
    assert {other} == await notifications.take([other], [], T0)  # another sender's
    later = T0 + timedelta(seconds=60)
    claimed = await notifications.take([first, second, other], [(limited, later)], T0)
    assert {first, second} == claimed
    assert set() == await notifications.take([first], [(second, later)], T0)

    retry_at = T0 + timedelta(seconds=20)
    await notifications.settle_all(
        [
            Settlement(first, "sent", T0 + timedelta(seconds=1)),
            Settlement(second, "queued", T0 + timedelta(seconds=1), "HTTP 503", retry_at),
        ]
    )
    after = {row.id: row for row in await notifications.for_alarm("alm-outbox")}
    assert ("sent", 1) == (after[first].state, after[first].attempts)
    assert ("queued", 1, "HTTP 503") == (
        after[second].state,
        after[second].attempts,
        after[second].reason,
    )
    assert ("queued", 0, later) == (
        after[limited].state,
        after[limited].attempts,
        after[limited].due_at,
    )
    assert ("sending", 1) == (after[other].state, after[other].attempts)
    assert [second] == [row.id for row in await notifications.due(T0 + timedelta(seconds=30))]


async def test_an_escalations_calls_are_queued_in_its_batchs_transaction_or_not_at_all(
    store: Store,
) -> None:
    """The calls a batch's escalations make commit with the batch: a batch the store
    refuses leaves neither its alarm nor its calls; one it takes leaves both, a
    dispatch for the responder and its audit entry. A batch that changes no alarm is
    not planned at all."""
    planned: list[str] = []

    def decide(new: list[Event]) -> rules.Outcome:
        return rules.apply_events({}, new, T0, new_id=lambda: "alm-called")

    def plan(outcome: AlarmChanges) -> tuple[list[PlannedCall], list[AuditEntry], datetime]:
        planned.extend(outcome.changed)
        calls = [
            PlannedCall("alm-called", 1, "officer-wang", index, "email", "email", None)
            for index in (0, 1)
        ]
        called = AuditEntry(T0, "system", "dispatch", "alm-called", "officer-wang")
        return calls, [called], T0

    first = _event().model_copy(update={"id": "db-fence-01:1"})
    broken = Batch(
        events=[first],
        received_at={first.id: T0},
        rejections=[Rejection(None, "invalid", "", b"", T0)],  # type: ignore[arg-type]
    )
    with pytest.raises(StoreError):
        await store.batches.commit(broken, decide, plan)
    assert ["alm-called"] == planned
    assert await store.alarms.get("alm-called") is None
    assert [] == await store.notifications.for_alarm("alm-called")
    assert [] == await store.dispatches.of_alarm("alm-called")
    assert [] == await store.audit.find(alarm_id="alm-called", action="dispatch")

    await store.batches.commit(Batch(events=[first], received_at={first.id: T0}), decide, plan)
    assert await store.alarms.get("alm-called") is not None
    assert ["officer-wang"] == [
        e.target for e in await store.audit.find(alarm_id="alm-called", action="dispatch")
    ]
    queued = await store.notifications.for_alarm("alm-called")
    assert [(0, "queued"), (1, "queued")] == sorted((r.call.channel_index, r.state) for r in queued)
    assert ["officer-wang"] == [
        d.responder_id for d in await store.dispatches.of_alarm("alm-called")
    ]

    planned.clear()
    await store.batches.commit(Batch(events=[first], received_at={first.id: T0}), decide, plan)
    assert [] == planned  # a duplicate: nothing changed, nothing planned
    assert 2 == len(await store.notifications.for_alarm("alm-called"))


async def test_a_resolve_withdraws_its_alarms_queued_calls_in_its_transaction(
    store: Store,
) -> None:
    """A resolve the store refuses withdraws nothing; one it takes withdraws the
    alarm's queued calls, leaves one under way and one sent as they are, and another
    alarm's calls queued. A call queued again later is withdrawn by the outbox's claim."""
    alarm = rules.open_alarm(_event(), T0, "alm-resolved")
    other = rules.open_alarm(_event().model_copy(update={"zone": "z2"}), T0, "alm-other")
    calls = [PlannedCall("alm-resolved", 1, "wang", i, "email", "email", None) for i in range(3)]
    await store.alarms.save(alarm, [], calls)
    await store.alarms.save(other, [], [dataclasses.replace(calls[0], alarm_id="alm-other")])
    under_way, sent, queued = (
        row.id
        for row in sorted(
            await store.notifications.for_alarm("alm-resolved"), key=lambda r: r.call.channel_index
        )
    )
    assert {under_way, sent} == await store.notifications.take([under_way, sent], [], T0)
    await store.notifications.settle_all([Settlement(sent, "sent", T0)])
    at = T0 + timedelta(seconds=5)
    resolved = rules.resolve(alarm, "officer-li", "false_alarm", None, at)
    unwritable = AuditEntry(at, "officer-li", "resolve", "alm-resolved", before={"x": object()})

    with pytest.raises(StoreError):
        await store.alarms.resolve(resolved, [unwritable])
    refused = await store.notifications.for_alarm("alm-resolved")
    assert "queued" == next(row.state for row in refused if row.id == queued)
    await store.alarms.resolve(resolved, [alarm_audit("resolve", "officer-li", alarm, resolved)])

    after = {row.id: row for row in await store.notifications.for_alarm("alm-resolved")}
    assert {under_way: "sending", sent: "sent", queued: "withdrawn"} == {
        row_id: row.state for row_id, row in after.items()
    }
    assert ("the alarm was resolved before this was sent", at) == (
        after[queued].reason,
        after[queued].updated_at,
    )
    [still] = await store.notifications.for_alarm("alm-other")
    assert "queued" == still.state
    assert [still.id] == [row.id for row in await store.notifications.due(at)]

    # The attempt under way fails and is queued again: the claim withdraws it.
    retry_at = at + timedelta(seconds=10)
    await store.notifications.settle_all(
        [Settlement(under_way, "queued", at, "HTTP 503", retry_at)]
    )
    assert set() == await store.notifications.take([under_way], [], retry_at)
    again = {row.id: row for row in await store.notifications.for_alarm("alm-resolved")}
    assert ("withdrawn", 1) == (again[under_way].state, again[under_way].attempts)


async def test_a_resolve_ends_the_dispatches_not_yet_on_scene_in_its_transaction(
    store: Store,
) -> None:
    """The resolve's plan is given the alarm's dispatches notified, accepted or on the
    way (not one on scene or ended), read in its transaction; what it cancels and
    audits is written with the resolve, and a refused resolve writes none of it."""
    alarm = rules.open_alarm(_event(), T0, "alm-stood-down")
    states: dict[str, DispatchState] = {
        "notified-wang": "notified",
        "accepted-li": "accepted",
        "coming-zhao": "on_the_way",
        "there-sun": "on_scene",
        "done-wu": "finished",
        "no-chen": "declined",
    }
    calls = [
        PlannedCall("alm-stood-down", 1, responder, 0, "email", "email", None)
        for responder in states
    ]
    await store.alarms.save(alarm, [], calls)
    for made in await store.dispatches.of_alarm("alm-stood-down"):
        await store.dispatches.save(dataclasses.replace(made, state=states[made.responder_id]))
    at = T0 + timedelta(seconds=30)
    resolved = rules.resolve(alarm, "officer-li", "false_alarm", None, at)
    given: list[list[str]] = []
    # The first plan's audit entries cannot be written: the store refuses the resolve.
    writable = [False]

    def stand_down(open_dispatches: list[Dispatch], _: list[NotificationRow]) -> StoodDown:
        given.append(sorted(d.responder_id for d in open_dispatches))
        cancelled = [dispatch_rules.act(d, "cancel", at, "alarm resolved") for d in open_dispatches]
        before: dict[str, Any] = {} if writable[0] else {"x": object()}
        entries = [
            AuditEntry(at, "system", "dispatch", d.alarm_id, d.responder_id, before=before)
            for d in cancelled
        ]
        return StoodDown(cancelled, entries)

    with pytest.raises(StoreError):
        await store.alarms.resolve(resolved, [], stand_down)
    refused = await store.dispatches.of_alarm("alm-stood-down")
    assert states == {d.responder_id: d.state for d in refused}
    assert [] == await store.audit.find(alarm_id="alm-stood-down", action="dispatch")
    stored = await store.alarms.get("alm-stood-down")
    assert stored is not None
    assert "open" == stored.state

    writable[0] = True
    ended = await store.alarms.resolve(resolved, [], stand_down)

    open_ones = ["accepted-li", "coming-zhao", "notified-wang"]
    assert [open_ones, open_ones] == given
    assert open_ones == sorted(d.responder_id for d in ended.cancelled)
    after = {d.responder_id: d for d in await store.dispatches.of_alarm("alm-stood-down")}
    assert {
        "notified-wang": "cancelled",
        "accepted-li": "cancelled",
        "coming-zhao": "cancelled",
        "there-sun": "on_scene",
        "done-wu": "finished",
        "no-chen": "declined",
    } == {responder: d.state for responder, d in after.items()}
    assert ("alarm resolved", at) == (after["accepted-li"].note, after["accepted-li"].ended_at)
    audited = await store.audit.find(alarm_id="alm-stood-down", action="dispatch")
    assert open_ones == sorted(str(entry.target) for entry in audited)


async def test_a_resolve_queues_the_stand_downs_its_plan_makes_from_the_calls_that_went_out(
    store: Store,
) -> None:
    """The plan is given the alarm's calls sent or under way (not those queued, which
    the resolve withdraws, nor those refused); the stand-downs it returns are queued
    in the resolve's transaction, once per alarm, responder and channel."""
    alarm = rules.open_alarm(_event(), T0, "alm-told")
    calls = [
        PlannedCall("alm-told", 1, responder, channel, f"email{channel}", "email", None)
        for responder in ("wang", "li", "zhao")
        for channel in (0, 1)
    ]
    await store.alarms.save(alarm, [], calls)
    rows = {
        (row.call.responder_id, row.call.channel_index): row.id
        for row in await store.notifications.for_alarm("alm-told")
    }
    went = [rows["wang", 0], rows["wang", 1], rows["li", 0], rows["zhao", 0]]
    assert set(went) == await store.notifications.take(went, [], T0)
    await store.notifications.settle_all(
        [
            Settlement(rows["wang", 0], "sent", T0),
            Settlement(rows["li", 0], "failed", T0, "HTTP 401"),
            Settlement(rows["zhao", 0], "sent", T0),
        ]
    )
    at = T0 + timedelta(seconds=30)
    given: list[tuple[str, int, str]] = []

    def stand_down(_: list[Dispatch], carried: list[NotificationRow]) -> StoodDown:
        given.extend((r.call.responder_id, r.call.channel_index, r.state) for r in carried)
        told = [r.call for r in carried if r.call.responder_id == "wang"]
        return StoodDown(messages=[dataclasses.replace(c, purpose="stand_down") for c in told])

    resolved = rules.resolve(alarm, "officer-li", "other", None, at)
    ended = await store.alarms.resolve(resolved, [], stand_down)

    assert [("wang", 0, "sent"), ("wang", 1, "sending"), ("zhao", 0, "sent")] == sorted(given)
    assert 2 == len(ended.messages)
    after = await store.notifications.for_alarm("alm-told")
    stand_downs = sorted(
        (r.call.responder_id, r.call.channel_index, r.state)
        for r in after
        if r.call.purpose == "stand_down"
    )
    assert [("wang", 0, "queued"), ("wang", 1, "queued")] == stand_downs
    withdrawn = sorted(
        (r.call.responder_id, r.call.channel_index) for r in after if r.state == "withdrawn"
    )
    assert [("li", 1), ("zhao", 1)] == withdrawn
    # Queued again (a retried transaction, a second plan): still one per channel.
    await store.notifications.queue(list(ended.messages), at + timedelta(seconds=1))
    assert len(after) == len(await store.notifications.for_alarm("alm-told"))
    due = await store.notifications.due(at + timedelta(seconds=1))
    assert ["stand_down", "stand_down"] == [r.call.purpose for r in due]


async def test_a_call_off_withdraws_that_responders_calls_and_the_claim_their_retry(
    store: Store,
) -> None:
    """An officer calls wang off: wang's queued call is withdrawn in that transaction,
    li's is left; the plan is given wang's call under way and its stand-down is
    queued. That call then fails and is queued again: the claim withdraws it, and
    sends the stand-down and li's call."""
    alarm = rules.open_alarm(_event(), T0, "alm-off")
    calls = [
        PlannedCall("alm-off", 1, "wang", 0, "email0", "email", None),
        PlannedCall("alm-off", 1, "wang", 1, "email1", "email", None),
        PlannedCall("alm-off", 1, "li", 0, "email0", "email", None),
    ]
    await store.alarms.save(alarm, [], calls)
    rows = {
        (row.call.responder_id, row.call.channel_index): row.id
        for row in await store.notifications.for_alarm("alm-off")
    }
    assert {rows["wang", 0]} == await store.notifications.take([rows["wang", 0]], [], T0)
    wang = await store.dispatches.get(dispatch_rules.dispatch_id("alm-off", "wang"))
    assert wang is not None
    at = T0 + timedelta(seconds=30)
    given: list[tuple[str, int, str]] = []

    def stand_down(open_dispatches: list[Dispatch], carried: list[NotificationRow]) -> StoodDown:
        given.extend((r.call.responder_id, r.call.channel_index, r.state) for r in carried)
        return StoodDown(
            cancelled=[dispatch_rules.act(d, "cancel", at, None) for d in open_dispatches],
            messages=[dataclasses.replace(r.call, purpose="stand_down") for r in carried],
        )

    ended = await store.notifications.call_off(wang, stand_down, at)

    assert [("wang", 0, "sending")] == given
    assert ["cancelled"] == [d.state for d in ended.cancelled]
    after = {row.id: row for row in await store.notifications.for_alarm("alm-off")}
    assert ("withdrawn", "the responder was called off before this was sent") == (
        after[rows["wang", 1]].state,
        after[rows["wang", 1]].reason,
    )
    assert "queued" == after[rows["li", 0]].state
    [told] = [row for row in after.values() if row.call.purpose == "stand_down"]
    assert ("wang", 0) == (told.call.responder_id, told.call.channel_index)
    stored = await store.dispatches.get(wang.id)
    assert stored is not None
    assert "cancelled" == stored.state

    retry_at = at + timedelta(seconds=10)
    await store.notifications.settle_all(
        [Settlement(rows["wang", 0], "queued", at, "HTTP 503", retry_at)]
    )
    claims = [rows["wang", 0], told.id, rows["li", 0]]
    assert {told.id, rows["li", 0]} == await store.notifications.take(claims, [], retry_at)
    again = {row.id: row for row in await store.notifications.for_alarm("alm-off")}
    assert ("withdrawn", 1, "the responder was called off before this was sent") == (
        again[rows["wang", 0]].state,
        again[rows["wang", 0]].attempts,
        again[rows["wang", 0]].reason,
    )


async def test_calls_stored_before_stand_downs_existed_read_back_as_calls(
    store_at: str,
) -> None:
    """A store at the revision before the column: its rows are calls after the upgrade."""
    engine = create_async_engine(store_at)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(migrate._config(sync), "0009"))
            # The table as revision 0009 made it: no purpose.
            before = table(
                "notifications",
                *[column(c.name, c.type) for c in tables.notifications.c if c.name != "purpose"],
            )
            await conn.execute(
                insert(before).values(
                    id="n-old",
                    key="alm-old/1/wang/0",
                    alarm_id="alm-old",
                    level=1,
                    responder_id="wang",
                    channel_index=0,
                    channel_label="email",
                    channel_key="email",
                    channel_limit=None,
                    state="sent",
                    attempts=1,
                    due_at=T0,
                    reason="",
                    created_at=T0,
                    updated_at=T0,
                )
            )
    finally:
        await engine.dispose()
    store = await Store.open(store_at)
    try:
        [row] = await store.notifications.for_alarm("alm-old")
    finally:
        await store.close()
    assert ("call", "alm-old/1/wang/0") == (row.call.purpose, row.call.key)
