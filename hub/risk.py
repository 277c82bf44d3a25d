"""Four-colour site risk (blue, yellow, orange, red), as a pure function of its inputs.

- Active alarms set the base: info yellow, warning orange, critical red.
- The site's schedule (summer evenings, school holidays) sets a floor.
- Unguarded zones (a fence or camera of the zone offline) raise the colour one level.
- ``risk_rate_events`` events within ``risk_window_s`` raise it one level.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from hub import alarms as rules
from riverguard.config import RiskPeriod, Site
from riverguard.wire.models import Alarm, RiskColour

COLOURS: tuple[RiskColour, ...] = ("blue", "yellow", "orange", "red")
LEVEL = {colour: index for index, colour in enumerate(COLOURS)}


@dataclass(frozen=True, slots=True)
class Assessment:
    colour: RiskColour
    unguarded: tuple[str, ...]
    reasons: tuple[str, ...]
    recent_events: int


def in_period(period: RiskPeriod, local: datetime) -> bool:
    day = local.strftime("%m-%d")
    if period.start <= period.end:
        in_dates = period.start <= day <= period.end
    else:
        in_dates = day >= period.start or day <= period.end
    hour = local.hour
    if period.from_hour < period.to_hour:
        in_hours = period.from_hour <= hour < period.to_hour
    else:
        in_hours = hour >= period.from_hour or hour < period.to_hour
    return in_dates and in_hours


def assess_site(
    site: Site,
    active: Iterable[Alarm],
    unguarded: Iterable[str],
    recent_events: int,
    now: datetime,
) -> Assessment:
    reasons: list[str] = []
    base = rules.site_risk(active)
    level = LEVEL[base]
    if level:
        reasons.append(f"alarms:{base}")
    local = now.astimezone(ZoneInfo(site.timezone))
    for period in site.risk_schedule:
        if in_period(period, local) and LEVEL[period.colour] > 0:
            reasons.append(f"schedule:{period.name}")
            level = max(level, LEVEL[period.colour])
    zones = tuple(sorted(set(unguarded)))
    if zones:
        reasons.append("unguarded")
        level += 1
    if recent_events >= site.risk_rate_events:
        reasons.append("event_rate")
        level += 1
    return Assessment(COLOURS[min(level, len(COLOURS) - 1)], zones, tuple(reasons), recent_events)
