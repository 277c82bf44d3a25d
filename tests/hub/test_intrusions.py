"""Intrusions (PROTOCOL 7.36): when a trigger joining an alarm is a new entry into the
zone and re-raises it, and when it is the same person seen again."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hub import alarms, intrusions
from riverguard.wire.models import Alarm, Event
from tests.hub.conftest import one_zone_site, parsed_event

T0 = datetime(2026, 7, 27, 21, 21, 5, tzinfo=UTC)
KEY = ("danshui-bridge", "z1")
SITE = one_zone_site(
    escalation=[
        {"after_s": 30, "level_name": "grid officer"},
        {"after_s": 60, "level_name": "street"},
    ],
    intrusion_gap_s=60,
)
SITES = {"danshui-bridge": SITE}
_seq = itertools.count(1)


def _at(seconds: float, **fields: Any) -> Event:
    """A trigger (or ``kind``) of device time T0 + ``seconds``."""
    return parsed_event(next(_seq), T0 + timedelta(seconds=seconds), **fields)


def _camera(seconds: float, **fields: Any) -> Event:
    return _at(seconds, device="db-cam-01", kind="camera.water_entry", **fields)


def _apply(alarm: Alarm | None, events: list[Event], now_s: float) -> alarms.Outcome:
    active = {KEY: alarm} if alarm is not None else {}
    now = T0 + timedelta(seconds=now_s)
    return alarms.apply_events(active, events, now, lambda: "alm-1", SITES)


def _opened() -> Alarm:
    return _apply(None, [_at(0)], 0).changed["alm-1"]


def _each(alarm: Alarm, events: list[Event]) -> tuple[Alarm, list[tuple[Alarm, Alarm]]]:
    """The events joining one by one, each as it happens (hub time = its time)."""
    raised = []
    for event in events:
        seconds = (event.ts - T0).total_seconds()
        outcome = _apply(alarm, [event], seconds)
        alarm = outcome.changed.get(alarm.id, alarm)
        raised += outcome.reraised
    return alarm, raised


def test_an_alarm_opens_with_its_first_intrusion() -> None:
    alarm = _opened()
    assert 1 == alarm.intrusion_count
    [first] = alarm.intrusions
    assert ("opened", "db-fence-01", 1, T0, T0) == (
        first.cause,
        first.device,
        first.count,
        first.raised_at,
        first.first_ts,
    )


def test_a_person_detected_again_and_again_is_one_intrusion_whatever_the_device() -> None:
    """A swimmer seen every 5 s for three minutes, by the fence and the camera."""
    acked = alarms.acknowledge(_opened(), "officer-li", T0)
    triggers = [_camera(s) if s % 10 else _at(s) for s in range(5, 185, 5)]
    alarm, raised = _each(acked, triggers)
    assert [] == raised
    assert ("acknowledged", 1, 37) == (
        alarm.state,
        alarm.intrusion_count,
        alarm.intrusions[-1].count,
    )
    assert T0 + timedelta(seconds=180) == alarm.intrusions[-1].last_ts


def test_a_trigger_after_a_quiet_gap_reraises_an_acknowledged_alarm() -> None:
    opened = _opened()
    climbed = alarms.escalate(opened, SITE, T0 + timedelta(seconds=30), "unacknowledged")
    acked = alarms.acknowledge(climbed, "officer-li", T0 + timedelta(seconds=31))
    outcome = _apply(acked, [_camera(91)], 91)
    alarm = outcome.changed["alm-1"]
    [(before, after)] = outcome.reraised
    assert (alarm, "acknowledged", 1) == (after, before.state, before.intrusion_count)
    # Open again, for someone to take; its age and level stay, its timer runs again.
    assert ("open", None, T0, 1) == (
        alarm.state,
        alarm.acked_by,
        alarm.opened_at,
        alarm.escalation_level,
    )
    assert T0 + timedelta(seconds=91 + 60) == alarm.escalate_at
    new = alarm.intrusions[-1]
    assert ("quiet_gap", "db-cam-01", 1, T0 + timedelta(seconds=91)) == (
        new.cause,
        new.device,
        new.count,
        new.raised_at,
    )
    assert 2 == alarm.intrusion_count
    [audit] = outcome.audit
    assert ("intrusion", "system", "new intrusion after a quiet gap") == (
        audit.action,
        audit.username,
        audit.detail,
    )
    assert "acknowledged" == (audit.before or {})["state"]


def test_a_trigger_just_inside_the_gap_joins() -> None:
    alarm, raised = _each(_opened(), [_at(59.9)])
    assert ([], 1, 2) == (raised, alarm.intrusion_count, alarm.intrusions[0].count)


def test_a_trigger_after_the_fence_reported_clear_reraises_an_open_alarm() -> None:
    alarm, raised = _each(_opened(), [_at(5), _at(20, kind="fence.clear"), _at(25)])
    assert 1 == len(raised)
    assert ("open", 2) == (alarm.state, alarm.intrusion_count)
    gone, new = alarm.intrusions
    assert (T0 + timedelta(seconds=20), 2) == (gone.gone_at, gone.count)
    assert ("after_gone", None) == (new.cause, new.gone_at)
    assert "new intrusion after the zone was reported clear" == (
        alarms.Outcome(reraised=raised).audit[0].detail
    )


def test_a_backlog_arriving_at_once_reraises_the_alarm_once_at_most() -> None:
    """Events an edge kept while the hub was out of reach come in one batch: the
    first new intrusion in it re-raises, the rest join it (hub time cannot tell)."""
    events = [_at(5), _at(20, kind="fence.clear"), _camera(25), _camera(30), _at(100)]
    outcome = _apply(_opened(), events, 100)
    assert 1 == len(outcome.reraised)
    assert [("opened", 2), ("after_gone", 3)] == [
        (i.cause, i.count) for i in outcome.changed["alm-1"].intrusions
    ]


def test_a_fence_chattering_clear_and_breach_reraises_once_per_rearm_time() -> None:
    flaps = [
        _at(s / 2, kind="fence.clear") if s % 2 else _at(s / 2) for s in range(30, 30 + 2 * 30)
    ]
    alarm, raised = _each(_opened(), flaps)
    spread = intrusions.REARM_S
    # 30 s of flapping from t=15 s: re-raised at most once per REARM_S.
    assert len(raised) <= 30 / spread + 1
    times = [i.raised_at for i in alarm.intrusions]
    assert all(b - a >= timedelta(seconds=spread) for a, b in itertools.pairwise(times))


def test_a_clear_dated_before_the_latest_trigger_does_not_mark_the_person_gone() -> None:
    alarm, raised = _each(_opened(), [_at(30), _at(29, kind="fence.clear")])
    later = _apply(alarm, [_at(40)], 40)
    assert ([], [], None) == (raised, later.reraised, alarm.intrusions[-1].gone_at)


def test_an_event_dated_in_the_future_cannot_hold_the_zone_busy() -> None:
    """Its time counts as the hub's: after a real quiet gap the next trigger re-raises."""
    alarm = _apply(_opened(), [_at(3600)], 1).changed["alm-1"]
    assert T0 + timedelta(seconds=1) == alarm.intrusions[-1].last_ts
    assert 1 == len(_apply(alarm, [_at(70)], 70).reraised)


def test_an_event_dated_in_the_past_cannot_make_a_gap() -> None:
    alarm, _ = _each(_opened(), [_at(50)])
    outcome = _apply(alarm, [_at(-600)], 55)
    assert [] == outcome.reraised
    assert T0 + timedelta(seconds=50) == outcome.changed["alm-1"].intrusions[-1].last_ts


def test_info_events_never_reraise() -> None:
    alarm, raised = _each(_opened(), [_at(100, severity="info")])
    assert ([], 1, 1) == (raised, alarm.intrusion_count, alarm.intrusions[0].count)


def test_an_alarm_stored_before_intrusions_takes_its_next_trigger_as_its_first() -> None:
    old = _opened().model_copy(update={"intrusions": [], "intrusion_count": 0})
    outcome = _apply(old, [_camera(500)], 500)
    alarm = outcome.changed["alm-1"]
    assert [] == outcome.reraised
    assert (1, "opened", T0) == (
        alarm.intrusion_count,
        alarm.intrusions[0].cause,
        alarm.intrusions[0].raised_at,
    )


def test_an_alarm_keeps_its_newest_intrusions_and_counts_all() -> None:
    alarm = _opened()
    triggers = [_at(100.0 * n) for n in range(1, intrusions.MAX_INTRUSIONS + 5)]
    alarm, raised = _each(alarm, triggers)
    assert intrusions.MAX_INTRUSIONS + 4 == len(raised)
    assert intrusions.MAX_INTRUSIONS + 5 == alarm.intrusion_count
    assert intrusions.MAX_INTRUSIONS == len(alarm.intrusions)
    assert triggers[-1].id == alarm.intrusions[-1].event_id


def test_a_frigate_track_is_kept_with_its_intrusion() -> None:
    alarm, _ = _each(_opened(), [_camera(100, attrs={"frigate_id": "1690000.1-abc"})])
    assert ("db-cam-01", "1690000.1-abc") == (
        alarm.intrusions[-1].device,
        alarm.intrusions[-1].track,
    )
