"""The in-memory outbox keeps events until committed and hands back the due ones in order."""

from __future__ import annotations

from datetime import UTC, datetime

from edge.outbox import MemoryOutbox, OutboxEntry
from riverguard.wire.models import Event

T = datetime(2026, 7, 27, 21, 0, tzinfo=UTC)


def _entry(seq: int, sent_at: float | None = None) -> OutboxEntry:
    event = Event(
        id=f"db-fence-01:{seq}",
        site="danshui-bridge",
        device="db-fence-01",
        kind="fence.breach",
        zone="z1",
        ts=T,
        edge_ts=T,
        severity="warning",
    )
    entry = OutboxEntry.of(event)
    entry.sent_at = sent_at
    return entry


async def test_unsent_entries_are_due_in_insertion_order() -> None:
    outbox = MemoryOutbox()
    for seq in (1, 2, 3):
        await outbox.add(_entry(seq))
    due = await outbox.due(now=100.0, resend_after=5.0, limit=10)
    assert ["db-fence-01:1", "db-fence-01:2", "db-fence-01:3"] == [e.id for e in due]


async def test_entries_become_due_after_the_timeout_only() -> None:
    outbox = MemoryOutbox()
    await outbox.add(_entry(1, sent_at=100.0))
    assert [] == await outbox.due(now=104.9, resend_after=5.0, limit=10)
    assert ["db-fence-01:1"] == [e.id for e in await outbox.due(105.0, 5.0, 10)]


async def test_resent_entries_move_behind_and_keep_their_order() -> None:
    outbox = MemoryOutbox()
    for seq in (1, 2, 3):
        await outbox.add(_entry(seq, sent_at=100.0))
    due = await outbox.due(106.0, 5.0, limit=2)
    assert ["db-fence-01:1", "db-fence-01:2"] == [e.id for e in due]
    await outbox.mark_sent(due, 106.0)
    assert ["db-fence-01:3"] == [e.id for e in await outbox.due(106.0, 5.0, 10)]
    assert 1 == due[0].sends
    later = await outbox.due(112.0, 5.0, 10)
    assert ["db-fence-01:3", "db-fence-01:1", "db-fence-01:2"] == [e.id for e in later]


async def test_committed_entries_are_forgotten() -> None:
    outbox = MemoryOutbox()
    for seq in (1, 2):
        await outbox.add(_entry(seq))
    assert 1 == await outbox.ack(["db-fence-01:1", "db-fence-01:99"])
    assert 1 == len(outbox)
    assert ["db-fence-01:2"] == [e.id for e in await outbox.due(0.0, 5.0, 10)]


async def test_reset_makes_everything_due() -> None:
    outbox = MemoryOutbox()
    await outbox.add(_entry(1, sent_at=100.0))
    await outbox.reset()
    assert 1 == len(await outbox.due(100.0, 5.0, 10))


async def test_full_outbox_drops_the_oldest() -> None:
    outbox = MemoryOutbox(limit=2)
    assert 0 == await outbox.add(_entry(1))
    assert 0 == await outbox.add(_entry(2))
    assert 1 == await outbox.add(_entry(3))
    assert "db-fence-01:1" not in outbox
    assert 2 == len(outbox)


async def test_reset_restores_insertion_order_after_resends() -> None:
    """After the hub's return the backlog drains oldest first, whatever was resent meanwhile."""
    outbox = MemoryOutbox()
    for seq in (1, 2, 3):
        await outbox.add(_entry(seq, sent_at=100.0))
    await outbox.mark_sent(await outbox.due(106.0, 5.0, limit=1), 106.0)  # 1 moved behind
    await outbox.reset()
    due = await outbox.due(107.0, 5.0, limit=10)
    assert ["db-fence-01:1", "db-fence-01:2", "db-fence-01:3"] == [e.id for e in due]


async def test_full_outbox_never_drops_a_critical_event() -> None:
    outbox = MemoryOutbox(limit=2)
    critical = _entry(1)
    critical.event = critical.event.model_copy(update={"severity": "critical"})
    await outbox.add(critical)
    await outbox.add(_entry(2))
    assert 1 == await outbox.add(_entry(3))  # 2, the oldest non-critical, made room
    assert "db-fence-01:1" in outbox
    assert "db-fence-01:2" not in outbox
    assert 1 == outbox.dropped


async def test_when_durable_calls_back_at_once_in_memory() -> None:
    outbox = MemoryOutbox()
    await outbox.add(_entry(1))
    called: list[int] = []
    outbox.when_durable(lambda: called.append(1))
    assert [1] == called
