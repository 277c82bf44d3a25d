"""Rate limits per responder and per channel: at most so many sends in any window.

A notification over a limit waits (it is not an attempt and not a failure): a
storm of alarms must not flood one officer's phone, and a WeCom or DingTalk
robot refuses more than 20 messages a minute. The counts live in memory, and
the outbox's sender seeds them when it starts from its own rows sent within
the last window (``Outbox.run``), so a hub restart does not let a second
window's worth through. A send is counted from when its attempt began while
the hub runs, and from when it was recorded as sent (at most the send timeout
later) after a restart: the wait after a restart may be that much longer.
Attempts that failed within the window before a restart are not counted again.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

WINDOW_S = 60.0


class SlidingWindow:
    """At most ``limit`` sends per key in any ``window_s``."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError("a rate limit's window must be longer than 0 s")
        self.window = timedelta(seconds=window_s)
        # Per key, the times of its last ``limit`` sends, oldest first.
        self._sent: dict[str, deque[datetime]] = {}

    def free_at(self, key: str, limit: int, now: datetime) -> datetime:
        """The earliest time, ``now`` or later, a send for ``key`` fits ``limit``."""
        sent = self._sent.get(key)
        if sent is None or len(sent) < limit:
            return now
        return max(now, sent[-limit] + self.window)

    def take(self, key: str, limit: int, at: datetime) -> None:
        """Count a send for ``key`` at ``at`` (one that fits: see ``free_at``)."""
        sent = self._sent.get(key)
        if sent is None or sent.maxlen != limit:
            sent = self._sent[key] = deque(sent or (), maxlen=limit)
        sent.append(at)

    def forget_idle(self, now: datetime) -> None:
        """Drop keys whose every send has left the window (a long-running hub meets
        many responders and channels)."""
        idle = [key for key, sent in self._sent.items() if sent[-1] + self.window <= now]
        for key in idle:
            del self._sent[key]


class RateLimits:
    """A send goes when both its responder and its channel allow it."""

    def __init__(self, responder_limit: int, window_s: float = WINDOW_S) -> None:
        if responder_limit < 1:
            raise ValueError("a responder's rate limit must allow at least one send")
        self.responder_limit = responder_limit
        self.window = timedelta(seconds=window_s)
        self._responders = SlidingWindow(window_s)
        self._channels = SlidingWindow(window_s)

    def free_at(
        self, responder_id: str, channel_key: str, channel_limit: int | None, now: datetime
    ) -> datetime:
        free = self._responders.free_at(responder_id, self.responder_limit, now)
        if channel_limit is not None:
            free = max(free, self._channels.free_at(channel_key, channel_limit, now))
        return free

    def take(
        self, responder_id: str, channel_key: str, channel_limit: int | None, at: datetime
    ) -> None:
        self._responders.take(responder_id, self.responder_limit, at)
        if channel_limit is not None:
            self._channels.take(channel_key, channel_limit, at)

    def forget_idle(self, now: datetime) -> None:
        self._responders.forget_idle(now)
        self._channels.forget_idle(now)
