"""What the edge's two sides (the site broker's, the uplink's) share in their lifecycle.

``SideReady``: whether a side is connected and serving; both flip theirs the
same way, and the agent's own readiness follows both (set while both are).
``raise_when_set`` ends a side's session for a clean shutdown, and
``sleep_unless`` waits before a reconnect unless the edge is stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class SideReady(asyncio.Event):
    """Set while the side is connected and subscribed; ``on_change`` hears every flip."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        super().__init__()
        self._on_change = on_change

    def mark(self, ready: bool) -> None:
        if ready:
            self.set()
        else:
            self.clear()
        self._on_change()


class Stopping(Exception):
    """Raised inside a session's TaskGroup to end it for a clean shutdown."""


async def raise_when_set(stop: asyncio.Event) -> None:
    await stop.wait()
    raise Stopping


async def sleep_unless(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
