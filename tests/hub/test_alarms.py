"""Alarm rules (PROTOCOL 5) as pure functions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub import alarms
from hub.errors import AlarmTransitionError
from riverguard.wire.models import Alarm, Event

T0 = datetime(2026, 7, 27, 21, 21, 5, tzinfo=UTC)


def _event(seq: int, **overrides: Any) -> Event:
    values: dict[str, Any] = {
        "id": f"db-fence-01:{seq}",
        "site": "danshui-bridge",
        "device": "db-fence-01",
        "kind": "fence.breach",
        "zone": "z1",
        "ts": T0,
        "edge_ts": T0,
        "severity": "warning",
    }
    values.update(overrides)
    return Event.model_validate(values)


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
