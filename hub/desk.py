"""The alarm desk: applies the alarm rules, persists, keeps the picture, pushes changes.

Every alarm change (ingest, ack, resolve, announcement) goes through one lock,
so the in-memory picture and the store never disagree about which alarm is
active for a site and zone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime

import structlog

from hub import alarms as rules
from hub.broadcaster import Broadcaster
from hub.errors import AlarmNotFound
from hub.metrics import HubMetrics
from hub.picture import Picture
from hub.store import Batch, Committed, Store
from riverguard.wire.models import Alarm, Event
from riverguard.wire.times import utcnow

log = structlog.get_logger()


class AlarmDesk:
    def __init__(
        self,
        store: Store,
        picture: Picture,
        broadcaster: Broadcaster,
        metrics: HubMetrics,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.picture = picture
        self.broadcaster = broadcaster
        self.metrics = metrics
        self.clock = clock
        self.lock = asyncio.Lock()
        self._resolved = 0

    async def load(self) -> None:
        counts = await self.store.count_alarms_by_state()
        self._resolved = counts.get("resolved", 0)
        self._update_gauges()

    async def commit(self, batch: Batch) -> Committed:
        """Commit an ingest batch with the alarms its new events open or join."""
        async with self.lock:
            now = self.clock()
            active = dict(self.picture.active)

            def decide(new: list[Event]) -> rules.Outcome:
                return rules.apply_events(active, new, now)

            committed = await self.store.commit_batch(batch, decide)
            for alarm in committed.outcome.changed.values():
                self.picture.put_alarm(alarm)
            self._update_gauges()
        return committed

    def push_alarms(self, changed: Iterable[Alarm], risk_before: dict[str, str]) -> None:
        """Push each changed alarm, then each site whose risk colour changed."""
        for alarm in changed:
            self.broadcaster.publish("alarm", alarm.model_dump(mode="json"))
        for site, before in risk_before.items():
            if self.picture.risk(site) != before:
                self.broadcaster.publish("site", self.picture.site_item(site))

    def push_current(self, changed: Iterable[Alarm], risk_before: dict[str, str]) -> None:
        """Push the current version of alarms an ingest batch changed.

        Called after the batch's commit acknowledgement went out; an ack or
        resolve that happened meanwhile already pushed a newer version, so only
        alarms still active with the same id are pushed, as they are now.
        """
        current = []
        for alarm in changed:
            now = self.picture.active.get((alarm.site, alarm.zone))
            if now is not None and now.id == alarm.id:
                current.append(now)
        self.push_alarms(current, risk_before)

    def risks(self, sites: Iterable[str]) -> dict[str, str]:
        return {site: self.picture.risk(site) for site in set(sites)}

    async def acknowledge(self, alarm_id: str, username: str) -> Alarm:
        return await self._change(alarm_id, lambda a, now: rules.acknowledge(a, username, now))

    async def resolve(self, alarm_id: str, username: str, outcome: str, note: str | None) -> Alarm:
        return await self._change(
            alarm_id, lambda a, now: rules.resolve(a, username, outcome, note, now)
        )

    async def add_announcement(self, alarm_id: str, announcement_id: str) -> Alarm:
        return await self._change(
            alarm_id, lambda a, now: rules.add_announcement(a, announcement_id, now)
        )

    async def get(self, alarm_id: str) -> Alarm:
        alarm = await self.store.get_alarm(alarm_id)
        if alarm is None:
            raise AlarmNotFound(f"no alarm {alarm_id!r}")
        return alarm

    async def _change(self, alarm_id: str, change: Callable[[Alarm, datetime], Alarm]) -> Alarm:
        async with self.lock:
            alarm = await self.get(alarm_id)
            risk_before = self.risks([alarm.site])
            changed = change(alarm, self.clock())
            await self.store.save_alarm(changed)
            self.picture.put_alarm(changed)
            if changed.state == "resolved" and alarm.state != "resolved":
                self._resolved += 1
            self._update_gauges()
            self.push_alarms([changed], risk_before)
        log.info("alarm changed", alarm_id=alarm_id, state=changed.state)
        return changed

    def _update_gauges(self) -> None:
        counts = {"open": 0, "acknowledged": 0}
        for alarm in self.picture.active.values():
            counts[alarm.state] += 1
        for state, count in counts.items():
            self.metrics.alarms.labels(state).set(count)
        self.metrics.alarms.labels("resolved").set(self._resolved)
