"""Events kept until the hub's commit acknowledgement (PROTOCOL 3.3) names them.

A broker's PUBACK is one hop and does not mean stored, so every event stays
here until the hub says it is committed, and is resent while it is not.

``Outbox`` is the interface the agent uses; ``MemoryOutbox`` keeps entries in
memory (bounded, lost on restart). An on-disk SQLite outbox will implement the
same protocol; its methods are async for that reason.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from riverguard.wire.models import Event

DEFAULT_LIMIT = 100_000


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

    @property
    def id(self) -> str:
        return self.event.id

    @classmethod
    def of(cls, event: Event, snapshot: bytes | None = None) -> OutboxEntry:
        return cls(event, event.model_dump_json().encode(), snapshot)


class Outbox(Protocol):
    def __len__(self) -> int: ...

    async def add(self, entry: OutboxEntry) -> int:
        """Keep ``entry``; returns how many of the oldest entries were dropped for room."""
        ...

    async def ack(self, ids: Iterable[str]) -> int:
        """Forget the committed events; returns how many were here."""
        ...

    async def due(self, now: float, resend_after: float, limit: int) -> list[OutboxEntry]:
        """Up to ``limit`` entries not sent within ``resend_after`` seconds, oldest first."""
        ...

    async def mark_sent(self, entries: Sequence[OutboxEntry], now: float) -> None: ...

    async def reset(self) -> None:
        """Make every entry due now (after a reconnect)."""
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
        self._entries: OrderedDict[str, OutboxEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._entries

    async def add(self, entry: OutboxEntry) -> int:
        dropped = 0
        self._entries.pop(entry.id, None)
        while len(self._entries) >= self.limit:
            self._entries.popitem(last=False)
            dropped += 1
        self._entries[entry.id] = entry
        return dropped

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
        for entry in self._entries.values():
            entry.sent_at = None
