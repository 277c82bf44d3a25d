"""The hub's clock, injectable so timers (escalation, deterrence) are tested without sleeps.

A timer loop asks ``wait(until, wake)``: return when ``until`` is reached or
``wake`` is set, whichever comes first. ``SystemClock`` waits in real time;
``ManualClock`` only moves when a test calls ``advance``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Protocol

from riverguard.wire.times import utcnow


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def wait(self, until: datetime | None, wake: asyncio.Event) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()

    async def wait(self, until: datetime | None, wake: asyncio.Event) -> None:
        delay = None if until is None else max(0.0, (until - utcnow()).total_seconds())
        try:
            async with asyncio.timeout(delay):
                await wake.wait()
        except TimeoutError:
            pass


class ManualClock:
    """Time stands still until ``advance``; every waiter then looks at the time again."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utcnow()
        self._wakes: set[asyncio.Event] = set()

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        for wake in self._wakes:
            wake.set()

    async def wait(self, until: datetime | None, wake: asyncio.Event) -> None:
        if until is not None and self._now >= until:
            return
        self._wakes.add(wake)
        try:
            await wake.wait()
        finally:
            self._wakes.discard(wake)
