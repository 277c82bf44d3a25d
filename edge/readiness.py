"""Whether one side of the edge (the site broker's, the uplink's) is connected and serving.

Both sides flip theirs the same way, and the agent's own readiness follows
both (set while both are): each flip tells the agent.
"""

from __future__ import annotations

import asyncio
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
