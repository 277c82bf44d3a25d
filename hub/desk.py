"""The alarm desk: applies the alarm rules, persists, keeps the picture, pushes changes.

Every alarm change (ingest, ack, resolve, announcement, escalation) goes
through one lock, so the in-memory picture and the store never disagree about
which alarm is active for a site and zone. Each change made by a person or by
the hub itself is audited in the transaction that makes it.

``run`` is the alarm timer: it escalates open alarms whose ``escalate_at``
passed and proposes ``persuaded_away`` for alarms whose clear window passed.
Both times live in the stored alarm, so the timer picks up where it was after
a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

import structlog

from hub import alarms as rules
from hub.alarms import SYSTEM, alarm_audit
from hub.broadcaster import Broadcaster
from hub.clock import Clock
from hub.dispatcher import Dispatcher
from hub.errors import AlarmNotFound, StoreError
from hub.influx import risk_line
from hub.metrics import HubMetrics
from hub.notify.plan import audit_calls, plan_calls
from hub.picture import Picture
from hub.store import AuditEntry, Batch, CommittedBatch, PlannedCall, Store
from riverguard.config import Config
from riverguard.wire.models import Alarm, EscalationReason, Event

# How long the alarm timer waits before retrying after the store refused a change.
TIMER_RETRY_S = 2.0
# Rows the timer writes in one transaction at most: an ingest batch waiting for the
# lock waits for one chunk, not the whole storm (chunks of 100 alarms made the alarm
# path's p99 during a storm twice that of 25: bench/notify_latency). Counted in rows,
# not alarms: an escalation that calls people writes a call, a dispatch and an audit
# entry more for each, and 25 of those held the lock longer than 25 without.
TIMER_CHUNK_ROWS = 50

log = structlog.get_logger()


class AlarmDesk:
    def __init__(
        self,
        store: Store,
        picture: Picture,
        broadcaster: Broadcaster,
        metrics: HubMetrics,
        clock: Clock,
        *,
        risk_points: Callable[[list[str]], None],
        calls_queued: Callable[[], None],
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.store = store
        # Saves a resolve and ends its alarm's dispatches with it (PROTOCOL 7.44). A
        # desk without one only withdraws the resolved alarm's calls not yet sent:
        # the notification bench's, whose receiver would count stand-downs as calls.
        self._dispatcher = dispatcher
        # Told when an escalation queued notifications (the outbox sender's wake).
        self.calls_queued = calls_queued
        self.picture = picture
        self.config = picture.config
        self.broadcaster = broadcaster
        self.metrics = metrics
        self.clock = clock
        self.lock = asyncio.Lock()
        self._resolved = 0
        # Set whenever an alarm changes, so the timer recomputes its next wake-up.
        self._wake = asyncio.Event()
        # The risk state each site was last pushed with, and where site_risk points go.
        self._shown: dict[str, tuple[object, ...]] = {}
        self.risk_points = risk_points
        self.risk_check_s = 30.0
        self._fenced = {
            (device.site, zone)
            for device in self.config.devices
            if device.type == "fence"
            for zone in device.zones
        }

    def use_config(self, config: Config) -> None:
        """Responders, rotas or call lists changed through the admin API: the next
        escalation plans its calls from ``config`` (hub/responder_layer.py)."""
        self.picture.config = config
        self.config = config

    async def load(self) -> None:
        """The alarm gauges, and every site's risk as it is at start-up (written to
        InfluxDB, not pushed)."""
        counts = await self.store.alarms.count_by_state()
        self._resolved = counts.get("resolved", 0)
        self._update_gauges()
        for site in self.config.sites:
            self._shown[site.id] = self.picture.shown_state(site.id)
            self._write_risk(site.id)

    async def commit(self, batch: Batch) -> CommittedBatch:
        """Commit an ingest batch with the alarms its new events open or join."""
        async with self.lock:
            now = self.clock.now()
            active = dict(self.picture.active)
            sites = self.config.site_by_id
            escalated: list[tuple[Alarm, Alarm]] = []
            reraised: list[Alarm] = []

            def decide(new: list[Event]) -> rules.Outcome:
                outcome = rules.apply_events(active, new, now, sites=sites)
                escalated.extend(outcome.escalated)
                reraised.extend(after for _, after in outcome.reraised)
                return outcome

            def plan(_: object) -> tuple[list[PlannedCall], list[AuditEntry], datetime]:
                calls = [c for b, a in escalated for c in self._calls(b, a, now)]
                return calls, audit_calls(self.config, calls, SYSTEM, now), now

            # The calls the batch's escalations make are queued, and audited, in its
            # transaction.
            committed = await self.store.batches.commit(batch, decide, plan)
            for alarm in committed.outcome.changed.values():
                self.picture.put_alarm(alarm)
            self._update_gauges()
        if committed.outcome.changed:
            self._wake.set()
        if escalated:
            self.calls_queued()
        for alarm in reraised:
            latest = alarm.intrusions[-1]
            log.info(
                "alarm re-raised by a new intrusion",
                alarm_id=alarm.id,
                cause=latest.cause,
                device=latest.device,
                intrusions=alarm.intrusion_count,
            )
        for before, after in escalated:
            self.metrics.escalations.labels("trigger").inc()
            log.info(
                "alarm escalated by a trigger after an announcement",
                alarm_id=after.id,
                level=after.escalation_level,
                next_step=after.next_step,
                before=before.escalation_level,
            )
        return committed

    def push_alarms(
        self,
        changed: Iterable[Alarm],
        risk_before: dict[str, str],
        known_json: Mapping[str, str] | None = None,
    ) -> None:
        """Push each changed alarm, then each site whose risk changed.

        ``known_json``: alarms (by id) already serialised as they are, by the store."""
        for alarm in changed:
            text = known_json.get(alarm.id) if known_json else None
            self.broadcaster.publish_json("alarm", text or alarm.model_dump_json())
        self.refresh_sites(risk_before)

    def refresh_sites(self, sites: Iterable[str]) -> None:
        """Recompute the sites' risk; push those whose colour, coverage or device counts
        changed, and record the risk of those whose colour or coverage did."""
        for site in sites:
            state = self.picture.shown_state(site)
            before = self._shown.get(site)
            if before != state:
                self._shown[site] = state
                self.broadcaster.publish("site", self.picture.site_item(site))
                if before is None or before[:2] != state[:2]:
                    self._write_risk(site)

    def _write_risk(self, site: str) -> None:
        assessment = self.picture.assess(site)
        self.risk_points([risk_line(site, assessment, self.clock.now())])

    async def watch_risk(self) -> None:
        """Recompute every site's risk now and then: schedules and rate windows move by
        themselves, with no input to trigger a recomputation."""
        wake = asyncio.Event()
        while True:
            wake.clear()
            self.refresh_sites(site.id for site in self.config.sites)
            await self.clock.wait(self.clock.now() + timedelta(seconds=self.risk_check_s), wake)

    def push_current(
        self, changed: Iterable[Alarm], risk_before: dict[str, str], stored_json: Mapping[str, str]
    ) -> None:
        """Push the current version of alarms an ingest batch changed.

        Called once the batch is committed; an ack or resolve that happened
        meanwhile already pushed a newer version, so only alarms still active
        with the same id are pushed, as they are now (with the JSON the store
        wrote, ``stored_json``, when they are still that version).
        """
        current = []
        unchanged_json = {}
        for alarm in changed:
            now = self.picture.active.get((alarm.site, alarm.zone))
            if now is not None and now.id == alarm.id:
                current.append(now)
                if now is alarm and alarm.id in stored_json:
                    unchanged_json[alarm.id] = stored_json[alarm.id]
        self.push_alarms(current, risk_before, unchanged_json)

    def risks(self, sites: Iterable[str]) -> dict[str, str]:
        """The sites whose risk a change may move (see ``refresh_sites``)."""
        return {site: self.picture.risk(site) for site in set(sites)}

    async def acknowledge(self, alarm_id: str, username: str) -> Alarm:
        return await self._change(
            alarm_id, lambda a, now: rules.acknowledge(a, username, now), ("ack", username)
        )

    async def resolve(self, alarm_id: str, username: str, outcome: str, note: str | None) -> Alarm:
        return await self._change(
            alarm_id,
            lambda a, now: rules.resolve(a, username, outcome, note, now),
            ("resolve", username),
        )

    async def add_announcement(self, alarm_id: str, announcement_id: str) -> Alarm:
        """Record an announcement (audited by the announcer) and start the clear window."""

        def change(alarm: Alarm, now: datetime) -> Alarm:
            window = self.config.site(alarm.site).clear_window_s
            return rules.add_announcement(alarm, announcement_id, now, window)

        return await self._change(alarm_id, change)

    # --- the alarm timer ------------------------------------------------------

    async def run(self) -> None:
        """Escalate and propose outcomes as their times come; never returns."""
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except StoreError as exc:
                # Not lost: the due time stays in the store. Retry in a while, not at
                # once: the overdue time would otherwise spin this loop against the store.
                log.exception("alarm timer could not save", error=str(exc))
                retry = self.clock.now() + timedelta(seconds=TIMER_RETRY_S)
                await self.clock.wait(retry, asyncio.Event())
                continue
            await self.clock.wait(self.next_due(), self._wake)

    def next_due(self) -> datetime | None:
        times: list[datetime] = []
        for alarm in self.picture.active.values():
            if alarm.state == "open" and alarm.escalate_at is not None:
                times.append(alarm.escalate_at)
            fenced = (alarm.site, alarm.zone) in self._fenced
            if (
                alarm.clear_at is not None
                and alarm.suggestion is None
                and not rules.clear_blocked(alarm, fenced)
            ):
                times.append(alarm.clear_at)
        return min(times, default=None)

    async def tick(self) -> None:
        """Escalate every overdue open alarm; propose persuaded_away where the zone is clear."""
        now = self.clock.now()
        alarms = list(self.picture.active.values())
        due = [alarm.id for alarm in alarms if rules.escalation_due(alarm, now)]
        called = False
        while due:
            queued, due = await self._escalate(due)
            called |= queued
        if called:
            # Once the pass is over: the sends then share the event loop with the alarm
            # path, not with the pass that holds the lock (the alarm path's tail
            # during a storm: bench/notify_latency).
            self.calls_queued()
        for alarm in alarms:
            fenced = (alarm.site, alarm.zone) in self._fenced
            if rules.clear_due(alarm, now, fenced):
                await self._clear(alarm, fenced)

    async def _escalate(self, alarm_ids: list[str]) -> tuple[bool, list[str]]:
        """Escalate the alarms still due among ``alarm_ids``, up to a chunk's rows, in
        one transaction: a storm of escalations commits once a chunk, where one commit
        (and its fsync) each held the lock, and so every ingest batch, for seconds.
        Whether it queued calls, and the ids it left for the next chunk."""
        async with self.lock:
            now = self.clock.now()
            by_id = {alarm.id: alarm for alarm in self.picture.active.values()}
            pairs: list[tuple[Alarm, Alarm]] = []
            calls: list[PlannedCall] = []
            audit: list[AuditEntry] = []
            taken = 0
            # The rows so far: an alarm and its entry, a call, its dispatch and its entry.
            while taken < len(alarm_ids) and 2 * len(pairs) + 3 * len(calls) < TIMER_CHUNK_ROWS:
                alarm_id = alarm_ids[taken]
                taken += 1
                alarm = by_id.get(alarm_id)
                if alarm is None or not rules.escalation_due(alarm, now):
                    continue  # resolved, acknowledged or escalated meanwhile
                site = self.config.site_by_id.get(alarm.site)
                changed = rules.escalate(alarm, site, now, "unacknowledged")
                if changed is alarm:
                    continue
                pairs.append((alarm, changed))
                called = self._calls(alarm, changed, now)
                calls.extend(called)
                # Each escalation's entry, then one for each responder it called.
                audit.append(alarm_audit("escalate", SYSTEM, alarm, changed, ""))
                audit.extend(audit_calls(self.config, called, SYSTEM, now))
            rest = alarm_ids[taken:]
            if not pairs:
                return False, rest
            risk_before = self.risks(before.site for before, _ in pairs)
            await self.store.alarms.save_all([after for _, after in pairs], audit, calls, now)
            for _, after in pairs:
                self.picture.put_alarm(after)
            self._update_gauges()
            self.push_alarms([after for _, after in pairs], risk_before)
        self._wake.set()
        self.metrics.escalations.labels("timer").inc(len(pairs))
        for before, after in pairs:
            log.info(
                "alarm changed",
                alarm_id=after.id,
                state=after.state,
                action="escalate",
                level=after.escalation_level,
                before=before.escalation_level,
            )
        return bool(calls), rest

    async def call_next_level(
        self, alarm_id: str, by: str, reason: EscalationReason, detail: str = ""
    ) -> Alarm:
        """Climb one level now (``by_officer``: an officer's "call the next level";
        ``dispatch_exhausted``: nobody of the level is coming): its responders are
        called as by the timer. Nothing at the top of the grid path or once resolved."""
        alarm = await self.get(alarm_id)
        site = self.config.site_by_id.get(alarm.site)
        top = len(site.escalation) if site is not None else 0

        def climb(a: Alarm, t: datetime) -> Alarm:
            if a.state == "resolved" or a.escalation_level >= top:
                return a
            officer = by if reason == "by_officer" else None
            return rules.escalate(a, site, t, reason, officer)

        return await self._change(alarm_id, climb, ("escalate", by), detail)

    async def _clear(self, alarm: Alarm, fenced: bool) -> None:
        site = self.config.site(alarm.site)
        detail = f"no trigger for {site.clear_window_s:g} s after the announcement"
        suggested = await self._change(
            alarm.id,
            lambda a, t: rules.suggest_persuaded(a, t) if rules.clear_due(a, t, fenced) else a,
            ("suggest", SYSTEM),
            detail,
        )
        if site.auto_resolve_persuaded and suggested.state != "resolved":
            await self._change(
                alarm.id,
                lambda a, t: rules.resolve(
                    a,
                    SYSTEM,
                    "persuaded_away",
                    detail,
                    t,
                    note_code="quiet_after_announcement",
                    note_window_s=site.clear_window_s,
                ),
                ("resolve", SYSTEM),
                "auto-resolved: " + detail,
            )

    async def get(self, alarm_id: str) -> Alarm:
        alarm = await self.store.alarms.get(alarm_id)
        if alarm is None:
            raise AlarmNotFound(f"no alarm {alarm_id!r}")
        return alarm

    async def _change(
        self,
        alarm_id: str,
        change: Callable[[Alarm, datetime], Alarm],
        audit: tuple[str, str] | None = None,
        detail: str = "",
    ) -> Alarm:
        """Apply ``change``; ``audit`` (action, username) is recorded in the same transaction."""
        async with self.lock:
            alarm = await self.get(alarm_id)
            risk_before = self.risks([alarm.site])
            changed = change(alarm, self.clock.now())
            if changed is alarm:
                return alarm
            entries: list[AuditEntry] = []
            by = SYSTEM
            if audit is not None:
                by = audit[1]
                entries.append(alarm_audit(audit[0], by, alarm, changed, detail))
            calls = self._calls(alarm, changed, changed.updated_at)
            entries.extend(audit_calls(self.config, calls, by, changed.updated_at))
            resolving = changed.state == "resolved" and alarm.state != "resolved"
            if resolving and self._dispatcher is not None:
                await self._dispatcher.resolve(changed, entries)
            elif resolving:
                await self.store.alarms.resolve(changed, entries)
            else:
                await self.store.alarms.save(changed, entries, calls)
            self.picture.put_alarm(changed)
            if changed.state == "resolved" and alarm.state != "resolved":
                self._resolved += 1
            self._update_gauges()
            self.push_alarms([changed], risk_before)
        self._wake.set()
        if calls:
            self.calls_queued()
        log.info(
            "alarm changed",
            alarm_id=alarm_id,
            state=changed.state,
            action=audit[0] if audit else "update",
            level=changed.escalation_level,
        )
        return changed

    def _calls(self, before: Alarm, after: Alarm, now: datetime) -> list[PlannedCall]:
        """The notifications an escalation makes: the responders on call at each level
        the alarm climbed to."""
        return [
            call
            for level in range(before.escalation_level + 1, after.escalation_level + 1)
            for call in plan_calls(self.config, after.id, after.site, level, now)
        ]

    def _update_gauges(self) -> None:
        counts = {"open": 0, "acknowledged": 0}
        for alarm in self.picture.active.values():
            counts[alarm.state] += 1
        for state, count in counts.items():
            self.metrics.alarms.labels(state).set(count)
        self.metrics.alarms.labels("resolved").set(self._resolved)
