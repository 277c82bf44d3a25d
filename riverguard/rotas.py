"""On-call rotas: who of a team is on duty, by weekday and time of day.

A rota's shifts are wall-clock times, read in the time zone of the site that
asks (a rota shared by sites in two zones follows each site's clock). A shift
whose end is not after its start ends the next day ("20:00"-"08:00" on Monday
runs into Tuesday morning; on Sunday it runs into Monday); an end equal to the
start is a 24-hour shift. Days are the days a shift *starts*.

Comparing wall-clock times, not adding durations to an instant, is what keeps
a shift right across daylight-saving changes: a night shift on the night the
clocks go back lasts an hour longer in real time, as it does for the person
on duty, and an instant in the repeated hour is on the same shift both times.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from riverguard.wire.models import Ident

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def clock_minutes(value: str) -> int:
    """Minutes after midnight of an "HH:MM" wall-clock time."""
    match = _CLOCK.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00 to 23:59)")
    return int(match[1]) * 60 + int(match[2])


def week_minute(local: datetime) -> int:
    """Minutes since Monday 00:00 of a wall-clock time."""
    return local.weekday() * DAY_MINUTES + local.hour * 60 + local.minute


class Shift(BaseModel):
    """One responder on duty from ``start`` to ``end`` on each of ``days``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    responder: Ident
    days: list[Weekday] = Field(min_length=1, max_length=7)
    start: str = Field(pattern=_CLOCK.pattern)
    end: str = Field(pattern=_CLOCK.pattern)

    @model_validator(mode="after")
    def _days_once(self) -> Shift:
        if len(set(self.days)) != len(self.days):
            raise ValueError(f"shift {self.label}: a day is listed twice")
        return self

    @property
    def length_minutes(self) -> int:
        length = (clock_minutes(self.end) - clock_minutes(self.start)) % DAY_MINUTES
        return length or DAY_MINUTES

    def week_starts(self) -> list[int]:
        """The minute of the week each of this shift's duties starts."""
        start = clock_minutes(self.start)
        return [WEEKDAYS.index(day) * DAY_MINUTES + start for day in self.days]

    def covers(self, minute_of_week: int) -> bool:
        length = self.length_minutes
        return any((minute_of_week - start) % WEEK_MINUTES < length for start in self.week_starts())

    @property
    def label(self) -> str:
        return f"{self.responder} {','.join(self.days)} {self.start}-{self.end}"


class Rota(BaseModel):
    """A team's week: shifts that never overlap. Gaps are allowed (nobody of this
    rota is on duty then; the level's other entries are called)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Ident
    name: str = Field(default="", max_length=100)
    shifts: list[Shift] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _no_overlap(self) -> Rota:
        # Each duty as a [start, end) span of the week; one crossing Sunday
        # midnight is split in two so the sorted spans can be compared pairwise.
        spans: list[tuple[int, int, Shift]] = []
        for shift in self.shifts:
            for start in shift.week_starts():
                end = start + shift.length_minutes
                spans.append((start, min(end, WEEK_MINUTES), shift))
                if end > WEEK_MINUTES:
                    spans.append((0, end - WEEK_MINUTES, shift))
        spans.sort(key=lambda span: span[:2])
        for (_, end, first), (start, _, second) in itertools.pairwise(spans):
            if start < end:
                day = WEEKDAYS[start // DAY_MINUTES]
                at = f"{start % DAY_MINUTES // 60:02d}:{start % 60:02d}"
                raise ValueError(
                    f"rota {self.id}: shifts {first.label} and {second.label} "
                    f"overlap on {day} at {at}"
                )
        return self

    def on_duty(self, local: datetime) -> str | None:
        """The responder on duty at wall-clock time ``local``, or None in a gap."""
        minute = week_minute(local)
        for shift in self.shifts:
            if shift.covers(minute):
                return shift.responder
        return None
