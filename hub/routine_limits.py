"""How many routine announcements a site may have per window.

The site's own ``routine_limit`` per ``routine_window_s``, or the hub's
defaults; counted in the state store, so a restart or another replica sees
the same count. Life-safety and scheduled announcements are not limited.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hub.errors import AnnouncementError
from hub.store import RoutineLimit, Store
from riverguard.config import Config


class RoutineLimits:
    def __init__(self, store: Store, config: Config, *, limit: int, window_s: float) -> None:
        self.store = store
        self.config = config
        self.limit = limit
        self.window_s = window_s

    def window(self, site: str) -> timedelta:
        own = self.config.site(site).routine_window_s
        return timedelta(seconds=self.window_s if own is None else own)

    def quota(self, site: str, now: datetime) -> RoutineLimit:
        """The site's limit, counted since ``now`` less its window."""
        own = self.config.site(site).routine_limit
        return RoutineLimit(self.limit if own is None else own, now - self.window(site))

    async def check(self, site: str, now: datetime) -> None:
        """Refuse (``rate_limited``) when the site is at its limit already."""
        quota = self.quota(site, now)
        count = await self.store.announcements.count_routine(site, quota.since)
        if count >= quota.limit:
            raise self.refusal(site, count)

    def refusal(self, site: str, count: int) -> AnnouncementError:
        return AnnouncementError(
            "rate_limited",
            f"site {site!r} had {count} routine announcements in the last "
            f"{self.window(site).total_seconds():.0f} s (life-safety is not limited)",
            status=429,
        )
