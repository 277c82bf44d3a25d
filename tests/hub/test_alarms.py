"""Alarm rules (PROTOCOL 5) as pure functions."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub import alarms
from hub.errors import AlarmTransitionError
from riverguard.wire.models import Alarm, Event
from tests.hub.conftest import one_zone_site, parsed_event

T0 = datetime(2026, 7, 27, 21, 21, 5, tzinfo=UTC)


def _event(seq: int, **fields: Any) -> Event:
    return parsed_event(seq, T0, **fields)


def _ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"alm-{next(counter)}"


def test_first_event_opens_an_alarm_for_its_site_and_zone() -> None:
    outcome = alarms.apply_events({}, [_event(1)], T0, _ids())
    alarm = outcome.changed["alm-1"]
    assert ("danshui-bridge", "z1", "open", "warning") == (
        alarm.site,
        alarm.zone,
        alarm.state,
        alarm.severity,
    )
    assert {"db-fence-01:1": "alm-1"} == outcome.alarm_of
    assert (1, ["db-fence-01:1"], "db-fence-01:1") == (
        alarm.event_count,
        alarm.event_ids,
        alarm.last_event_id,
    )


def test_events_of_the_same_zone_join_and_raise_severity_to_the_highest() -> None:
    events = [_event(1), _event(2, severity="critical"), _event(3, severity="warning")]
    outcome = alarms.apply_events({}, events, T0, _ids())
    assert ["alm-1"] == list(outcome.changed)
    alarm = outcome.changed["alm-1"]
    assert ("critical", 3, "db-fence-01:3") == (
        alarm.severity,
        alarm.event_count,
        alarm.last_event_id,
    )


def test_other_zone_or_site_opens_its_own_alarm() -> None:
    events = [_event(1), _event(2, zone="z2"), _event(3, site="xiyong-wharf")]
    outcome = alarms.apply_events({}, events, T0, _ids())
    assert 3 == len(outcome.changed)


def test_event_joins_an_acknowledged_alarm() -> None:
    first = alarms.apply_events({}, [_event(1)], T0, _ids()).changed["alm-1"]
    acked = alarms.acknowledge(first, "officer-li", T0)
    outcome = alarms.apply_events({("danshui-bridge", "z1"): acked}, [_event(2)], T0, _ids())
    assert "acknowledged" == outcome.changed["alm-1"].state
    assert 2 == outcome.changed["alm-1"].event_count


@pytest.mark.parametrize(
    "event",
    [
        _event(1, kind="fence.clear", severity="info"),
        _event(2, kind="fence.clear"),
        _event(3, severity="info"),
    ],
)
def test_clear_and_info_events_never_open_an_alarm(event: Event) -> None:
    outcome = alarms.apply_events({}, [event], T0, _ids())
    assert {} == outcome.changed
    assert {} == outcome.alarm_of


def test_clear_event_joins_an_open_alarm_without_lowering_severity() -> None:
    opened = alarms.apply_events({}, [_event(1)], T0, _ids()).changed["alm-1"]
    clear = _event(2, kind="fence.clear", severity="info")
    outcome = alarms.apply_events({("danshui-bridge", "z1"): opened}, [clear], T0, _ids())
    assert "warning" == outcome.changed["alm-1"].severity
    assert "alm-1" == outcome.alarm_of[clear.id]


def test_alarm_keeps_only_the_newest_event_ids_but_counts_all() -> None:
    events = [_event(i) for i in range(alarms.MAX_EVENT_IDS + 10)]
    alarm = alarms.apply_events({}, events, T0, _ids()).changed["alm-1"]
    assert alarms.MAX_EVENT_IDS + 10 == alarm.event_count
    assert alarms.MAX_EVENT_IDS == len(alarm.event_ids)
    assert events[-1].id == alarm.event_ids[-1]


def _open() -> Alarm:
    return alarms.apply_events({}, [_event(1)], T0, _ids()).changed["alm-1"]


def test_acknowledge_then_resolve_records_who_when_and_outcome() -> None:
    later = T0 + timedelta(seconds=30)
    acked = alarms.acknowledge(_open(), "officer-li", later)
    resolved = alarms.resolve(acked, "officer-li", "persuaded_away", "left", later)
    assert ("acknowledged", "officer-li", later) == (acked.state, acked.acked_by, acked.acked_at)
    assert ("resolved", "persuaded_away", "left", later) == (
        resolved.state,
        resolved.outcome,
        resolved.note,
        resolved.resolved_at,
    )


def test_open_alarm_may_be_resolved_directly() -> None:
    assert "resolved" == alarms.resolve(_open(), "admin", "false_alarm", None, T0).state


def test_wrong_transitions_are_refused() -> None:
    acked = alarms.acknowledge(_open(), "officer-li", T0)
    resolved = alarms.resolve(acked, "officer-li", "other", None, T0)
    with pytest.raises(AlarmTransitionError):
        alarms.acknowledge(acked, "officer-li", T0)
    with pytest.raises(AlarmTransitionError):
        alarms.acknowledge(resolved, "officer-li", T0)
    with pytest.raises(AlarmTransitionError):
        alarms.resolve(resolved, "officer-li", "other", None, T0)


def test_site_risk_follows_the_worst_active_alarm() -> None:
    warning = _open()
    critical = warning.model_copy(update={"id": "alm-2", "severity": "critical"})
    resolved = alarms.resolve(critical, "admin", "other", None, T0)
    assert "blue" == alarms.site_risk([])
    assert "orange" == alarms.site_risk([warning])
    assert "red" == alarms.site_risk([warning, critical])
    assert "orange" == alarms.site_risk([warning, resolved])


# --- severity raising, escalation and the deterrence loop -----------------------

SITE_DB = one_zone_site(
    escalation=[
        {"after_s": 30, "level_name": "grid officer"},
        {"after_s": 60, "level_name": "street"},
    ],
    repeat_count=3,
    repeat_window_s=60,
    clear_window_s=90,
)
SITES = {"danshui-bridge": SITE_DB}


def test_fence_and_camera_in_one_alarm_make_it_critical() -> None:
    events = [_event(1), _event(2, device="db-cam-01", kind="camera.intrusion")]
    alarm = alarms.apply_events({}, events, T0, _ids(), SITES).changed["alm-1"]
    assert ("critical", ["camera", "fence"]) == (alarm.severity, alarm.sources)


def test_repeats_within_the_window_raise_severity_one_level_but_spread_ones_do_not() -> None:
    quick = [_event(i, ts=T0 + timedelta(seconds=10 * i)) for i in range(3)]
    spread = [_event(i, ts=T0 + timedelta(seconds=61 * i)) for i in range(3)]
    assert "critical" == alarms.apply_events({}, quick, T0, _ids(), SITES).changed["alm-1"].severity
    assert "warning" == alarms.apply_events({}, spread, T0, _ids(), SITES).changed["alm-1"].severity
    # The count carries from one batch to the next.
    alarm = alarms.apply_events({}, quick[:1], T0, _ids(), SITES).changed["alm-1"]
    for event in quick[1:]:
        key = (alarm.site, alarm.zone)
        alarm = alarms.apply_events({key: alarm}, [event], T0, _ids(), SITES).changed["alm-1"]
    assert ("critical", 3) == (alarm.severity, alarm.repeat_count)


def test_an_open_alarm_climbs_the_site_policy_and_stops_at_the_top() -> None:
    alarm = alarms.apply_events({}, [_event(1)], T0, _ids(), SITES).changed["alm-1"]
    assert (0, "duty officer", T0 + timedelta(seconds=30)) == (
        alarm.escalation_level,
        alarm.escalation_name,
        alarm.escalate_at,
    )
    assert not alarms.escalation_due(alarm, T0 + timedelta(seconds=29))
    t1 = T0 + timedelta(seconds=30)
    first = alarms.escalate(alarm, SITE_DB, t1, "unacknowledged")
    assert (1, "grid officer", t1 + timedelta(seconds=60)) == (
        first.escalation_level,
        first.escalation_name,
        first.escalate_at,
    )
    top = alarms.escalate(first, SITE_DB, t1 + timedelta(seconds=60), "unacknowledged")
    assert (2, "street", None) == (top.escalation_level, top.escalation_name, top.escalate_at)


def test_acknowledging_stops_the_climb() -> None:
    alarm = alarms.apply_events({}, [_event(1)], T0, _ids(), SITES).changed["alm-1"]
    acked = alarms.acknowledge(alarm, "officer-li", T0)
    assert None is acked.escalate_at
    assert not alarms.escalation_due(acked, T0 + timedelta(days=1))


def test_a_trigger_after_an_announcement_climbs_and_proposes_the_next_step() -> None:
    alarm = alarms.apply_events({}, [_event(1)], T0, _ids(), SITES).changed["alm-1"]
    announced = alarms.add_announcement(alarm, "ann-1", T0, SITE_DB.clear_window_s)
    outcome = alarms.apply_events(
        {("danshui-bridge", "z1"): announced}, [_event(2)], T0, _ids(), SITES
    )
    after = outcome.changed["alm-1"]
    assert (1, "repeat", None) == (after.escalation_level, after.next_step, after.clear_at)
    assert [(announced, after)] == outcome.escalated
    again = alarms.add_announcement(after, "ann-2", T0, SITE_DB.clear_window_s)
    later = alarms.apply_events({("danshui-bridge", "z1"): again}, [_event(3)], T0, _ids(), SITES)
    assert "stronger_clip" == later.changed["alm-1"].next_step


def test_each_climb_says_why_and_only_an_officers_names_who() -> None:
    """The reason is that of the latest climb; a level-0 alarm has none."""
    alarm = alarms.apply_events({}, [_event(1)], T0, _ids(), SITES).changed["alm-1"]
    by_hand = alarms.escalate(alarm, SITE_DB, T0, "by_officer", "officer-li")
    acked = alarms.acknowledge(by_hand, "officer-li", T0)
    announced = alarms.add_announcement(acked, "ann-1", T0, SITE_DB.clear_window_s)
    key = ("danshui-bridge", "z1")
    triggered = alarms.apply_events({key: announced}, [_event(2)], T0, _ids(), SITES)
    after = triggered.changed["alm-1"]
    assert [
        (0, None, None),
        (1, "by_officer", "officer-li"),
        (2, "trigger_after_announcement", None),
    ] == [
        (a.escalation_level, a.escalation_reason, a.escalated_by) for a in (alarm, by_hand, after)
    ]


def test_a_quiet_clear_window_proposes_persuaded_away_after_the_fence_clears() -> None:
    alarm = alarms.apply_events({}, [_event(1)], T0, _ids(), SITES).changed["alm-1"]
    announced = alarms.add_announcement(alarm, "ann-1", T0, SITE_DB.clear_window_s)
    later = T0 + timedelta(seconds=90)
    assert not alarms.clear_due(announced, later - timedelta(seconds=1), zone_has_fence=False)
    assert alarms.clear_due(announced, later, zone_has_fence=False)
    # A fenced zone also waits for the fence's clear.
    assert not alarms.clear_due(announced, later, zone_has_fence=True)
    key = ("danshui-bridge", "z1")
    cleared = alarms.apply_events(
        {key: announced}, [_event(2, kind="fence.clear", severity="info")], T0, _ids(), SITES
    ).changed["alm-1"]
    assert alarms.clear_due(cleared, later, zone_has_fence=True)
    assert "persuaded_away" == alarms.suggest_persuaded(cleared, later).suggestion


@pytest.mark.parametrize("seed", range(20))
def test_a_batch_does_to_alarms_what_its_events_do_one_by_one(seed: int) -> None:
    """Events of one zone in a batch are folded into one copy; the result is the same."""
    rng = random.Random(seed)
    events = [
        _event(
            seq,
            zone=rng.choice(["z1", "z2"]),
            kind=rng.choice(["fence.breach", "fence.breach", "fence.clear", "camera.intrusion"]),
            severity=rng.choice(["info", "warning", "warning", "critical"]),
            ts=T0 + timedelta(seconds=rng.randrange(0, 200, 7)),
        )
        for seq in range(rng.randrange(1, 60))
    ]
    first = alarms.apply_events({}, [_event(0)], T0, _ids(), SITES).changed["alm-1"]
    # Half the runs start inside a clear window: the first trigger climbs, the rest join.
    start = (
        alarms.add_announcement(first, "ann-1", T0, SITE_DB.clear_window_s) if seed % 2 else first
    )
    now = T0 + timedelta(seconds=5)

    one_by_one: dict[tuple[str, str], Alarm] = {("danshui-bridge", "z1"): start}
    escalated: list[tuple[Alarm, Alarm]] = []
    alarm_of: dict[str, str] = {}
    new_id = _ids()
    new_id()  # alm-1 is the starting alarm's
    for event in events:
        outcome = alarms.apply_events(one_by_one, [event], now, new_id, SITES)
        escalated += outcome.escalated
        alarm_of |= outcome.alarm_of
        for alarm in outcome.changed.values():
            one_by_one[(alarm.site, alarm.zone)] = alarm

    batch_ids = _ids()
    batch_ids()
    together = alarms.apply_events({("danshui-bridge", "z1"): start}, events, now, batch_ids, SITES)
    final = {(a.site, a.zone): a for a in together.changed.values()}
    touched = {k: a for k, a in one_by_one.items() if a is not start}
    assert touched == final
    # The climb, if any, is recorded with the alarm as it stood before and after it.
    assert escalated == together.escalated
    assert alarm_of == together.alarm_of
