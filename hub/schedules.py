"""Scheduled announcements: recurring routine messages per site.

A schedule is cron-like in the site's own time zone: on the chosen ISO
weekdays (1 = Monday) of the chosen months, from ``start`` to ``end`` (local
``HH:MM``; an end at or before the start runs past midnight) every
``every_min`` minutes, for example summer evenings 16:00-20:00 every 30
minutes. A schedule is routine by definition (priority below life-safety).

Schedules are kept in ``<data_dir>/schedules.json`` and fired by a loop on
the hub's injectable clock. An occurrence the hub missed by more than
``LATE_GRACE`` (it was down) is skipped, not played late.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub import ids
from hub.clock import Clock
from hub.errors import AudioRejected, HubError
from riverguard import policy
from riverguard.config import Config
from riverguard.wire.models import Ident
from riverguard.wire.times import format_ts

log = structlog.get_logger()

LATE_GRACE = timedelta(minutes=5)
# Scheduled announcements are routine by definition (riverguard.policy).
ROUTINE_MAX_PRIORITY = policy.ROUTINE_MAX_PRIORITY
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: Ident
    title: str = Field(min_length=1, max_length=200)
    clip_id: str | None = Field(default=None, max_length=100)
    text: str | None = Field(default=None, max_length=300)
    voice: str | None = Field(default=None, max_length=40)
    speakers: list[Ident] | None = Field(default=None, max_length=100)
    zone: Ident | None = None
    start: str = Field(pattern=_HHMM)
    end: str = Field(pattern=_HHMM)
    every_min: int = Field(ge=1, le=1440)
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], min_length=1)
    months: list[int] = Field(default_factory=lambda: list(range(1, 13)), min_length=1)
    repeat: int = Field(default=1, ge=1, le=10)
    volume: int | None = Field(default=None, ge=0, le=100)
    priority: int = Field(default=3, ge=0, le=ROUTINE_MAX_PRIORITY)
    paused: bool = False

    @model_validator(mode="after")
    def _check(self) -> ScheduleIn:
        if (self.clip_id is None) == (self.text is None):
            raise ValueError("name a clip_id, or a text with a voice")
        if self.text is not None and self.voice is None:
            raise ValueError("a text needs a voice (cmn, yue or en)")
        if any(not 1 <= d <= 7 for d in self.days):
            raise ValueError("days are ISO weekdays 1 (Monday) to 7 (Sunday)")
        if any(not 1 <= m <= 12 for m in self.months):
            raise ValueError("months are 1 to 12")
        return self


class SchedulePatch(BaseModel):
    """Fields to change; ``paused`` pauses or resumes."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    clip_id: str | None = Field(default=None, max_length=100)
    text: str | None = Field(default=None, max_length=300)
    voice: str | None = Field(default=None, max_length=40)
    speakers: list[Ident] | None = Field(default=None, max_length=100)
    zone: Ident | None = None
    start: str | None = Field(default=None, pattern=_HHMM)
    end: str | None = Field(default=None, pattern=_HHMM)
    every_min: int | None = Field(default=None, ge=1, le=1440)
    days: list[int] | None = None
    months: list[int] | None = None
    repeat: int | None = Field(default=None, ge=1, le=10)
    volume: int | None = Field(default=None, ge=0, le=100)
    priority: int | None = Field(default=None, ge=0, le=ROUTINE_MAX_PRIORITY)
    paused: bool | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    spec: dict[str, Any]
    created_by: str
    created_at: str
    updated_by: str
    updated_at: str
    last_fired: str | None = None
    fired_count: int = 0
    last_result: str = ""

    @property
    def request(self) -> ScheduleIn:
        return ScheduleIn.model_validate(self.spec)

    def shape(self, next_fire: datetime | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.spec,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
            "last_fired": self.last_fired,
            "fired_count": self.fired_count,
            "last_result": self.last_result,
            "next_fire": format_ts(next_fire) if next_fire else None,
        }


def next_occurrence(spec: ScheduleIn, tz: ZoneInfo, after: datetime) -> datetime | None:
    """The first occurrence strictly after ``after`` (UTC), within about a year."""
    start = time.fromisoformat(spec.start)
    end = time.fromisoformat(spec.end)
    step = timedelta(minutes=spec.every_min)
    local_after = after.astimezone(tz)
    first_day = local_after.date() - timedelta(days=1)
    for offset in range(0, 400):
        day: date = first_day + timedelta(days=offset)
        if day.isoweekday() not in spec.days or day.month not in spec.months:
            continue
        begin = datetime.combine(day, start, tz)
        finish = datetime.combine(day, end, tz)
        if finish <= begin:
            finish += timedelta(days=1)
        if finish <= local_after:
            continue
        if begin > local_after:
            candidate = begin
        else:
            steps = int((local_after - begin) / step) + 1
            candidate = begin + steps * step
        if candidate < finish:
            return candidate.astimezone(after.tzinfo)
    return None


Fire = Callable[[Schedule], Awaitable[str]]


class Schedules:
    def __init__(self, path: Path, config: Config, clock: Clock, fire: Fire) -> None:
        self.path = path
        self.config = config
        self.clock = clock
        self.fire = fire
        self._items: dict[str, Schedule] = {}
        self._next: dict[str, datetime | None] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    # --- persistence ---------------------------------------------------------

    def load(self) -> None:
        """Blocking (a small file): the schedules kept by the last run."""
        if self.path.is_file():
            for raw in json.loads(self.path.read_text(encoding="utf-8")):
                item = Schedule(**raw)
                self._items[item.id] = item
        now = self.clock.now()
        for item in self._items.values():
            self._next[item.id] = self._compute_next(item, now)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        data = [asdict(item) for item in self._items.values()]
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(self.path)

    def _compute_next(self, item: Schedule, after: datetime) -> datetime | None:
        spec = item.request
        if spec.paused:
            return None
        site = self.config.site_by_id.get(spec.site)
        if site is None:
            return None
        return next_occurrence(spec, ZoneInfo(site.timezone), after)

    # --- reading -------------------------------------------------------------

    def all(self) -> list[_Shaped]:
        return [_Shaped(item, self._next.get(item.id)) for item in self._items.values()]

    def get(self, schedule_id: str) -> _Shaped | None:
        item = self._items.get(schedule_id)
        return _Shaped(item, self._next.get(item.id)) if item else None

    # --- changes -------------------------------------------------------------

    async def create(self, spec: ScheduleIn, username: str) -> _Shaped:
        if spec.site not in self.config.site_by_id:
            raise AudioRejected("not_found", f"no site {spec.site!r}", status=404)
        now = format_ts(self.clock.now())
        item = Schedule(
            id=f"sch-{ids.ulid()}",
            spec=spec.model_dump(),
            created_by=username,
            created_at=now,
            updated_by=username,
            updated_at=now,
        )
        return await self._put(item, "schedule created", username)

    async def update(self, schedule_id: str, patch: SchedulePatch, username: str) -> _Shaped:
        item = self._items.get(schedule_id)
        if item is None:
            raise AudioRejected("not_found", f"no schedule {schedule_id!r}", status=404)
        spec = {**item.spec, **patch.model_dump(exclude_unset=True)}
        try:
            checked = ScheduleIn.model_validate(spec)
        except ValueError as exc:
            raise AudioRejected("invalid_request", str(exc)[:500]) from None
        item = replace(
            item,
            spec=checked.model_dump(),
            updated_by=username,
            updated_at=format_ts(self.clock.now()),
        )
        return await self._put(item, "schedule changed", username)

    async def delete(self, schedule_id: str, username: str) -> None:
        async with self._lock:
            if self._items.pop(schedule_id, None) is None:
                raise AudioRejected("not_found", f"no schedule {schedule_id!r}", status=404)
            self._next.pop(schedule_id, None)
            # A small JSON file: written in a thread anyway so a slow disk never stalls the loop.
            await asyncio.to_thread(self._save)
        log.info("schedule deleted", schedule_id=schedule_id, username=username)
        self._wake.set()

    async def _put(self, item: Schedule, what: str, username: str) -> _Shaped:
        async with self._lock:
            self._items[item.id] = item
            self._next[item.id] = self._compute_next(item, self.clock.now())
            # As in delete: file I/O off the loop.
            await asyncio.to_thread(self._save)
        log.info(what, schedule_id=item.id, username=username, spec=item.spec)
        self._wake.set()
        return _Shaped(item, self._next[item.id])

    # --- firing --------------------------------------------------------------

    async def run(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock.now()
            due = [sid for sid, at in self._next.items() if at is not None and at <= now]
            for schedule_id in due:
                await self._fire(schedule_id, now)
            if due:
                continue
            upcoming = [at for at in self._next.values() if at is not None]
            await self.clock.wait(min(upcoming) if upcoming else None, self._wake)

    async def _fire(self, schedule_id: str, now: datetime) -> None:
        item = self._items.get(schedule_id)
        at = self._next.get(schedule_id)
        if item is None or at is None:
            return
        result = "skipped: missed while the hub was down"
        if now - at <= LATE_GRACE:
            try:
                result = await self.fire(item)
            except HubError as exc:
                result = f"failed: {exc}"
                log.warning(
                    "scheduled announcement failed", schedule_id=schedule_id, error=str(exc)
                )
            # One bad schedule must not stop the loop.
            except Exception as exc:
                result = f"failed: {exc!r}"
                log.exception("scheduled announcement crashed", schedule_id=schedule_id)
        async with self._lock:
            current = self._items.get(schedule_id)
            if current is not None:
                current = replace(
                    current,
                    last_fired=format_ts(now),
                    fired_count=current.fired_count + 1,
                    last_result=result[:300],
                )
                self._items[schedule_id] = current
                self._next[schedule_id] = self._compute_next(current, now)
                # As in delete: file I/O off the loop.
                await asyncio.to_thread(self._save)


@dataclass(frozen=True, slots=True)
class _Shaped:
    item: Schedule
    next_fire: datetime | None

    @property
    def id(self) -> str:
        return self.item.id

    def shape(self) -> dict[str, Any]:
        return self.item.shape(self.next_fire)
