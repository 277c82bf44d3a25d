"""Events kept until the hub's commit acknowledgement (PROTOCOL 3.3) names them.

A broker's PUBACK is one hop and does not mean stored, so every event stays
here until the hub says it is committed, and is resent while it is not.

``Outbox`` is the interface the agent uses. ``MemoryOutbox`` keeps entries in
memory (bounded, lost on restart); ``SqliteOutbox`` (``edge.sqlite_outbox``)
keeps them on disk and survives ``kill -9``.

Durability is a group commit: ``add`` only queues the write, and ``flush``
returns once everything added before it is on disk. The agent publishes an
event, and acknowledges the device's message to the broker, only after a
``flush`` (or in a ``when_durable`` callback), so nothing is ever sent (or
forgotten by the broker) before it is stored, while one fsync covers every
event that arrived in the meantime.

When the outbox is full the oldest non-critical entry makes room; a critical
event is never dropped (the outbox grows past its limit instead). ``dropped``
counts what was dropped; the edge reports it in its status.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from riverguard.wire.models import Event

DEFAULT_LIMIT = 100_000

log = structlog.get_logger()


@dataclass(slots=True)
class OutboxEntry:
    event: Event
    # The event's JSON, serialised once and reused for every send.
    payload: bytes
    # JPEG bytes published on the snapshot topic before the event, if any.
    snapshot: bytes | None = None
    # Monotonic time of the last send (or of the hand-over to the publisher).
    sent_at: float | None = None
    sends: int = 0
    # Insertion order, given by the outbox: ``reset`` restores it.
    order: int = 0

    @property
    def id(self) -> str:
        return self.event.id

    @property
    def critical(self) -> bool:
        return self.event.severity == "critical"

    @classmethod
    def of(cls, event: Event, snapshot: bytes | None = None) -> OutboxEntry:
        return cls(event, event.model_dump_json().encode(), snapshot)


class Outbox(Protocol):
    # Entries dropped for room since the outbox was created (on disk: ever).
    dropped: int

    def __len__(self) -> int: ...

    def __contains__(self, event_id: object) -> bool: ...

    async def open(self) -> None:
        """Load what a previous run left (a no-op in memory)."""
        ...

    async def run(self) -> None:
        """Background work (the disk writer) for as long as the agent runs."""
        ...

    async def flush(self) -> None:
        """Return once everything added, acked or dropped so far is on disk."""
        ...

    async def close(self) -> None:
        """Flush and release the storage."""
        ...

    def when_durable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once everything added, acked or dropped so far is on disk.

        At once if it is already; otherwise from the event loop, in the order
        given, without a task of its own. It must not block; an exception it
        raises is logged.
        """
        ...

    async def add(self, entry: OutboxEntry) -> int:
        """Keep ``entry``; returns how many of the oldest non-critical entries were dropped."""
        ...

    async def ack(self, ids: Iterable[str]) -> int:
        """Forget the committed events; returns how many were here."""
        ...

    async def due(self, now: float, resend_after: float, limit: int) -> list[OutboxEntry]:
        """Up to ``limit`` entries not sent within ``resend_after`` seconds, oldest first."""
        ...

    async def mark_sent(self, entries: Sequence[OutboxEntry], now: float) -> None: ...

    async def reset(self) -> None:
        """Make every entry due now, oldest first (after a reconnect, or the hub's return)."""
        ...


class MemoryOutbox:
    """Bounded in-memory outbox; entries are kept in the order they were last sent.

    Sending an entry moves it to the end, so the due ones are always a prefix
    and ``due`` costs what it returns, not the whole outbox.
    """

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.dropped = 0
        self._entries: OrderedDict[str, OutboxEntry] = OrderedDict()
        self._added = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._entries

    async def open(self) -> None:
        pass

    async def run(self) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def when_durable(self, callback: Callable[[], None]) -> None:
        call_logged(callback)

    async def add(self, entry: OutboxEntry) -> int:
        self._entries.pop(entry.id, None)
        victims = make_room(self._entries, self.limit)
        self._added += 1
        entry.order = self._added
        self._entries[entry.id] = entry
        self.dropped += len(victims)
        return len(victims)

    async def ack(self, ids: Iterable[str]) -> int:
        removed = 0
        for event_id in ids:
            if self._entries.pop(event_id, None) is not None:
                removed += 1
        return removed

    async def due(self, now: float, resend_after: float, limit: int) -> list[OutboxEntry]:
        result: list[OutboxEntry] = []
        for entry in self._entries.values():
            if len(result) >= limit:
                break
            if entry.sent_at is not None and now - entry.sent_at < resend_after:
                break  # sent later than every entry after it: nothing further is due
            result.append(entry)
        return result

    async def mark_sent(self, entries: Sequence[OutboxEntry], now: float) -> None:
        for entry in entries:
            if entry.id in self._entries:
                entry.sent_at = now
                entry.sends += 1
                self._entries.move_to_end(entry.id)

    async def reset(self) -> None:
        reset_order(self._entries)


def make_room(entries: OrderedDict[str, OutboxEntry], limit: int) -> list[OutboxEntry]:
    """Remove the oldest non-critical entries until one more fits under ``limit``.

    Critical events are never dropped: with nothing else left the outbox goes
    over its limit, which is logged.
    """
    excess = len(entries) - limit + 1
    if excess <= 0:
        return []
    victims: list[OutboxEntry] = []
    for entry in entries.values():
        if len(victims) >= excess:
            break
        if not entry.critical:
            victims.append(entry)
    for victim in victims:
        del entries[victim.id]
    if len(victims) < excess:
        log.warning(
            "outbox over its limit: only critical events left, none dropped",
            size=len(entries),
            limit=limit,
        )
    return victims


def call_logged(callback: Callable[[], None]) -> None:
    """Run a ``when_durable`` callback; its failure is its own, not the outbox's."""
    try:
        callback()
    except Exception:
        log.exception("outbox durable callback failed")


def reset_order(entries: OrderedDict[str, OutboxEntry]) -> None:
    """Every entry due now, back in insertion order (resends had moved them behind)."""
    ordered = sorted(entries.values(), key=lambda entry: entry.order)
    entries.clear()
    for entry in ordered:
        entry.sent_at = None
        entries[entry.id] = entry
