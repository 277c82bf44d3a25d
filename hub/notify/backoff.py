"""When to try a notification again: capped exponential backoff with jitter, and
when to give up.

Jitter spreads the retries of a storm (500 alarms escalating in one minute to
one dead gateway) instead of sending them back together each round.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from riverguard.responders import Notify


@dataclass(frozen=True)
class Backoff:
    first_s: float = 10.0
    cap_s: float = 600.0
    # Attempts in all, the first included; after the last failure the
    # notification is given up.
    max_attempts: int = 8

    @classmethod
    def of(cls, notify: Notify) -> Backoff:
        return cls(notify.retry_first_s, notify.retry_cap_s, notify.max_attempts)

    def delay_s(self, attempts: int, jitter: float) -> float:
        """The wait after the ``attempts``-th failed attempt; ``jitter`` in [0, 1)
        takes up to half of it off."""
        full = min(self.cap_s, self.first_s * 2.0 ** (attempts - 1))
        return full * (1 - jitter / 2)

    def next_attempt(
        self, attempts: int, now: datetime, rand: Callable[[], float] = random.random
    ) -> datetime | None:
        """When to try again after ``attempts`` failed attempts, or None to give up."""
        if attempts >= self.max_attempts:
            return None
        return now + timedelta(seconds=self.delay_s(attempts, rand()))
