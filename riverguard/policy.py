"""Announcement policy, applied by the hub when it sends and again by the edge when it plays.

Life-safety (priority ``LIFE_SAFETY_PRIORITY`` and up) is an alarm's answer:
an announcement that names no open alarm (the hub passes a resolved alarm's
as none) is routine whatever priority it asks
for, and its priority is capped to ``ROUTINE_MAX_PRIORITY``. Routine
announcements repeat at most ``ROUTINE_MAX_REPEAT`` times and, during the
site's quiet hours, play at most at its quiet volume cap. The hub also limits
how many routine announcements a site gets (hub/announcer.py).

The edge applies the same rules to every announce it is given (PROTOCOL
7.31), so that one that did not come through the hub's policy, or was
altered on the way, still cannot play above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from riverguard.config import Site

LIFE_SAFETY_PRIORITY = 8
ROUTINE_MAX_PRIORITY = LIFE_SAFETY_PRIORITY - 1
# The clip renderer's own bound (PROTOCOL 7.30 ``repeat`` 1-5).
ROUTINE_MAX_REPEAT = 5
# The hub's ``RIVERGUARD_QUIET_VOLUME_CAP`` default, for a site that sets none.
DEFAULT_QUIET_VOLUME_CAP = 40


@dataclass(frozen=True, slots=True)
class Shaped:
    """What an announcement plays at under the policy, and what was capped (readable notes)."""

    priority: int
    repeat: int
    volume: int
    life_safety: bool
    notes: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        return "; ".join(self.notes)


def is_life_safety(priority: int, alarm_id: str | None) -> bool:
    return priority >= LIFE_SAFETY_PRIORITY and alarm_id is not None


def shape(
    *,
    priority: int,
    repeat: int,
    volume: int,
    alarm_id: str | None,
    site: Site,
    now: datetime,
    quiet_volume_cap: int = DEFAULT_QUIET_VOLUME_CAP,
) -> Shaped:
    """The announcement as policy lets it play; ``quiet_volume_cap`` when the site sets none."""
    notes: list[str] = []
    if priority >= LIFE_SAFETY_PRIORITY and alarm_id is None:
        notes.append(f"priority capped {priority} -> {ROUTINE_MAX_PRIORITY} (no open alarm)")
        priority = ROUTINE_MAX_PRIORITY
    life_safety = is_life_safety(priority, alarm_id)
    if not life_safety:
        if repeat > ROUTINE_MAX_REPEAT:
            notes.append(f"repeat capped {repeat} -> {ROUTINE_MAX_REPEAT} (routine)")
            repeat = ROUTINE_MAX_REPEAT
        cap = quiet_volume_cap if site.quiet_volume_cap is None else site.quiet_volume_cap
        if volume > cap and in_quiet_hours(site, now):
            notes.append(f"volume capped {volume} -> {cap} (quiet hours)")
            volume = cap
    return Shaped(priority, repeat, volume, life_safety, tuple(notes))


def in_quiet_hours(site: Site, now: datetime) -> bool:
    """Whether ``now`` falls in the site's ``quiet_hours`` ("HH:MM-HH:MM", local time)."""
    return quiet_hours_cover(site.quiet_hours, now.astimezone(ZoneInfo(site.timezone)).time())


def quiet_hours_cover(quiet_hours: str | None, local: time) -> bool:
    """Whether the wall-clock time ``local`` falls within "HH:MM-HH:MM" (which may span
    midnight); never without quiet hours."""
    if not quiet_hours:
        return False
    start_s, end_s = quiet_hours.split("-")
    start, end = time.fromisoformat(start_s), time.fromisoformat(end_s)
    if start <= end:
        return start <= local < end
    return local >= start or local < end
