"""Recently seen sequence numbers per device: the duplicate filter.

Devices resend a report when they miss their broker's PUBACK, and the broker
redelivers to a persistent session after a reconnect: the same ``seq`` can
arrive twice. Memory is bounded per device; a sequence older than the window
is accepted again (wrap-around and device restarts are a later issue).
"""

from __future__ import annotations

from collections import deque

DEFAULT_WINDOW = 1024


class RecentSeqs:
    """The last ``window`` sequence numbers accepted from each device."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self._order: dict[str, deque[int]] = {}
        self._seen: dict[str, set[int]] = {}

    def seen(self, device: str, seq: int) -> bool:
        return seq in self._seen.get(device, ())

    def add(self, device: str, seq: int) -> None:
        seen = self._seen.setdefault(device, set())
        if seq in seen:
            return
        order = self._order.setdefault(device, deque())
        if len(order) >= self.window:
            seen.discard(order.popleft())
        order.append(seq)
        seen.add(seq)
