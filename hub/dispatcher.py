"""The dispatcher: moves responders' dispatches on, from their links, from an
officer or by their timers, one at a time; audits each step in its own
transaction and pushes it to consoles as a ``dispatch`` message
(docs/protocol.md 7.35).

``run`` is the dispatch timer: a responder who has not accepted within the
site's ``dispatch_accept_s`` is ``no_answer``, one not on scene
``dispatch_arrive_s`` after accepting is overdue; when nobody the alarm's
current level called is counted on any more (declined, silent, overdue), the
next level of an alarm still unacknowledged is called at once rather than at
its escalation time.

When an alarm is resolved, the alarm desk saves it through ``resolve``: its
responders' dispatches not yet on scene are cancelled by ``system`` in the
resolve's transaction (docs/protocol.md 7.44).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from hub import dispatch as rules
from hub.alarms import SYSTEM
from hub.broadcaster import Broadcaster
from hub.clock import Clock
from hub.dispatch import RESOLVED_NOTE, Dispatch, DispatchAction
from hub.dispatch_board import DispatchBoard
from hub.errors import AlarmNotFound, DispatchNotFound, DispatchTransitionError, StoreError
from hub.notify.plan import audit_calls, calls_to, stand_downs
from hub.store import AuditEntry, NotificationRow, Store
from hub.store.rows import StandDown, StoodDown
from riverguard.config import Config
from riverguard.wire.models import Alarm

log = structlog.get_logger()

# How long the timer waits before retrying after the store refused it.
TIMER_RETRY_S = 2.0

# Climbs an alarm one level now: (alarm id, by, detail).
NextLevel = Callable[[str, str, str], Awaitable[object]]


def responder_actor(responder_id: str) -> str:
    """How a responder's own steps are audited: they have no login."""
    return f"responder:{responder_id}"


class Dispatcher:
    def __init__(
        self,
        store: Store,
        config: Config,
        broadcaster: Broadcaster,
        clock: Clock,
        *,
        call_next_level: NextLevel,
        calls_queued: Callable[[], None],
    ) -> None:
        self._store = store
        self._config = config
        self._broadcaster = broadcaster
        self._clock = clock
        self._call_next_level = call_next_level
        self._calls_queued = calls_queued
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        # The dispatches of the active alarms, for a console's ``hello``.
        self.board = DispatchBoard()

    def use_config(self, config: Config) -> None:
        """Responders, rotas or call lists changed through the admin API
        (hub/responder_layer.py). A responder renamed while sent to an active alarm
        is pushed again with the new name, so that cards and later hellos say it."""
        self._config = config
        for shaped in self.board.all():
            responder = config.responder_by_id.get(shaped["responder"])
            name = responder.name if responder else None
            if shaped["responder_name"] != name:
                self._push(shaped | {"responder_name": name})

    async def load(self, active_alarms: Iterable[str]) -> None:
        """The board's dispatches of the alarms active at start-up."""
        for alarm_id in active_alarms:
            for dispatch in await self._store.dispatches.of_alarm(alarm_id):
                self.board.put(self.shape(dispatch))

    def wake(self) -> None:
        """Dispatches were made: look at the timers again."""
        self._wake.set()

    async def get(self, dispatch_id: str) -> Dispatch:
        dispatch = await self._store.dispatches.get(dispatch_id)
        if dispatch is None:
            raise DispatchNotFound(f"no dispatch {dispatch_id!r}")
        return dispatch

    def shape(self, dispatch: Dispatch) -> dict[str, Any]:
        """A dispatch with its responder's name, as consoles and the page get it."""
        responder = self._config.responder_by_id.get(dispatch.responder_id)
        return dispatch.shape() | {"responder_name": responder.name if responder else None}

    async def of_alarm(self, alarm_id: str) -> list[dict[str, Any]]:
        """The alarm's dispatches, each with the messages sent to its responder: on
        which channel, at which level, and whether it went (``calls``)."""
        calls: dict[str, list[dict[str, Any]]] = {}
        for row in await self._store.notifications.for_alarm(alarm_id):
            calls.setdefault(row.call.responder_id, []).append(
                {
                    "channel": row.call.channel_label,
                    "purpose": row.call.purpose,
                    "level": row.call.level,
                    "state": row.state,
                    "attempts": row.attempts,
                    "reason": row.reason,
                }
            )
        return [
            self.shape(d) | {"calls": calls.get(d.responder_id, [])}
            for d in await self._store.dispatches.of_alarm(alarm_id)
        ]

    async def act(
        self, dispatch_id: str, action: DispatchAction, by: str, note: str | None = None
    ) -> Dispatch:
        """Apply ``action`` by ``by`` (a username, or ``responder_actor``). An officer's
        cancel also withdraws the responder's calls not yet sent and stands them down
        on each channel that carried one (docs/protocol.md 7.44)."""
        async with self._lock:
            dispatch = await self.get(dispatch_id)
            now = self._clock.now()
            changed = rules.act(dispatch, action, now, note)  # refuses a step it does not allow
            if action == "cancel":
                plan = self._stand_down(by, note, action, now)
                self._told(
                    await self._store.notifications.call_off(dispatch, plan, now), by, action
                )
            else:
                await self._save(dispatch, changed, by, action)
        self._wake.set()
        if changed.state == "declined":
            await self._next_level_if_given_up(changed.alarm_id)
        return changed

    async def resolve(self, alarm: Alarm, audit: Sequence[AuditEntry]) -> None:
        """Save ``alarm``, just resolved, with ``audit`` (the alarm desk's entries): in
        the same transaction its calls not yet sent are withdrawn, each of its
        dispatches notified, accepted or on the way is cancelled by ``system``, and
        each responder so called off who was sent a call is queued a stand-down on
        each channel that carried one; each cancelled dispatch is then pushed. One
        on scene is left to its responder."""
        plan = self._stand_down(SYSTEM, RESOLVED_NOTE, RESOLVED_NOTE, alarm.updated_at)
        # Under the lock, so that a responder's step read before the resolve is not
        # saved over its cancel: the step waits and finds the dispatch ended.
        async with self._lock:
            self._told(await self._store.alarms.resolve(alarm, audit, plan), SYSTEM, RESOLVED_NOTE)

    def _stand_down(self, by: str, note: str | None, detail: str, at: datetime) -> StandDown:
        """Calling dispatches off, in the transaction that reads them: each is cancelled
        with ``note`` and audited with the channels its stand-down goes on, and each
        responder who was sent a call is queued a stand-down on those channels."""

        def plan(open_dispatches: list[Dispatch], carried: list[NotificationRow]) -> StoodDown:
            cancelled = [rules.act(d, "cancel", at, note) for d in open_dispatches]
            messages = stand_downs(cancelled, carried)
            entries = []
            for before, after in zip(open_dispatches, cancelled, strict=True):
                told = [m.channel_label for m in messages if m.responder_id == after.responder_id]
                # The channels its stand-down goes on, as a call's entry names its own.
                entries.append(
                    self._entry(before, after, by, detail, at, extra={"stand_down": told})
                )
            return StoodDown(cancelled, entries, messages)

        return plan

    def _told(self, ended: StoodDown, by: str, detail: str) -> None:
        """Consoles told of the dispatches called off, the outbox of the stand-downs."""
        for dispatch in ended.cancelled:
            self._publish(dispatch)
            self._log(dispatch, by, detail)
        if ended.messages:
            self._calls_queued()

    async def send(self, alarm_id: str, responder_id: str, by: str) -> Dispatch:
        """An officer sends a responder (anyone configured) to an alarm: a dispatch at
        level 0 and a message on each of their channels. One dispatch per responder
        and alarm: one already sent is refused."""
        responder = self._config.responder_by_id.get(responder_id)
        if responder is None:
            raise DispatchNotFound(f"no responder {responder_id!r}")
        async with self._lock:
            # Read under the lock: a resolve under way finishes first, and its alarm
            # is then seen resolved (its stand-down would miss a dispatch made after).
            alarm = await self._store.alarms.get(alarm_id)
            if alarm is None:
                raise AlarmNotFound(f"no alarm {alarm_id!r}")
            if alarm.state == "resolved":
                raise DispatchTransitionError(f"alarm {alarm_id} is resolved")
            existing = await self._store.dispatches.get(rules.dispatch_id(alarm_id, responder_id))
            if existing is not None:
                raise DispatchTransitionError(
                    f"{responder_id} was already sent to this alarm ({existing.state})"
                )
            now = self._clock.now()
            made = Dispatch(
                id=rules.dispatch_id(alarm_id, responder_id),
                alarm_id=alarm_id,
                responder_id=responder_id,
                level=0,
                state="notified",
                notified_at=now,
            )
            calls = calls_to(self._config, alarm_id, 0, responder)
            await self._store.notifications.queue(
                calls, now, audit_calls(self._config, calls, by, now)
            )
        self._calls_queued()
        self._wake.set()
        self._publish(made)
        log.info("dispatch", id=made.id, alarm_id=alarm_id, responder=responder_id, by=by)
        return made

    async def _save(self, before: Dispatch, after: Dispatch, by: str, detail: str) -> None:
        entry = self._entry(before, after, by, detail, self._clock.now())
        await self._store.dispatches.save(after, entry)
        self._publish(after)
        self._log(after, by, detail)

    def _entry(
        self,
        before: Dispatch,
        after: Dispatch,
        by: str,
        detail: str,
        at: datetime,
        *,
        extra: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """A step's audit entry (action ``dispatch``); ``extra`` goes in its ``after``."""
        return AuditEntry(
            ts=at,
            username=by,
            action="dispatch",
            alarm_id=after.alarm_id,
            target=after.responder_id,
            before={"state": before.state, "overdue_at": before.overdue_at is not None},
            after=self.shape(after) | (extra or {}),
            detail=detail,
        )

    def _log(self, after: Dispatch, by: str, detail: str) -> None:
        log.info(
            "dispatch",
            id=after.id,
            alarm_id=after.alarm_id,
            responder=after.responder_id,
            state=after.state,
            overdue=after.overdue_at is not None,
            by=by,
            detail=detail,
        )

    def _publish(self, dispatch: Dispatch) -> None:
        self._push(self.shape(dispatch))

    def _push(self, shaped: dict[str, Any]) -> None:
        """Onto the board for later hellos, and to every console now."""
        self.board.put(shaped)
        self._broadcaster.publish("dispatch", shaped)

    async def _next_level_if_given_up(self, alarm_id: str) -> None:
        alarm = await self._store.alarms.get(alarm_id)
        # Acknowledged, the duty officer owns the climb (as for the escalation timer):
        # they see the silence on the console and may call the next level themselves.
        if alarm is None or alarm.state != "open":
            return
        level = [
            d
            for d in await self._store.dispatches.of_alarm(alarm_id)
            if d.level == alarm.escalation_level
        ]
        if rules.level_given_up(level):
            await self._call_next_level(
                alarm_id, SYSTEM, f"nobody called at level {alarm.escalation_level} answers"
            )

    # --- the dispatch timer ---------------------------------------------------

    async def run(self) -> None:
        """Apply the dispatch timers as they run out; never returns."""
        while True:
            self._wake.clear()
            try:
                due = await self.tick()
            except StoreError as exc:
                log.exception("dispatch timer could not save", error=str(exc))
                retry = self._clock.now() + timedelta(seconds=TIMER_RETRY_S)
                await self._clock.wait(retry, asyncio.Event())
                continue
            await self._clock.wait(due, self._wake)

    async def tick(self) -> datetime | None:
        """Apply the timers that ran out; when the next one runs out."""
        now = self._clock.now()
        touched: set[str] = set()
        upcoming: list[datetime] = []
        alarms: dict[str, Alarm | None] = {}
        for dispatch in await self._store.dispatches.active():
            if dispatch.alarm_id not in alarms:
                alarms[dispatch.alarm_id] = await self._store.alarms.get(dispatch.alarm_id)
            alarm = alarms[dispatch.alarm_id]
            site = self._config.site_by_id.get(alarm.site) if alarm is not None else None
            if alarm is None or site is None or alarm.state == "resolved":
                continue
            # An escalation made it (in the desk's transaction) and woke the timer:
            # consoles learn of the call here.
            if not self.board.knows(dispatch.id, dispatch.alarm_id):
                self._publish(dispatch)
            async with self._lock:
                # Read again under the lock: the responder may have pressed meanwhile.
                current = await self.get(dispatch.id)
                changed = rules.run_timers(current, site, now)
                if changed != current:
                    detail = "no answer" if changed.state == "no_answer" else "overdue"
                    await self._save(current, changed, SYSTEM, detail)
                    touched.add(changed.alarm_id)
            upcoming.extend(t for t in [rules.next_timer(changed, site)] if t is not None)
        for alarm_id in sorted(touched):
            await self._next_level_if_given_up(alarm_id)
        return min(upcoming, default=None)
