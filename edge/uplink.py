"""The edge's uplink: the hub's side, through the central broker.

One persistent MQTT session with the central broker (``EdgeSettings.broker``,
over TLS when it leaves the machine), reconnected forever, its will the edge's
retained ``offline`` status. Per connection, in one TaskGroup:

- ``receiver``: the hub's commits (events leave the outbox), its retained status
  (batches or not, PROTOCOL 7.12), announce and stop commands (handed to the
  field side, which owns the speakers);
- ``publisher``: first send of new events (snapshot first, then the event),
  handed over by the field side once the outbox has them on disk; several to a
  message (7.12) while the hub's retained status says it takes batches;
- ``resender``: events the hub has not committed within ``commit_timeout_s``,
  oldest first, paced. An event resent for lack of a commit means the hub is
  not committing (away, or its link is); the resender then only probes with
  the oldest uncommitted event, once per tick, instead of flooding a link
  nobody reads. The hub's next commit ends that: the outbox is reset to insertion
  order and the whole backlog goes out again, oldest first, at ``resend_per_s``;
- ``outgoing``: acks, device statuses and late snapshots the field side posted
  (``edge.outgoing``), in order;
- ``status``: the retained edge status, refreshed.

On every connection the outbox is reset: whatever was sent before may be lost,
so everything uncommitted goes again, oldest first (the hub stores an event once).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import structlog

import riverguard
from edge.adapters import parse_message
from edge.errors import Rejected
from edge.lifecycle import SideReady, Stopping, raise_when_set, sleep_unless
from edge.metrics import EdgeMetrics
from edge.outbox import Outbox, OutboxEntry
from edge.outgoing import Message as OutgoingMessage
from edge.outgoing import Outgoing
from edge.settings import EdgeSettings
from riverguard.mqtt import Backoff, make_client
from riverguard.mqtt_client import Client, MqttError, Subscription, Will
from riverguard.wire import batches, topics
from riverguard.wire.models import MAX_BATCH_EVENTS, Availability, Committed, EdgeStatus, HubStatus
from riverguard.wire.topics import HubTopic, SiteTopic, TopicError

log = structlog.get_logger()

# Events handed to the broker per round trip of PUBACKs: one message each, or batches
# (PROTOCOL 7.12) of up to MAX_BATCH_EVENTS when the hub takes them.
PUBLISH_BATCH = 100
# Hub messages handled per wake-up of the receiver.
RECEIVE_BATCH = 100
# Outgoing messages published per PUBACK round trip.
OUTGOING_BATCH = 100
# How often a message held for its event's commit is looked at again.
HELD_RECHECK_S = 0.2

# The field side's handlers of the hub's commands: (speaker id, payload).
Command = Callable[[str, bytes], Awaitable[None]]


class Uplink:
    def __init__(
        self,
        settings: EdgeSettings,
        site: str,
        *,
        clock: Callable[[], datetime],
        outbox: Outbox,
        outgoing: Outgoing,
        metrics: EdgeMetrics,
        announce: Command,
        stop_speaker: Command,
        reject: Callable[[Rejected, str], None],
        on_ready_change: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.site = site
        self.clock = clock
        self.outbox = outbox
        self.outgoing = outgoing
        self.metrics = metrics
        self._announce = announce
        self._stop_speaker = stop_speaker
        self._reject = reject
        # Set while connected to the central broker and subscribed.
        self.ready = SideReady(on_ready_change)
        # Events on disk waiting for their first send (``_publisher``), oldest first.
        self._fresh: collections.deque[OutboxEntry] = collections.deque()
        self._fresh_added = asyncio.Event()
        # Set when an event needed a resend: the hub is not committing (see the module doc).
        self.hub_silent = False
        # What the hub's latest retained status (7.12) says: it is online and takes event
        # batches. False until a status says so, on every connection.
        self.hub_takes_batches = False
        self._connected_at = 0.0  # monotonic
        # Counts connections: what was kept during an earlier one is not handed on.
        self._connection = 0
        self.client = make_client(
            settings.broker,
            identifier=f"edge-{site}",
            persistent=True,
            will=Will(topics.edge_status(site), self._status("offline"), qos=1, retain=True),
        )
        self._name = f"edge[{site}].uplink"
        self.log = log.bind(site=site, side="uplink")

    @property
    def hub_unreachable(self) -> bool:
        """The hub is not committing, or the uplink is down: the site is on its own."""
        return self.hub_silent or not self.ready.is_set()

    def hand_over(self) -> Callable[[list[OutboxEntry]], None]:
        """Where the events kept now go once on disk: to their first send.

        Not if the uplink is down by then, or was reconnected since: its reset of the
        outbox made them due, and the resender carries them.
        """
        connection = self._connection

        def hand(entries: list[OutboxEntry]) -> None:
            if entries and connection == self._connection and self.ready.is_set():
                self._fresh.extend(entries)
                self._fresh_added.set()

        return hand

    # --- lifecycle ----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, serve, reconnect on loss; return after a clean shutdown once ``stop`` is set."""
        backoff = Backoff()
        client = self.client
        while not stop.is_set():
            try:
                async with client:
                    backoff.reset()
                    await self._session(client, stop)
                    await self._publish_status(client, "stopped")
                self.log.info("edge stopped", outbox=len(self.outbox))
            except* MqttError as group:
                self.ready.mark(False)
                delay = backoff.next_delay()
                self.log.warning(
                    "broker connection lost", error=str(group.exceptions[0]), retry_in_s=delay
                )
                await sleep_unless(stop, delay)

    async def _session(self, client: Client, stop: asyncio.Event) -> None:
        await client.subscribe(
            [Subscription(topic) for topic in topics.edge_subscriptions(self.site)]
        )
        await self.outbox.reset()  # whatever was sent before may be lost: send it all again
        self.hub_takes_batches = False  # until the hub's retained status, just subscribed to
        self._fresh.clear()  # in the outbox already, and due after the reset
        self._connection += 1
        await self._publish_status(client, "online")
        self.metrics.connects.inc()
        self._connected_at = time.monotonic()
        self.log.info("edge online", outbox=len(self.outbox), version=riverguard.__version__)
        self.ready.mark(True)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receiver(client), name=f"{self._name}.receiver")
                tg.create_task(self._publisher(client), name=f"{self._name}.publisher")
                tg.create_task(self._resender(client), name=f"{self._name}.resender")
                tg.create_task(self._outgoing(client), name=f"{self._name}.outgoing")
                tg.create_task(self._status_refresher(client), name=f"{self._name}.status")
                tg.create_task(raise_when_set(stop), name=f"{self._name}.stop")
        except* Stopping:
            pass
        finally:
            self.ready.mark(False)

    # --- status ---------------------------------------------------------------------

    def _status(self, state: Availability) -> str:
        return EdgeStatus(
            online=state == "online",
            state=state,
            ts=self.clock(),
            version=riverguard.__version__,
            outbox=len(self.outbox),
            dropped=self.outbox.dropped,
        ).model_dump_json()

    async def _publish_status(self, client: Client, state: Availability) -> None:
        await client.publish(topics.edge_status(self.site), self._status(state), qos=1, retain=True)

    async def _status_refresher(self, client: Client) -> None:
        while True:
            await asyncio.sleep(self.settings.status_interval_s)
            await self._publish_status(client, "online")

    # --- receiving ------------------------------------------------------------------

    async def _receiver(self, client: Client) -> None:
        while True:
            for message in await client.next_batch(RECEIVE_BATCH):
                topic = message.topic
                try:
                    await self._handle(topic, message.payload)
                except Rejected as exc:
                    self._reject(exc, topic)
                except MqttError as exc:
                    # Only the site broker's client can fail here (a command for a
                    # speaker while the site broker is away): not this connection's.
                    self.metrics.count_rejected("field_down")
                    self.log.warning("command not passed on", topic=topic[:200], error=str(exc))
                except Exception:
                    # A bug in handling one message must not stop the site's edge.
                    self.log.exception("message handling failed", topic=topic[:200])
                    self.metrics.count_rejected("internal")

    async def _handle(self, topic: str, payload: bytes) -> None:
        try:
            parsed = topics.parse(topic)
        except TopicError as exc:
            raise Rejected("bad_topic", str(exc)) from None
        if isinstance(parsed, HubTopic):
            self._hub_status(payload)
            return
        if not isinstance(parsed, SiteTopic):
            raise Rejected("bad_topic", f"not for an edge: {topic[:120]}")
        if parsed.site != self.site:
            raise Rejected("wrong_site", f"topic is for site {parsed.site}")
        if parsed.kind == "committed":
            await self._committed(payload)
        elif parsed.kind == "announce" and parsed.name is not None:
            await self._announce(parsed.name, payload)
        elif parsed.kind == "stop" and parsed.name is not None:
            await self._stop_speaker(parsed.name, payload)
        else:
            raise Rejected("bad_topic", f"an edge does not read {parsed.kind} topics")

    async def _committed(self, payload: bytes) -> None:
        committed = parse_message(Committed, payload)
        removed = await self.outbox.ack(committed.ids)
        self.metrics.committed.inc(removed)
        self.metrics.outbox.set(len(self.outbox))
        if removed and self.hub_silent:
            self.hub_silent = False
            await self.outbox.reset()  # the backlog goes out again, oldest first
            self.log.info("hub commits again; resending the backlog", outbox=len(self.outbox))

    def _hub_status(self, payload: bytes) -> None:
        """How events go to the hub from now on: in batches only while it says it takes them."""
        if not payload:  # an empty retained message: the status was deleted
            self._send_batches(False)
            return
        try:
            status = parse_message(HubStatus, payload)
        except Rejected:
            self._send_batches(False)  # what the hub takes is unknown: one event per message
            raise
        self._send_batches(status.takes_event_batches)

    def _send_batches(self, takes: bool) -> None:
        if takes != self.hub_takes_batches:
            self.hub_takes_batches = takes
            self.log.info("hub takes event batches" if takes else "one event per message")

    # --- sending --------------------------------------------------------------------

    async def _outgoing(self, client: Client) -> None:
        """Acks, statuses and late snapshots, in the order posted."""
        queue = self.outgoing
        while True:
            ready = queue.ready(self._held)[:OUTGOING_BATCH]
            if not ready:
                await queue.wait(HELD_RECHECK_S if len(queue) else 3600.0)
                continue
            for message in ready:
                await client.publish(message.topic, message.payload, qos=1, retain=message.retain)
            queue.done(ready)
            self.metrics.uplink_queued.set(len(queue))

    def _held(self, message: OutgoingMessage) -> bool:
        """Held for its event's commit, at most ``commit_timeout_s`` of this connection."""
        assert message.after_event is not None
        waited = time.monotonic() - max(message.posted_at, self._connected_at)
        return message.after_event in self.outbox and waited < self.settings.commit_timeout_s

    async def _publisher(self, client: Client) -> None:
        while True:
            await self._fresh_added.wait()
            fresh = self._fresh
            batch = [fresh.popleft() for _ in range(min(self._send_size(), len(fresh)))]
            if not fresh:
                self._fresh_added.clear()
            # On disk already (the field side hands them over then): nothing leaves the
            # edge before it is stored.
            await self._send(client, batch)
            await self.outbox.mark_sent(batch, time.monotonic())
            self.metrics.published.inc(len(batch))

    async def _resender(self, client: Client) -> None:
        timeout = self.settings.commit_timeout_s
        tick = min(1.0, timeout / 2)
        per_tick = max(1, int(self.settings.resend_per_s * tick))
        while True:
            limit = 1 if self.hub_silent else per_tick
            due = await self.outbox.due(time.monotonic(), timeout, limit)
            # Sent, and due again: not committed in time (a reset clears sent_at instead).
            if not self.hub_silent and any(e.sends and e.sent_at is not None for e in due):
                self.hub_silent = True
                self.log.warning("hub not committing; probing", outbox=len(self.outbox))
                due = due[:1]
            if due:
                await self.outbox.flush()
                first_sends = sum(1 for entry in due if entry.sends == 0)
                size = self._send_size()
                for start in range(0, len(due), size):
                    chunk = due[start : start + size]
                    await self._send(client, chunk)
                    await self.outbox.mark_sent(chunk, time.monotonic())
                if self.hub_silent:
                    # The next probe is the oldest event again, not the next in line: the
                    # hub, back, then sees the backlog in its order, from the probe on.
                    await self.outbox.reset()
                self.metrics.published.inc(first_sends)
                self.metrics.resent.inc(len(due) - first_sends)
                self.log.info(
                    "events resent",
                    count=len(due),
                    first=due[0].id,
                    last=due[-1].id,
                    outbox=len(self.outbox),
                )
            await asyncio.sleep(tick)

    def _send_size(self) -> int:
        return MAX_BATCH_EVENTS if self.hub_takes_batches else PUBLISH_BATCH

    async def _send(self, client: Client, entries: Sequence[OutboxEntry]) -> None:
        """Publish events in order, each snapshot acknowledged by the broker before its event.

        Events go out together (one PUBACK round trip per call, not per event),
        in call order: in batches (7.12) if the hub takes them, else one per message.
        """
        site = self.site
        events_topic = topics.events(site)
        batch_topic = topics.event_batch(site)
        index = 0
        while index < len(entries):
            entry = entries[index]
            if entry.snapshot is not None:
                await client.publish(topics.snapshot(site, entry.id), entry.snapshot, qos=1)
            # The run of events up to the next one with a snapshot goes out together.
            end = index + 1
            while end < len(entries) and entries[end].snapshot is None:
                end += 1
            payloads = [item.payload for item in entries[index:end]]
            if self.hub_takes_batches:
                packed = batches.pack(payloads)
                await client.publish_many([(batch_topic, payload) for payload in packed])
                self.metrics.batches.inc(len(packed))
            else:
                await client.publish_many([(events_topic, payload) for payload in payloads])
            index = end
