"""The outbox sender: sends queued notifications as they come due, beside the alarm
path, never in it.

An escalation only queues rows (in its own transaction, ``hub.store.alarms``);
this loop wakes when told something was queued or when the next row is due,
and sends each due row through the ``Notifier``, a few at a time: a slow or
dead receiver delays its own messages by at most the send timeout, and never
an alarm. Per row: over a rate limit it waits (no attempt spent); otherwise it
is claimed, sent and settled as sent, failed, queued again after a backoff, or
given up once its attempts are spent (``hub.store.notifications``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import timedelta

import structlog

from hub.clock import Clock
from hub.dispatch import dispatch_id
from hub.errors import StoreError
from hub.metrics import HubMetrics
from hub.notify.backoff import Backoff
from hub.notify.links import ResponderLinks
from hub.notify.message import Notice
from hub.notify.notifier import Notifier
from hub.notify.outcome import Outcome, failed
from hub.notify.rate_limit import RateLimits
from hub.responder_tokens import ResponderTokens
from hub.store import NotificationRow, Store
from riverguard.config import Config

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
        notifier: Notifier,
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
        self._notifier = notifier
        self._links = links
        self._tokens = tokens
        self._clock = clock
        self._metrics = metrics
        self._backoff = backoff or Backoff.of(config.notify)
        self._limits = limits or RateLimits(config.notify.responder_per_minute)
        self._rand = rand
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENCY)

    def wake(self) -> None:
        """Something was queued: look now rather than at the next due time."""
        self._wake.set()

    async def run(self) -> None:
        """Send as notifications come due; never returns."""
        while True:
            try:
                requeued = await self._store.notifications.requeue_interrupted(self._clock.now())
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

    async def _pause(self) -> None:
        retry = self._clock.now() + timedelta(seconds=STORE_RETRY_S)
        await self._clock.wait(retry, asyncio.Event())

    async def flush(self) -> None:
        """Send every notification due now; return when each has been settled."""
        rows = await self._store.notifications.due(self._clock.now())
        async with asyncio.TaskGroup() as group:
            for row in rows:
                group.create_task(self._bounded(row), name=f"outbox.send[{row.id}]")

    async def _bounded(self, row: NotificationRow) -> None:
        async with self._slots:
            try:
                await self.send(row)
            except StoreError as exc:
                # The row stays queued or sending: the next pass or start takes it up.
                log.warning("outbox could not record a send", id=row.id, error=str(exc))

    async def send(self, row: NotificationRow) -> None:
        call = row.call
        notifications = self._store.notifications
        now = self._clock.now()
        free = self._limits.free_at(call.responder_id, call.channel_key, call.channel_limit, now)
        if free > now:
            await notifications.defer(row.id, free, now)
            return
        # Counted before the first await: the other sends of this pass see it.
        self._limits.take(call.responder_id, call.channel_key, call.channel_limit, now)
        if not await notifications.claim(row.id, now):
            return
        outcome = await self._deliver(row)
        attempts = row.attempts + 1
        done = self._clock.now()
        retry_at = None
        if outcome.sent:
            await notifications.settle(row.id, "sent", done)
        elif not outcome.retryable:
            await notifications.settle(row.id, "failed", done, outcome.reason)
        else:
            retry_at = self._backoff.next_attempt(attempts, done, self._rand)
            if retry_at is None:
                await notifications.settle(row.id, "given_up", done, outcome.reason)
            else:
                await notifications.settle(row.id, "queued", done, outcome.reason, retry_at)
        ended = "sent" if outcome.sent else "failed" if not outcome.retryable else "retry"
        if outcome.retryable and retry_at is None:
            ended = "given_up"
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

    async def _deliver(self, row: NotificationRow) -> Outcome:
        call = row.call
        responder = self._config.responder_by_id.get(call.responder_id)
        if responder is None or call.channel_index >= len(responder.channels):
            return failed("the responder or channel is no longer configured")
        alarm = await self._store.alarms.get(call.alarm_id)
        site = self._config.site_by_id.get(alarm.site) if alarm is not None else None
        if alarm is None or site is None or call.level > len(site.escalation):
            return failed("the alarm, its site or its level is no longer known")
        events = await self._store.events.of_alarm(alarm.id)
        kinds = tuple(dict.fromkeys(event.kind for event, _ in events if event.kind))
        token = self._tokens.mint(dispatch_id(alarm.id, responder.id), self._clock.now() + LINK_TTL)
        notice = Notice.of(
            alarm,
            site,
            kinds,
            level=call.level,
            respond_url=self._links.page(token),
            snapshot_url=self._links.snapshot(token),
        )
        return await self._notifier.send(
            responder, responder.channels[call.channel_index], notice, delivery=row.id
        )
