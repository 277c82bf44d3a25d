"""Alarm rules (PROTOCOL 5), as pure functions over frozen ``Alarm`` values.

- Events of one site and zone join the open or acknowledged alarm of that
  site and zone; otherwise they open a new one.
- ``fence.clear`` and ``info`` events never open an alarm; they only join one.
- An alarm's severity is the highest of its events', raised to critical when
  a fence and a camera both triggered it (corroboration) and one level when
  ``repeat_count`` triggers fall within ``repeat_window_s`` (repeats).
- An open alarm climbs the site's escalation levels while nobody acknowledges
  it (``escalate_at``); acknowledging or resolving stops the climb.
- Deterrence loop: an announcement starts a clear window (``clear_at``); a new
  trigger in the zone afterwards climbs a level and proposes the next step;
  a window that passes quietly (and a fence ``clear`` where the zone has a
  fence) proposes ``persuaded_away``.
- A trigger that is a new intrusion (``hub/intrusions.py``: after a quiet gap,
  or after the person was reported gone) re-raises the alarm: an acknowledged
  one is open again.
- ``open -> acknowledged -> resolved``, ``open -> resolved`` and, by a new
  intrusion only, ``acknowledged -> open``; anything else is an
  ``AlarmTransitionError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hub import ids, intrusions
from hub.errors import AlarmTransitionError
from hub.store.rows import AuditEntry
from riverguard.config import DEFAULT_ESCALATION, EscalationLevel, Site
from riverguard.wire.models import (
    SEVERITY_RANK,
    Alarm,
    EscalationReason,
    Event,
    NextStep,
    NoteCode,
    RiskColour,
)

# An alarm keeps the ids of its newest events only; ``event_count`` has the total.
# A flood on one zone must not grow the alarm object pushed on every change.
MAX_EVENT_IDS = 200

ACTIVE_STATES = ("open", "acknowledged")
# Who the hub's own alarm changes (escalations, suggestions) are audited as.
SYSTEM = "system"
# The audit detail of an escalation by a trigger after an announcement.
TRIGGERED = "trigger after an announcement"
# The audit details of a re-raise, by the new intrusion's cause.
RERAISED = {
    "quiet_gap": "new intrusion after a quiet gap",
    "after_gone": "new intrusion after the zone was reported clear",
}

ZoneKey = tuple[str, str]


def opens_alarm(event: Event) -> bool:
    return event.kind != "fence.clear" and event.severity != "info"


def _max_severity(a: str, b: str) -> str:
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


_RAISED = {"info": "warning", "warning": "critical", "critical": "critical"}
NEXT_STEPS: tuple[NextStep, ...] = ("repeat", "stronger_clip", "live_talk", "send_patrol")
# Corroborated: two kinds of sensor saw a trigger in the zone.
_CORROBORATING = frozenset({"fence", "camera"})


def _levels(site: Site | None) -> Sequence[EscalationLevel]:
    return site.escalation if site is not None else DEFAULT_ESCALATION


def _escalate_at(site: Site | None, level: int, since: datetime) -> datetime | None:
    """When level ``level + 1`` is due, counting from ``since``; None at the top."""
    levels = _levels(site)
    return since + timedelta(seconds=levels[level].after_s) if level < len(levels) else None


def _level_name(site: Site | None, level: int) -> str:
    return "duty officer" if level == 0 else _levels(site)[level - 1].level_name


def _trigger(
    sources: list[str],
    severity: str,
    window_start: datetime | None,
    repeats: int,
    *,
    event: Event,
    site: Site | None,
) -> tuple[list[str], str, datetime, int]:
    """A trigger joining: sources, severity (raised by corroboration and repeats) and
    repeat window after it."""
    sources = sorted({*sources, event.device_type})
    severity = _max_severity(severity, event.severity)
    if _CORROBORATING <= set(sources):
        severity = "critical"
    window_s = site.repeat_window_s if site is not None else 60.0
    needed = site.repeat_count if site is not None else 3
    if window_start is None or (event.ts - window_start).total_seconds() > window_s:
        window_start, repeats = event.ts, 1
    else:
        repeats += 1
    if repeats == needed:
        severity = _RAISED[severity]
    return sources, severity, window_start, repeats


def open_alarm(event: Event, now: datetime, alarm_id: str, site: Site | None = None) -> Alarm:
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
        sources=[event.device_type],
        repeat_window_start=event.ts,
        repeat_count=1,
        escalate_at=_escalate_at(site, 0, now),
        intrusions=[intrusions.first_intrusion(event, now)],
        intrusion_count=1,
    )


def _join_in_clear_window(alarm: Alarm, event: Event, now: datetime, site: Site | None) -> Alarm:
    """``event`` joins an alarm whose clear window (after an announcement) is open: a
    trigger climbs a level and closes the window; a fence ``clear`` is noted."""
    update: dict[str, object] = {
        "severity": _max_severity(alarm.severity, event.severity),
        "updated_at": now,
        "event_count": alarm.event_count + 1,
        "event_ids": [*alarm.event_ids, event.id][-MAX_EVENT_IDS:],
        "last_event_id": event.id,
    }
    if opens_alarm(event):
        sources, severity, start, repeats = _trigger(
            alarm.sources,
            alarm.severity,
            alarm.repeat_window_start,
            alarm.repeat_count,
            event=event,
            site=site,
        )
        update.update(
            sources=sources, severity=severity, repeat_window_start=start, repeat_count=repeats
        )
        # A trigger after an announcement: it did not work. Climb and propose more.
        update.update(_climb(alarm, site, now, "trigger_after_announcement"))
        update["next_step"] = next_step(alarm.next_step)
        update["suggestion"] = None
        update["clear_at"] = None
    elif event.kind == "fence.clear":
        update["fence_clear"] = True
    return alarm.model_copy(update=update)


def _join_quietly(alarm: Alarm, events: Sequence[Event], now: datetime, site: Site | None) -> Alarm:
    """``events`` join, in order, an alarm with no clear window open, in one model copy.

    A burst on a zone joins dozens of events per ingest batch, and a copy per event
    (~13 us with 200 event ids) was a tenth of the hub."""
    severity: str = alarm.severity
    sources, start, repeats = alarm.sources, alarm.repeat_window_start, alarm.repeat_count
    for event in events:
        if opens_alarm(event):
            sources, severity, start, repeats = _trigger(
                sources, severity, start, repeats, event=event, site=site
            )
        else:
            severity = _max_severity(severity, event.severity)
    return alarm.model_copy(
        update={
            "severity": severity,
            "updated_at": now,
            "event_count": alarm.event_count + len(events),
            "event_ids": [*alarm.event_ids, *(event.id for event in events)][-MAX_EVENT_IDS:],
            "last_event_id": events[-1].id,
            "sources": sources,
            "repeat_window_start": start,
            "repeat_count": repeats,
        }
    )


def next_step(current: NextStep | None) -> NextStep:
    if current is None:
        return NEXT_STEPS[0]
    index = NEXT_STEPS.index(current)
    return NEXT_STEPS[min(index + 1, len(NEXT_STEPS) - 1)]


def _climb(
    alarm: Alarm,
    site: Site | None,
    now: datetime,
    reason: EscalationReason,
    by: str | None = None,
) -> dict[str, object]:
    level = min(alarm.escalation_level + 1, len(_levels(site)))
    return {
        "escalation_level": level,
        "escalation_name": _level_name(site, level),
        "escalate_at": _escalate_at(site, level, now) if alarm.state == "open" else None,
        "escalation_reason": reason,
        "escalated_by": by,
        "updated_at": now,
    }


def escalate(
    alarm: Alarm,
    site: Site | None,
    now: datetime,
    reason: EscalationReason,
    by: str | None = None,
) -> Alarm:
    """One level up the grid path, for ``reason``; ``by``: the officer who called the
    level (``by_officer``)."""
    return alarm.model_copy(update=_climb(alarm, site, now, reason, by))


def escalation_due(alarm: Alarm, now: datetime) -> bool:
    return alarm.state == "open" and alarm.escalate_at is not None and alarm.escalate_at <= now


def clear_blocked(alarm: Alarm, zone_has_fence: bool) -> bool:
    """The clear window passed but the zone's fence has not reported ``clear`` yet."""
    return zone_has_fence and not alarm.fence_clear


def clear_due(alarm: Alarm, now: datetime, zone_has_fence: bool) -> bool:
    return (
        alarm.state in ACTIVE_STATES
        and alarm.clear_at is not None
        and alarm.suggestion is None
        and alarm.clear_at <= now
        and not clear_blocked(alarm, zone_has_fence)
    )


def suggest_persuaded(alarm: Alarm, now: datetime) -> Alarm:
    return alarm.model_copy(
        update={"suggestion": "persuaded_away", "next_step": None, "updated_at": now}
    )


@dataclass
class Outcome:
    """What a batch of events did: changed alarms (newest value) and each event's alarm.

    ``escalated`` holds (before, after) of alarms a trigger after an announcement climbed,
    ``reraised`` (before, after) of alarms a new intrusion re-raised.
    """

    changed: dict[str, Alarm] = field(default_factory=dict)
    alarm_of: dict[str, str] = field(default_factory=dict)
    escalated: list[tuple[Alarm, Alarm]] = field(default_factory=list)
    reraised: list[tuple[Alarm, Alarm]] = field(default_factory=list)

    @property
    def audit(self) -> list[AuditEntry]:
        """The escalations' and re-raises' audit records, stored with the batch ahead of
        the alarms."""
        entries = [
            alarm_audit("escalate", SYSTEM, before, after, TRIGGERED)
            for before, after in self.escalated
        ]
        for before, after in self.reraised:
            cause = after.intrusions[-1].cause
            entries.append(alarm_audit("intrusion", SYSTEM, before, after, RERAISED[cause]))
        return entries


def alarm_audit(
    action: str, username: str, before: Alarm | None, after: Alarm, detail: str = ""
) -> AuditEntry:
    """The audit record of an alarm's change from ``before`` (None: opened) to ``after``."""
    return AuditEntry(
        ts=after.updated_at,
        username=username,
        action=action,
        alarm_id=after.id,
        target=after.id,
        before=before.model_dump(mode="json") if before is not None else None,
        after=after.model_dump(mode="json"),
        detail=detail,
    )


def apply_events(
    active: Mapping[ZoneKey, Alarm],
    events: Sequence[Event],
    now: datetime,
    new_id: Callable[[], str] = ids.alarm_id,
    sites: Mapping[str, Site] | None = None,
) -> Outcome:
    """Join or open alarms for ``events`` (all new, in arrival order)."""
    outcome = Outcome()
    by_zone: dict[ZoneKey, list[Event]] = {}
    for event in events:
        by_zone.setdefault((event.site, event.zone), []).append(event)
    for key, zone_events in by_zone.items():
        site = sites.get(key[0]) if sites is not None else None
        current = active.get(key)
        quiet: list[Event] = []  # joining once the zone's clear window is closed
        for event in zone_events:
            if current is None:
                if not opens_alarm(event):
                    continue
                current = open_alarm(event, now, new_id(), site)
            elif current.clear_at is None:
                quiet.append(event)
            else:
                before = current
                current = _join_in_clear_window(current, event, now, site)
                current = _track_intrusions(current, [event], now, site, outcome)
                if current.escalation_level != before.escalation_level:
                    outcome.escalated.append((before, current))
            outcome.alarm_of[event.id] = current.id
        if quiet and current is not None:
            current = _join_quietly(current, quiet, now, site)
            current = _track_intrusions(current, quiet, now, site, outcome)
        if current is not None and current is not active.get(key):
            outcome.changed[current.id] = current
    return outcome


def _track_intrusions(
    alarm: Alarm, joined: Sequence[Event], now: datetime, site: Site | None, outcome: Outcome
) -> Alarm:
    """The alarm with ``joined`` folded into its intrusions, re-raised by a new one."""
    tracked = intrusions.track(alarm, joined, now, site)
    if tracked.raised is None:
        return alarm.model_copy(
            update={"intrusions": tracked.intrusions, "intrusion_count": tracked.count}
        )
    after = intrusions.reraise(alarm, tracked, _escalate_at(site, alarm.escalation_level, now))
    outcome.reraised.append((alarm, after))
    return after


def acknowledge(alarm: Alarm, username: str, now: datetime) -> Alarm:
    if alarm.state != "open":
        raise AlarmTransitionError(f"alarm {alarm.id} is {alarm.state}, not open")
    return alarm.model_copy(
        update={
            "state": "acknowledged",
            "acked_by": username,
            "acked_at": now,
            "updated_at": now,
            "escalate_at": None,
        }
    )


def resolve(
    alarm: Alarm,
    username: str,
    outcome: str,
    note: str | None,
    now: datetime,
    *,
    note_code: NoteCode | None = None,
    note_window_s: float | None = None,
) -> Alarm:
    """``note_code`` and ``note_window_s``: the hub's own note for readers to say in their
    language (PROTOCOL 7.42)."""
    if alarm.state not in ACTIVE_STATES:
        raise AlarmTransitionError(f"alarm {alarm.id} is already {alarm.state}")
    return alarm.model_copy(
        update={
            "state": "resolved",
            "resolved_by": username,
            "resolved_at": now,
            "outcome": outcome,
            "note": note,
            "note_code": note_code,
            "note_window_s": note_window_s,
            "updated_at": now,
            "escalate_at": None,
            "clear_at": None,
        }
    )


def add_announcement(
    alarm: Alarm, announcement_id: str, now: datetime, clear_window_s: float = 120.0
) -> Alarm:
    """Record the announcement and start watching the zone for its clear window."""
    return alarm.model_copy(
        update={
            "announcements": [*alarm.announcements, announcement_id],
            "updated_at": now,
            "clear_at": now + timedelta(seconds=clear_window_s),
            "fence_clear": False,
            "suggestion": None,
        }
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
