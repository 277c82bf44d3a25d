"""The outbox sender: sends queued notifications as they come due, beside the alarm
path, never in it.

An escalation only queues rows, in its own transaction (``hub.store.alarms``,
``hub.store.batches``); this loop wakes when told something was queued or when
the next row is due, and sends each due row through the ``SendProcess`` (the
rendering and the network in a process of their own, ``hub.notify.send_process``),
a few at a time: a slow or dead receiver delays its own messages by at most the
send timeout, and never an alarm. Per row: over a rate limit it waits (no
attempt spent); otherwise it is claimed, sent and settled as sent, failed,
queued again after a backoff, or given up once its attempts are spent
(``hub.store.notifications``); a call whose alarm was resolved or whose
responder was called off is withdrawn rather than sent, and a stand-down is
sent as a call is; a pass's claims are one transaction, settlements that end
together another, and the alarms and event kinds its messages tell of are
read once for the pass. The rate limits are counted afresh at each start from
the rows sent within their window (``hub.notify.rate_limit``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from hub.clock import Clock
from hub.dispatch import dispatch_id
from hub.errors import StoreError
from hub.metrics import HubMetrics
from hub.notify.backoff import Backoff
from hub.notify.links import ResponderLinks
from hub.notify.message import Notice
from hub.notify.outcome import Outcome, failed
from hub.notify.rate_limit import RateLimits
from hub.notify.send_process import SendProcess
from hub.responder_tokens import ResponderTokens
from hub.store import NotificationRow, Store
from hub.store.notifications import Notifications, Settlement
from riverguard.config import Config
from riverguard.wire.models import Alarm, EventKind

log = structlog.get_logger()

# Sends under way at once: enough that one hung receiver does not hold up the rest.
CONCURRENCY = 16
# How long the loop waits before looking again after the store refused it.
STORE_RETRY_S = 2.0
# A responder's link lasts a day: long enough for a night's incident and its report.
LINK_TTL = timedelta(hours=24)


class Outbox:
    def __init__(
        self,
        store: Store,
        config: Config,
        sender: SendProcess,
        links: ResponderLinks,
        tokens: ResponderTokens,
        *,
        clock: Clock,
        metrics: HubMetrics,
        backoff: Backoff | None = None,
        limits: RateLimits | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._config = config
        self._sender = sender
        self._links = links
        self._tokens = tokens
        self._clock = clock
        self._metrics = metrics
        self._backoff = backoff or Backoff.of(config.notify)
        self._limits = limits or RateLimits(config.notify.responder_per_minute)
        self._rand = rand
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._settler = _Settler(store.notifications)

    def use_config(self, config: Config) -> None:
        """Responders or call lists changed through the admin API; the shared channels
        (``notify``) are the file's and stay as they were."""
        self._config = config

    def wake(self) -> None:
        """Something was queued: look now rather than at the next due time."""
        self._wake.set()

    async def run(self) -> None:
        """Send as notifications come due; never returns."""
        while True:
            try:
                requeued = await self._store.notifications.requeue_interrupted(self._clock.now())
                await self._count_recent_sends()
                break
            except StoreError as exc:
                log.warning("outbox cannot reach the store", error=str(exc))
                await self._pause()
        if requeued:
            log.warning("notifications interrupted mid-send queued again", count=requeued)
        while True:
            self._wake.clear()
            try:
                await self.flush()
                due = await self._store.notifications.next_due()
            except StoreError as exc:
                log.warning("outbox cannot reach the store", error=str(exc))
                await self._pause()
                continue
            await self._clock.wait(due, self._wake)

    async def _count_recent_sends(self) -> None:
        """Count in the rate limits what was sent within their window before this
        start: a hub restarted in a storm must not send a second window's worth."""
        since = self._clock.now() - self._limits.window
        for row in await self._store.notifications.sent_since(since):
            call = row.call
            self._limits.take(
                call.responder_id, call.channel_key, call.channel_limit, row.updated_at
            )

    async def _pause(self) -> None:
        retry = self._clock.now() + timedelta(seconds=STORE_RETRY_S)
        await self._clock.wait(retry, asyncio.Event())

    async def flush(self) -> None:
        """Send every notification due now; return when each has been settled.

        The pass's claims and rate-limit deferrals go in one transaction, and
        settlements that end together in one: in a storm a write per row queued
        hundreds of commits (each an fsync on SQLite) beside the ingest batches.
        """
        notifications = self._store.notifications
        rows = await notifications.due(self._clock.now())
        if not rows:
            return
        now = self._clock.now()
        ready: list[NotificationRow] = []
        deferred: list[tuple[str, datetime]] = []
        for row in rows:
            call = row.call
            free = self._limits.free_at(
                call.responder_id, call.channel_key, call.channel_limit, now
            )
            if free > now:
                deferred.append((row.id, free))
            else:
                # Counted as the pass goes: the later rows of this pass see it.
                self._limits.take(call.responder_id, call.channel_key, call.channel_limit, now)
                ready.append(row)
        # Read before the claims: a store that refuses the read leaves nothing claimed.
        # One read for the pass: one per message cost the hub's loop a sixth of its
        # time in a storm (docs/performance.md).
        alarm_ids = [row.call.alarm_id for row in ready]
        alarms = await self._store.alarms.get_many(alarm_ids) if ready else {}
        kinds = await self._store.events.kinds_of_alarms(alarm_ids) if ready else {}
        # A call whose alarm was resolved or whose responder was called off since it
        # was queued is withdrawn in the claim, not claimed. Rare enough that the
        # rate-limit slot it took above is not given back.
        claimed = await notifications.take([row.id for row in ready], deferred, now)
        async with asyncio.TaskGroup() as group:
            for row in ready:
                if row.id in claimed:
                    alarm_id = row.call.alarm_id
                    group.create_task(
                        self._bounded(row, alarms.get(alarm_id), kinds.get(alarm_id, ())),
                        name=f"outbox.send[{row.id}]",
                    )

    async def _bounded(
        self, row: NotificationRow, alarm: Alarm | None, kinds: tuple[EventKind, ...]
    ) -> None:
        async with self._slots:
            try:
                await self._attempt(row, alarm, kinds)
            except StoreError as exc:
                # The row stays sending: the next start queues it again.
                log.warning("outbox could not record a send", id=row.id, error=str(exc))

    async def _attempt(
        self, row: NotificationRow, alarm: Alarm | None, kinds: tuple[EventKind, ...]
    ) -> None:
        """Send a claimed row about ``alarm`` (None: no longer stored) and settle it."""
        call = row.call
        outcome = await self._deliver(row, alarm, kinds)
        attempts = row.attempts + 1
        done = self._clock.now()
        if outcome.sent:
            settlement = Settlement(row.id, "sent", done)
            ended = "sent"
        elif not outcome.retryable:
            settlement = Settlement(row.id, "failed", done, outcome.reason)
            ended = "failed"
        else:
            retry_at = self._backoff.next_attempt(attempts, done, self._rand)
            if retry_at is None:
                settlement = Settlement(row.id, "given_up", done, outcome.reason)
                ended = "given_up"
            else:
                settlement = Settlement(row.id, "queued", done, outcome.reason, retry_at)
                ended = "retry"
        await self._settler.settle(settlement)
        self._metrics.notifications.labels(ended, call.channel_label.split(":", 1)[0]).inc()
        log.info(
            "notification",
            id=row.id,
            alarm_id=call.alarm_id,
            responder=call.responder_id,
            channel=call.channel_label,
            attempt=attempts,
            outcome=outcome.kind,
            reason=outcome.reason,
        )

    async def _deliver(
        self, row: NotificationRow, alarm: Alarm | None, kinds: tuple[EventKind, ...]
    ) -> Outcome:
        call = row.call
        responder = self._config.responder_by_id.get(call.responder_id)
        if responder is None or call.channel_index >= len(responder.channels):
            return failed("the responder or channel is no longer configured")
        site = self._config.site_by_id.get(alarm.site) if alarm is not None else None
        if alarm is None or site is None or call.level > len(site.escalation):
            return failed("the alarm, its site or its level is no longer known")
        token = self._tokens.mint(dispatch_id(alarm.id, responder.id), self._clock.now() + LINK_TTL)
        notice = Notice.of(
            alarm,
            site,
            kinds,
            level=call.level,
            respond_url=self._links.page(token),
            snapshot_url=self._links.snapshot(token),
            purpose=call.purpose,
        )
        return await self._sender.send(
            responder, responder.channels[call.channel_index], notice, delivery=row.id
        )


class _Settler:
    """Writes settlements in as few transactions as they allow: those that end while
    one is being written go together in the next (a group commit). Each ``settle``
    returns once its own settlement is stored."""

    def __init__(self, notifications: Notifications) -> None:
        self._notifications = notifications
        self._pending: list[tuple[Settlement, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def settle(self, settlement: Settlement) -> None:
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((settlement, stored))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="outbox.settle")
        await asyncio.shield(stored)

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._notifications.settle_all([settlement for settlement, _ in batch])
            except StoreError as exc:
                for _, stored in batch:
                    if not stored.done():
                        stored.set_exception(exc)
            else:
                for _, stored in batch:
                    if not stored.done():
                        stored.set_result(None)
