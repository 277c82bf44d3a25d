"""Intrusions (PROTOCOL 7.36): which triggers of an alarm are one entry into the zone.

An alarm of a site and zone gathers every trigger there while it is active, so
a second person in the water would only join the first one's alarm. The
triggers are therefore grouped into intrusions:

- A trigger joins the alarm's latest intrusion while they come close together:
  a person standing in the water is detected again and again (a camera every
  few seconds, a fence and a camera one after the other), and that is one
  intrusion however many devices see it.
- A trigger starts a new intrusion, which re-raises the alarm, when the zone
  was quiet for the site's ``intrusion_gap_s`` before it (``quiet_gap``), or
  when a fence of the zone reported ``clear`` after the latest trigger
  (``after_gone``: the person was reported gone, so whoever comes now is
  someone new or someone back).
- Times are the events' own, never later than the hub's clock: an event dated
  in the future cannot hold the zone busy, and one dated in the past cannot
  make a gap (it joins). A chattering fence cannot re-raise more than once per
  ``REARM_S``.

A re-raised alarm that was acknowledged is open again, with its age and its
escalation level as they were; its escalation timer runs again from that level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from riverguard.config import Site
from riverguard.wire.models import Alarm, Event, Intrusion, IntrusionCause

# An alarm keeps its newest intrusions only (pushed with every change of the alarm).
MAX_INTRUSIONS = 20
# The least time between two re-raises of one alarm: a fence whose wire swings
# reports clear and breach within seconds for one climb.
REARM_S = 10.0
_REARM = timedelta(seconds=REARM_S)
DEFAULT_GAP_S = 60.0


def _when(event: Event, now: datetime) -> datetime:
    return min(event.ts, now)


def _track(event: Event) -> str | None:
    track = event.attrs.get("frigate_id")
    return track if isinstance(track, str) else None


def first_intrusion(event: Event, now: datetime) -> Intrusion:
    when = _when(event, now)
    return Intrusion(
        raised_at=now,
        first_ts=when,
        last_ts=when,
        device=event.device,
        track=_track(event),
        event_id=event.id,
    )


@dataclass(frozen=True, slots=True)
class Tracked:
    """The alarm's intrusions after some events joined, and the newest one they raised."""

    intrusions: list[Intrusion]
    count: int
    raised: Intrusion | None


@dataclass(slots=True)
class _Latest:
    """The latest intrusion while events fold into it: a model copy per event would
    cost more than the rest of a join."""

    intrusion: Intrusion
    count: int
    last_ts: datetime
    gone_at: datetime | None

    @classmethod
    def of(cls, intrusion: Intrusion) -> _Latest:
        return cls(intrusion, intrusion.count, intrusion.last_ts, intrusion.gone_at)

    def cause(self, when: datetime, gap: timedelta, now: datetime) -> IntrusionCause | None:
        """Why a trigger at ``when`` starts a new intrusion after this one, or None."""
        if now - self.intrusion.raised_at < _REARM:
            return None
        if self.gone_at is not None:
            return "after_gone"
        return "quiet_gap" if when - self.last_ts >= gap else None

    def model(self) -> Intrusion:
        update = {"count": self.count, "last_ts": self.last_ts, "gone_at": self.gone_at}
        return self.intrusion.model_copy(update=update)


def track(alarm: Alarm, events: Sequence[Event], now: datetime, site: Site | None) -> Tracked:
    """Fold ``events`` (joining ``alarm``, in arrival order) into its intrusions."""
    gap = timedelta(seconds=site.intrusion_gap_s if site is not None else DEFAULT_GAP_S)
    done = list(alarm.intrusions)
    count = alarm.intrusion_count
    raised = False
    latest = _Latest.of(done.pop()) if done else None
    for event in events:
        when = _when(event, now)
        if event.kind == "fence.clear":
            if latest is not None and latest.gone_at is None and when >= latest.last_ts:
                latest.gone_at = when
            continue
        if event.severity == "info":
            continue
        if latest is None:
            # An alarm stored before intrusions were kept: its triggers so far are one.
            first = first_intrusion(event, now).model_copy(update={"raised_at": alarm.opened_at})
            latest, count = _Latest.of(first), count + 1
            continue
        cause = latest.cause(when, gap, now)
        if cause is None:
            latest.count += 1
            latest.last_ts = max(latest.last_ts, when)
            latest.gone_at = None
            continue
        done.append(latest.model())
        fresh = first_intrusion(event, now).model_copy(update={"cause": cause})
        latest, count, raised = _Latest.of(fresh), count + 1, True
    if latest is not None:
        done.append(latest.model())
    return Tracked(done[-MAX_INTRUSIONS:], count, done[-1] if raised else None)


def reraise(alarm: Alarm, tracked: Tracked, escalate_at: datetime | None) -> Alarm:
    """The alarm re-raised by a new intrusion: open again (an acknowledgement was for
    the person before), its suggestion withdrawn; its age and level unchanged."""
    update: dict[str, object] = {
        "intrusions": tracked.intrusions,
        "intrusion_count": tracked.count,
        "suggestion": None,
    }
    if alarm.state == "acknowledged":
        update.update(state="open", acked_by=None, acked_at=None, escalate_at=escalate_at)
    return alarm.model_copy(update=update)
