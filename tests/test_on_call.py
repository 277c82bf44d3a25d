"""Who is on call: rotas read in the site's time zone, across midnight, the week's
end and daylight-saving changes, checked against a calendar-arithmetic oracle."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from riverguard.config import Config
from riverguard.on_call import on_call
from riverguard.rotas import WEEKDAYS, Rota, Shift

PEOPLE = ("wang", "li", "chen", "zhao")
ZONES = ("Asia/Shanghai", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe")


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


shifts = st.builds(
    lambda responder, days, start, end: Shift(
        responder=responder, days=days, start=_clock(start), end=_clock(end)
    ),
    st.sampled_from(PEOPLE),
    st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True),
    st.integers(0, 24 * 60 - 1),
    st.integers(0, 24 * 60 - 1),
)


def _covered_twice(shift_list: list[Shift]) -> bool:
    """Brute force: count every minute of the week each shift covers."""
    counts: Counter[int] = Counter()
    for shift in shift_list:
        start = int(shift.start[:2]) * 60 + int(shift.start[3:])
        end = int(shift.end[:2]) * 60 + int(shift.end[3:])
        length = (end - start) % 1440 or 1440
        for day in shift.days:
            first = WEEKDAYS.index(day) * 1440 + start
            counts.update((first + m) % (7 * 1440) for m in range(length))
    return any(count > 1 for count in counts.values())


def _oracle(rota: Rota, local: datetime) -> str | None:
    """Calendar arithmetic on naive wall-clock datetimes: a shift that started today
    or yesterday and has not ended yet."""
    wall = local.replace(tzinfo=None, second=0, microsecond=0)
    for shift in rota.shifts:
        start = time.fromisoformat(shift.start)
        end = time.fromisoformat(shift.end)
        for started in (wall.date(), wall.date() - timedelta(days=1)):
            if WEEKDAYS[started.weekday()] not in shift.days:
                continue
            begin = datetime.combine(started, start)
            finish = datetime.combine(started + timedelta(days=end <= start), end)
            if begin <= wall < finish:
                return shift.responder
    return None


@settings(max_examples=150, deadline=None)
@given(st.lists(shifts, min_size=1, max_size=4))
def test_a_rota_is_refused_exactly_when_two_shifts_cover_one_minute(
    shift_list: list[Shift],
) -> None:
    overlapping = _covered_twice(shift_list)
    if overlapping:
        with pytest.raises(ValidationError, match="overlap"):
            Rota(id="team", shifts=shift_list)
    else:
        Rota(id="team", shifts=shift_list)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(shifts, min_size=1, max_size=3).filter(lambda s: not _covered_twice(s)),
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    ),
    st.sampled_from(ZONES),
)
def test_the_responder_on_duty_is_the_one_whose_shift_holds_the_sites_wall_clock(
    shift_list: list[Shift], instant: datetime, zone: str
) -> None:
    rota = Rota(id="team", shifts=shift_list)
    local = instant.astimezone(ZoneInfo(zone))
    assert _oracle(rota, local) == rota.on_duty(local)


def _config(zone: str, shift_list: Sequence[Mapping[str, object]], call: list[str]) -> Config:
    return Config.model_validate(
        {
            "sites": [
                {
                    "id": "s1",
                    "name": "S1",
                    "grid": "city/grid-01",
                    "timezone": zone,
                    "zones": [{"id": "z1", "name": "Z1"}],
                    "escalation": [
                        {"after_s": 60, "level_name": "grid officer", "call": call},
                        {"after_s": 60, "level_name": "village police", "call": ["zhao"]},
                    ],
                }
            ],
            "responders": [
                {"id": name, "name": name, "channels": [{"kind": "apprise", "url": "ntfy://x"}]}
                for name in PEOPLE
            ],
            "rotas": [{"id": "grid-team", "shifts": shift_list}],
        }
    )


WEEKDAYS_ONLY = ["mon", "tue", "wed", "thu", "fri"]
DAY_AND_NIGHT = [
    {"responder": "wang", "days": WEEKDAYS_ONLY, "start": "08:00", "end": "20:00"},
    {"responder": "li", "days": WEEKDAYS_ONLY, "start": "20:00", "end": "08:00"},
]


def _ids(config: Config, level: int, at: datetime) -> list[str]:
    return [responder.id for responder in on_call(config, "s1", level, at)]


def test_a_night_shift_runs_past_midnight_into_the_next_morning() -> None:
    config = _config("Asia/Shanghai", DAY_AND_NIGHT, ["grid-team"])
    shanghai = ZoneInfo("Asia/Shanghai")
    # 2026-12-07 is a Monday.
    assert ["li"] == _ids(config, 1, datetime(2026, 12, 8, 7, 59, tzinfo=shanghai))
    assert ["wang"] == _ids(config, 1, datetime(2026, 12, 8, 8, 0, tzinfo=shanghai))
    assert ["li"] == _ids(config, 1, datetime(2026, 12, 7, 20, 0, tzinfo=shanghai))
    # Friday's night shift ends on Saturday morning; Saturday night is a gap.
    assert ["li"] == _ids(config, 1, datetime(2026, 12, 12, 7, 0, tzinfo=shanghai))
    assert [] == _ids(config, 1, datetime(2026, 12, 12, 21, 0, tzinfo=shanghai))


def test_a_sunday_night_shift_runs_into_monday() -> None:
    shift = {"responder": "chen", "days": ["sun"], "start": "22:00", "end": "06:00"}
    config = _config("Asia/Shanghai", [shift], ["grid-team"])
    shanghai = ZoneInfo("Asia/Shanghai")
    assert ["chen"] == _ids(config, 1, datetime(2026, 12, 7, 5, 59, tzinfo=shanghai))
    assert [] == _ids(config, 1, datetime(2026, 12, 7, 6, 0, tzinfo=shanghai))


def test_the_rota_is_read_in_the_sites_time_zone_instants_in_utc() -> None:
    config = _config("Asia/Shanghai", DAY_AND_NIGHT, ["grid-team"])
    # 00:30 UTC on Monday is 08:30 in Shanghai.
    assert ["wang"] == _ids(config, 1, datetime(2026, 12, 7, 0, 30, tzinfo=UTC))


def test_a_day_shift_starts_at_eight_local_on_both_sides_of_the_spring_change() -> None:
    shift = {"responder": "wang", "days": list(WEEKDAYS), "start": "08:00", "end": "20:00"}
    config = _config("Europe/Berlin", [shift], ["grid-team"])
    # Berlin moves to summer time on Sunday 2026-03-29: 08:00 is 07:00 UTC before, 06:00 after.
    assert ["wang"] == _ids(config, 1, datetime(2026, 3, 28, 7, 0, tzinfo=UTC))
    assert [] == _ids(config, 1, datetime(2026, 3, 28, 6, 59, tzinfo=UTC))
    assert ["wang"] == _ids(config, 1, datetime(2026, 3, 29, 6, 0, tzinfo=UTC))
    assert [] == _ids(config, 1, datetime(2026, 3, 29, 5, 59, tzinfo=UTC))


def test_both_passes_of_the_repeated_autumn_hour_are_on_the_same_shift() -> None:
    shifts = [
        {"responder": "li", "days": ["sun"], "start": "02:00", "end": "03:00"},
        {"responder": "chen", "days": ["sun"], "start": "03:00", "end": "04:00"},
    ]
    config = _config("Europe/Berlin", shifts, ["grid-team"])
    # Sunday 2026-10-25: 02:30 Berlin happens at 00:30 UTC (summer) and 01:30 UTC (winter).
    assert ["li"] == _ids(config, 1, datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    assert ["li"] == _ids(config, 1, datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    assert ["chen"] == _ids(config, 1, datetime(2026, 10, 25, 2, 0, tzinfo=UTC))


def test_a_shift_over_the_skipped_spring_hour_is_an_hour_shorter() -> None:
    shift = {"responder": "li", "days": ["sun"], "start": "01:00", "end": "04:00"}
    config = _config("Europe/Berlin", [shift], ["grid-team"])
    # 01:00 to 04:00 on 2026-03-29 is 00:00 to 02:00 UTC: two hours, not three.
    assert ["li"] == _ids(config, 1, datetime(2026, 3, 29, 0, 0, tzinfo=UTC))
    assert ["li"] == _ids(config, 1, datetime(2026, 3, 29, 1, 59, tzinfo=UTC))
    assert [] == _ids(config, 1, datetime(2026, 3, 29, 2, 0, tzinfo=UTC))


def test_a_call_list_keeps_its_order_names_each_responder_once_and_skips_a_rota_gap() -> None:
    config = _config("Asia/Shanghai", DAY_AND_NIGHT, ["chen", "grid-team", "wang"])
    shanghai = ZoneInfo("Asia/Shanghai")
    monday_noon = datetime(2026, 12, 7, 12, 0, tzinfo=shanghai)
    saturday_noon = datetime(2026, 12, 12, 12, 0, tzinfo=shanghai)
    assert ["chen", "wang"] == _ids(config, 1, monday_noon)
    assert ["chen", "wang"] == _ids(config, 1, saturday_noon)
    assert ["zhao"] == _ids(config, 2, monday_noon)


def test_nobody_is_called_at_the_duty_officers_level_or_above_the_top() -> None:
    config = _config("Asia/Shanghai", DAY_AND_NIGHT, ["grid-team"])
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert [] == _ids(config, 0, now)
    assert [] == _ids(config, 3, now)


def test_an_instant_without_a_time_zone_is_refused() -> None:
    config = _config("Asia/Shanghai", DAY_AND_NIGHT, ["grid-team"])
    with pytest.raises(ValueError, match="timezone-aware"):
        on_call(config, "s1", 1, datetime(2026, 12, 7, 12, 0))


def test_a_24_hour_shift_is_written_with_equal_start_and_end() -> None:
    shift = {"responder": "zhao", "days": ["mon"], "start": "08:00", "end": "08:00"}
    config = _config("Asia/Shanghai", [shift], ["grid-team"])
    shanghai = ZoneInfo("Asia/Shanghai")
    tuesday = date(2026, 12, 8)
    assert ["zhao"] == _ids(config, 1, datetime.combine(tuesday, time(7, 59), shanghai))
    assert [] == _ids(config, 1, datetime.combine(tuesday, time(8, 0), shanghai))
