"""An announcement's delivery to its speakers: their states, and the timeouts on them.

A speaker's state moves forward only (pending, received, playing, then one
final state). A speaker with no acknowledgement ``ack_timeout`` after sending
is marked ``failed`` with detail ``no_ack``; one still not finished when the
announcement's expiry, its playing time and that timeout have passed, with
``no_ack: no final state``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Literal

import structlog

from hub.clock import Clock
from hub.errors import StoreError
from hub.store import Store

log = structlog.get_logger()

# How long an announcement may wait to start playing when its request names no expiry.
DEFAULT_EXPIRY = timedelta(seconds=60)
ACTIVE = ("pending", "received", "playing")
# Speaker states move forward only; a late "received" does not undo "done".
RANK = {"pending": 0, "received": 1, "playing": 2, "done": 3, "failed": 3, "expired": 3}
STORE_RETRY = timedelta(seconds=5)

# "ack": every speaker must have acknowledged; "final": every speaker must have finished.
Stage = Literal["ack", "final"]
# Marks the speakers still waiting at ``stage`` failed (the announcer's ``timed_out``).
TimedOut = Callable[[str, Stage, datetime], Awaitable[None]]


class DeliveryTimeouts:
    """When each sent announcement's speakers must have acknowledged it, and finished."""

    def __init__(
        self, store: Store, clock: Clock, ack_timeout: timedelta, timed_out: TimedOut
    ) -> None:
        self.store = store
        self.clock = clock
        self.ack_timeout = ack_timeout
        self.timed_out = timed_out
        self._deadlines: dict[tuple[str, Stage], datetime] = {}
        self._wake = asyncio.Event()

    def expect_ack(self, ann_id: str, sent_at: datetime) -> None:
        self._deadlines[(ann_id, "ack")] = sent_at + self.ack_timeout
        self._wake.set()

    def expect_final(
        self, ann_id: str, expires_at: datetime, duration_ms: int, repeat: int
    ) -> None:
        self._deadlines[(ann_id, "final")] = self._final_due(expires_at, duration_ms, repeat)
        self._wake.set()

    def _final_due(self, expires_at: datetime, duration_ms: int, repeat: int) -> datetime:
        return expires_at + timedelta(milliseconds=duration_ms * repeat) + self.ack_timeout

    async def run(self) -> None:
        """Mark speakers that never acknowledged, or never finished, ``failed`` (``no_ack``)."""
        # Announcements sent before a restart still get their timeouts.
        since = self.clock.now() - timedelta(hours=2)
        for record in await self.store.announcements.since(since):
            states = set(record.speakers.values())
            if "pending" in states:
                self._deadlines[(record.id, "ack")] = record.created_at + self.ack_timeout
            if states & set(ACTIVE):
                self._deadlines[(record.id, "final")] = self._final_due(
                    record.expires_at, record.clip["duration_ms"], record.repeat
                )
        while True:
            self._wake.clear()
            now = self.clock.now()
            due = [key for key, at in self._deadlines.items() if at <= now]
            for key in due:
                del self._deadlines[key]
                try:
                    await self.timed_out(*key, now)
                except StoreError as exc:
                    # Try again shortly: a store outage must not end the timeout loop.
                    log.warning("delivery timeout not recorded", key=key, error=str(exc))
                    self._deadlines[key] = now + STORE_RETRY
            if not due:
                upcoming = min(self._deadlines.values(), default=None)
                await self.clock.wait(upcoming, self._wake)
