"""What the edge tells the hub besides events: acks, device statuses, late snapshots.

The field side posts them here and never waits: a speaker warns the swimmer
and a device status is taken while the uplink is down. The uplink
(``edge.uplink``) publishes them in the order posted whenever it is connected,
each removed only once the central broker has acknowledged it (QoS 1), so a
connection lost mid-way resends it (the hub takes a repeated ack or status as
stale, a repeated snapshot as the same picture).

A message posted with ``after_event`` waits until the hub has committed that
event, and those posted after it wait behind it: the edge's own warning is acked
only once the hub has the breach that raised it, so the hub links the warning to
that breach's alarm even when both arrive after an outage. It waits at most the
uplink's ``commit_timeout_s`` of connected time (a hub that commits nothing
still hears of the warning).

Held in memory, bounded: when full the oldest message goes, counted in
``riverguard_edge_uplink_dropped_total``. A retained message (a device's
status) replaces one of its topic still waiting: only the latest status
matters, and a long outage does not fill the queue with a device's heartbeats.
Events never pass through here: the outbox keeps them on disk.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger()

# Acks and statuses of a day-long outage at a busy site fit many times over.
DEFAULT_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    after_event: str | None
    posted_at: float  # monotonic


class Outgoing:
    def __init__(self, limit: int = DEFAULT_LIMIT, on_drop: Callable[[int], None] | None = None):
        self.limit = limit
        self._queue: collections.deque[Message] = collections.deque()
        self._posted = asyncio.Event()
        self._on_drop = on_drop

    def __len__(self) -> int:
        return len(self._queue)

    def post(
        self,
        topic: str,
        payload: str | bytes,
        *,
        retain: bool = False,
        after_event: str | None = None,
    ) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        if retain:
            stale = next((m for m in self._queue if m.retain and m.topic == topic), None)
            if stale is not None:
                self._queue.remove(stale)
        self._queue.append(Message(topic, data, retain, after_event, time.monotonic()))
        if len(self._queue) > self.limit:
            self._queue.popleft()
            log.error("uplink queue full; oldest message dropped", limit=self.limit)
            if self._on_drop is not None:
                self._on_drop(1)
        self._posted.set()

    def ready(self, held: Callable[[Message], bool]) -> list[Message]:
        """The messages at the head that may go now: up to the first ``held`` one."""
        self._posted.clear()  # what is posted from now on wakes ``wait``
        ready: list[Message] = []
        for message in self._queue:
            if message.after_event is not None and held(message):
                break
            ready.append(message)
        return ready

    def done(self, sent: list[Message]) -> None:
        """``sent`` (what ``ready`` gave) was acknowledged by the broker: off the queue.
        One replaced meanwhile by a newer status is gone already."""
        for message in sent:
            if self._queue and self._queue[0] is message:
                self._queue.popleft()
            else:
                for index, waiting in enumerate(self._queue):
                    if waiting is message:
                        del self._queue[index]
                        break

    async def wait(self, at_most_s: float) -> None:
        """Until something is posted after the last ``ready``, or ``at_most_s`` (a held
        message may be due by then)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._posted.wait(), at_most_s)
