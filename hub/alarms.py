"""Alarm rules (PROTOCOL 5), as pure functions over frozen ``Alarm`` values.

- Events of one site and zone join the open or acknowledged alarm of that
  site and zone; otherwise they open a new one.
- ``fence.clear`` and ``info`` events never open an alarm; they only join one.
- An alarm's severity is the highest of its events'.
- ``open -> acknowledged -> resolved`` and ``open -> resolved``; anything else
  is an ``AlarmTransitionError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hub import ids
from hub.errors import AlarmTransitionError
from riverguard.wire.models import SEVERITY_RANK, Alarm, Event, RiskColour

# An alarm keeps the ids of its newest events only; ``event_count`` has the total.
# A flood on one zone must not grow the alarm object pushed on every change.
MAX_EVENT_IDS = 200

ACTIVE_STATES = ("open", "acknowledged")

ZoneKey = tuple[str, str]


def opens_alarm(event: Event) -> bool:
    return event.kind != "fence.clear" and event.severity != "info"


def _max_severity(a: str, b: str) -> str:
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


def open_alarm(event: Event, now: datetime, alarm_id: str) -> Alarm:
    return Alarm(
        id=alarm_id,
        site=event.site,
        zone=event.zone,
        state="open",
        severity=event.severity,
        opened_at=now,
        updated_at=now,
        event_count=1,
        event_ids=[event.id],
        last_event_id=event.id,
    )


def join(alarm: Alarm, event: Event, now: datetime) -> Alarm:
    event_ids = [*alarm.event_ids, event.id][-MAX_EVENT_IDS:]
    return alarm.model_copy(
        update={
            "severity": _max_severity(alarm.severity, event.severity),
            "updated_at": now,
            "event_count": alarm.event_count + 1,
            "event_ids": event_ids,
            "last_event_id": event.id,
        }
    )


@dataclass
class Outcome:
    """What a batch of events did: changed alarms (newest value) and each event's alarm."""

    changed: dict[str, Alarm] = field(default_factory=dict)
    alarm_of: dict[str, str] = field(default_factory=dict)


def apply_events(
    active: Mapping[ZoneKey, Alarm],
    events: Sequence[Event],
    now: datetime,
    new_id: Callable[[], str] = ids.alarm_id,
) -> Outcome:
    """Join or open alarms for ``events`` (all new, in arrival order)."""
    working = dict(active)
    outcome = Outcome()
    for event in events:
        key = (event.site, event.zone)
        current = working.get(key)
        if current is None:
            if not opens_alarm(event):
                continue
            current = open_alarm(event, now, new_id())
        else:
            current = join(current, event, now)
        working[key] = current
        outcome.changed[current.id] = current
        outcome.alarm_of[event.id] = current.id
    return outcome


def acknowledge(alarm: Alarm, username: str, now: datetime) -> Alarm:
    if alarm.state != "open":
        raise AlarmTransitionError(f"alarm {alarm.id} is {alarm.state}, not open")
    return alarm.model_copy(
        update={"state": "acknowledged", "acked_by": username, "acked_at": now, "updated_at": now}
    )


def resolve(alarm: Alarm, username: str, outcome: str, note: str | None, now: datetime) -> Alarm:
    if alarm.state not in ACTIVE_STATES:
        raise AlarmTransitionError(f"alarm {alarm.id} is already {alarm.state}")
    return alarm.model_copy(
        update={
            "state": "resolved",
            "resolved_by": username,
            "resolved_at": now,
            "outcome": outcome,
            "note": note,
            "updated_at": now,
        }
    )


def add_announcement(alarm: Alarm, announcement_id: str, now: datetime) -> Alarm:
    return alarm.model_copy(
        update={"announcements": [*alarm.announcements, announcement_id], "updated_at": now}
    )


_RISK: dict[str | None, RiskColour] = {
    None: "blue",
    "info": "yellow",
    "warning": "orange",
    "critical": "red",
}


def site_risk(active: Iterable[Alarm]) -> RiskColour:
    """Blue with no active alarm, else yellow/orange/red by the highest severity."""
    worst: str | None = None
    for alarm in active:
        if alarm.state in ACTIVE_STATES:
            worst = alarm.severity if worst is None else _max_severity(worst, alarm.severity)
    return _RISK[worst]
