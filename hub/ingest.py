"""MQTT ingest: edge messages in, committed events out (PROTOCOL 2 and 3.3).

One persistent broker session, announced by the hub's retained status
(PROTOCOL 7.12: online and taking event batches on connect, its last will
offline, stopped on a clean shutdown). Each message is parsed and checked
once, by the sorter; a batch's events (7.12) each as a single event's would be.
Anything refused is logged with its reason, counted in
``riverguard_hub_rejected_total{reason}`` and kept as a dead letter; the loop
goes on. Messages are taken in batches (whatever is queued, up to
``ingest_batch_max``) and a batch's events are committed in one transaction,
idempotent on the event id. Only then does the hub push alarms and events to
consoles, hand the events to the InfluxDB writer and publish ``committed`` to
each site's edge (duplicates included: they are stored, the edge may forget
them), without waiting for the broker's PUBACK before the next batch.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from hub.announcer import Announcer
from hub.broadcaster import Broadcaster
from hub.desk import AlarmDesk
from hub.errors import BrokerUnavailable, StoreError
from hub.influx_writer import InfluxWriter
from hub.link import BrokerLink
from hub.links import Links
from hub.metrics import HubMetrics
from hub.picture import DeviceState, Picture
from hub.settings import HubSettings
from hub.sorter import (
    DEAD_LETTER_BYTES,
    DeviceStatusIn,
    EdgeStatusIn,
    EventBatchIn,
    EventIn,
    Item,
    Refused,
    Sorter,
)
from hub.store import Batch, CommittedBatch, DeviceRow, EdgeRow, Rejection, Snapshot, Store
from riverguard import __version__
from riverguard.config import Config
from riverguard.mqtt import Backoff, make_client
from riverguard.mqtt_client import Client, MqttError, Subscription, Will
from riverguard.wire import topics
from riverguard.wire.models import (
    EVENT_BATCH,
    AnnouncementAck,
    Availability,
    Committed,
    DeviceStatus,
    EdgeStatus,
    Event,
    HubStatus,
)
from riverguard.wire.reject_reasons import RejectReason
from riverguard.wire.times import format_ts, utcnow

log = structlog.get_logger()

# An edge clock further off than this is logged and counted (the event is kept).
CLOCK_SKEW_S = 300.0
# How long a clean shutdown waits for the broker to take the hub's ``stopped`` status.
STOPPED_STATUS_TIMEOUT_S = 2.0


@dataclass
class Received:
    topic: str
    payload: bytes
    monotonic: float
    # Delivered as retained: stored by the broker, not sent just now.
    retain: bool = False


@dataclass
class _Work:
    """A batch sorted by what it carries."""

    batch: Batch = field(default_factory=Batch)
    # Events to acknowledge without storing them as events (dead letters), per site.
    extra_acks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    arrived: dict[str, float] = field(default_factory=dict)
    device_statuses: list[tuple[str, DeviceStatus]] = field(default_factory=list)
    edge_statuses: list[tuple[str, EdgeStatus]] = field(default_factory=list)
    acks: list[tuple[str, str, AnnouncementAck, str]] = field(default_factory=list)


class Ingest:
    def __init__(
        self,
        *,
        settings: HubSettings,
        config: Config,
        store: Store,
        desk: AlarmDesk,
        announcer: Announcer,
        picture: Picture,
        broadcaster: Broadcaster,
        writer: InfluxWriter,
        link: BrokerLink,
        links: Links,
        metrics: HubMetrics,
    ) -> None:
        self.settings = settings
        self.config = config
        self.store = store
        self.desk = desk
        self.announcer = announcer
        self.picture = picture
        self.broadcaster = broadcaster
        self.writer = writer
        self.link = link
        self.links = links
        self.metrics = metrics
        self.batch_max = settings.ingest_batch_max
        self.min_interval_s = settings.ingest_min_interval_s
        self.sorter = Sorter(config)
        self.subscribed = asyncio.Event()
        # Commit acknowledgements on their way (referenced until done).
        self._acks: set[asyncio.Task[None]] = set()

    # --- connection ----------------------------------------------------------

    async def run(self) -> None:
        backoff = Backoff()
        client = make_client(
            self.settings.broker,
            identifier=self.settings.mqtt_client_id,
            persistent=True,
            keepalive=self.settings.mqtt_keepalive_s,
            will=Will(topics.hub_status(), _hub_status("offline"), qos=1, retain=True),
        )
        while True:
            connected = False
            error = "connection closed"
            try:
                async with client:
                    await client.subscribe(
                        [Subscription(topic) for topic in topics.HUB_SUBSCRIPTIONS]
                    )
                    # Subscribed first: an edge told we take batches finds them heard.
                    await client.publish(
                        topics.hub_status(), _hub_status("online"), qos=1, retain=True
                    )
                    self.link.client = client
                    self.metrics.broker_connected.set(1)
                    self.links.report("broker", "connection", True)
                    self.subscribed.set()
                    backoff.reset()
                    connected = True
                    log.info(
                        "broker connected",
                        host=self.settings.broker.host,
                        port=self.settings.broker.port,
                    )
                    try:
                        await self._consume(client)
                    except asyncio.CancelledError:
                        await _publish_stopped(client)
                        raise
            except MqttError as exc:
                error = str(exc)
            except asyncio.CancelledError:
                error = ""  # the hub is stopping: not a lost link
                raise
            finally:
                self.link.client = None
                self.metrics.broker_connected.set(0)
                if error:
                    self.links.report("broker", "connection", False, error)
                self.subscribed.clear()
            # One line per failed attempt, with the wait before the next.
            delay = backoff.next_delay()
            what = "broker connection lost" if connected else "broker connect failed"
            log.warning(what, error=error, retry_in_s=round(delay, 2))
            await asyncio.sleep(delay)

    async def _consume(self, client: Client) -> None:
        started = 0.0
        while True:
            # Batches start at most every ``min_interval_s``: under load a batch's fixed
            # cost (~3 ms: its transaction, acknowledgements, console frames) was paid
            # up to 140 times a second for batches of ~20 events.
            wait = started + self.min_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            messages = await client.next_batch(self.batch_max)
            arrived = started = time.monotonic()
            received = [Received(m.topic, m.payload, arrived, m.retain) for m in messages]
            try:
                await self.process(received)
            except MqttError:
                raise
            except Exception:
                # A bug must not take ingest down: the batch is not acknowledged, so
                # edges resend it, and the next batch is taken as usual.
                self.metrics.ingest_errors.inc()
                log.exception("ingest batch failed", messages=len(received))

    # --- one batch -----------------------------------------------------------

    async def process(self, received: list[Received]) -> None:
        """Sort, commit, acknowledge, push: one batch, never raising for bad input.

        One transaction, or several when event batches (7.12) bring more than
        ``batch_max`` events: a new one starts once that many are gathered, so a
        message's events always share one and none holds more than ``batch_max``
        plus one batch (a backlog resent in batches must not make one huge commit).
        """
        self.metrics.batch_size.observe(len(received))
        now = utcnow()
        heard_now = self.links.clock.now()
        heard: dict[str, datetime] = {}
        work = _Work()
        kinds: Counter[str] = Counter()
        for message in received:
            if len(work.batch.events) >= self.batch_max:
                await self._commit(work)
                work = _Work()
            try:
                item = self.sorter.sort(message.topic, message.payload, now)
            except Refused as refused:
                self._refuse(message, refused, now, work)
                continue
            kinds[type(item).__name__] += 1
            self._heard(item, message.retain, heard_now, heard)
            self._add(item, message, now, work)
        for kind, count in kinds.items():
            self.metrics.messages_in.labels(kind).inc(count)
        for site, at in heard.items():
            self.links.heard(site, at)
        await self._commit(work)

    def _heard(self, item: Item, retain: bool, now: datetime, heard: dict[str, datetime]) -> None:
        """When ``item`` says its site's edge was last heard (into ``heard``).

        A live message: now. A retained one was stored by the broker, perhaps long
        ago: only an edge status tells when (its own time, never later than now).
        """
        if retain:
            if not isinstance(item, EdgeStatusIn):
                return
            site, at = item.site, min(item.status.ts, now)
        elif isinstance(item, EventIn):
            site, at = item.event.site, now
        elif isinstance(item, EventBatchIn):
            if not item.events:
                return
            site, at = item.events[0].event.site, now
        elif isinstance(item, DeviceStatusIn):
            site, at = self.config.device_by_id[item.device].site, now
        else:
            site, at = item.site, now
        known = heard.get(site)
        if known is None or at > known:
            heard[site] = at

    async def _commit(self, work: _Work) -> None:
        """Commit what ``work`` gathered, then push it, acknowledge it, store the rest."""
        batch = work.batch
        statuses = self._device_states(work.device_statuses)
        batch.devices = [_device_row(d, self.config.device_by_id[d].site, s) for d, s in statuses]
        risk_before = self.desk.risks(e.site for e in batch.events)
        try:
            committed = await self.desk.commit(batch)
        except StoreError as exc:
            # Not acknowledged: the edges resend these events after their timeout.
            log.exception("ingest batch not committed", error=str(exc), events=len(batch.events))
            self.links.report("store", "commit", False, str(exc)[:300])
            return
        self.links.report("store", "commit", True)
        done = time.monotonic()
        self.metrics.events_in.inc(len(committed.new))
        if committed.duplicates:
            self.metrics.duplicates.inc(len(committed.duplicates))
            log.info("duplicate events acknowledged again", count=len(committed.duplicates))
        for event in committed.new:
            self.metrics.commit_latency.observe(done - work.arrived[event.id])

        # Consoles first: the officer's screen should not wait for the broker's PUBACK.
        self._push(committed, work, risk_before)
        self._show_device_states(statuses)
        self._acknowledge(batch.events, work.extra_acks)

        try:
            for site, edge_status in work.edge_statuses:
                await self._edge_status(site, edge_status)
            for site, speaker, ack, topic in work.acks:
                reason = await self.announcer.on_ack(site, speaker, ack)
                if reason is not None:
                    self._count_refusal(topic, reason, f"ack for {ack.id}")
        except StoreError as exc:
            log.exception("status or acknowledgement not stored", error=str(exc))

    def _push(self, committed: CommittedBatch, work: _Work, risk_before: dict[str, str]) -> None:
        """Alarms, site risk and events to consoles; new events to the InfluxDB writer."""
        per_site: dict[str, int] = defaultdict(int)
        for event in committed.new:
            per_site[event.site] += 1
        for site, count in per_site.items():
            self.picture.count_events(site, count)
        self.desk.push_current(
            committed.outcome.changed.values(), risk_before, committed.alarm_json
        )
        for device, (_, seen) in work.batch.last_seen.items():
            self.picture.touch(device, seen)  # once per device: the newest of the batch
        for event in committed.new:
            self.broadcaster.publish_json("event", work.batch.event_json[event.id], site=event.site)
        for snap in work.batch.snapshots:
            # To every console: one that came after its event (PROTOCOL 7.10) shows live.
            self.broadcaster.publish("snapshot", _snapshot_item(snap))
        pushed = time.monotonic()
        for event in committed.new:
            self.metrics.push_latency.observe(pushed - work.arrived[event.id])
        if committed.new:
            self.writer.notify(committed.new)
            self.links.event_committed()

    def _acknowledge(self, events: list[Event], extra: dict[str, list[str]]) -> None:
        """Publish each site's ``committed``, without waiting for the broker's PUBACK:
        the next batch need not wait a broker round trip (a lost one is resent by the
        edge, and a resent event is a duplicate, acknowledged again)."""
        by_site: dict[str, list[str]] = defaultdict(list)
        for event in events:
            by_site[event.site].append(event.id)
        for site, ids in extra.items():
            by_site[site].extend(ids)
        for site, ids in by_site.items():
            payload = Committed(ids=list(dict.fromkeys(ids))).model_dump_json().encode()
            task = asyncio.create_task(self._send_ack(site, payload), name=f"ingest.ack[{site}]")
            self._acks.add(task)
            task.add_done_callback(self._acks.discard)

    async def _send_ack(self, site: str, payload: bytes) -> None:
        try:
            await self.link.publish(topics.committed(site), payload, qos=1)
        except BrokerUnavailable as exc:
            log.warning("commit acknowledgement not sent", site=site, error=str(exc))

    def _add(self, item: Item, message: Received, now: datetime, work: _Work) -> None:
        if isinstance(item, EventIn):
            self._add_event(item, message, now, work)
        elif isinstance(item, EventBatchIn):
            for event in item.events:
                self._add_event(event, message, now, work)
            for refused in item.refused:
                self._refuse(message, refused, now, work)
        elif isinstance(item, Snapshot):
            work.batch.snapshots.append(item)
        elif isinstance(item, DeviceStatusIn):
            work.device_statuses.append((item.device, item.status))
        elif isinstance(item, EdgeStatusIn):
            work.edge_statuses.append((item.site, item.status))
        else:
            work.acks.append((item.site, item.speaker, item.ack, message.topic))

    def _add_event(self, item: EventIn, message: Received, now: datetime, work: _Work) -> None:
        event = item.event
        if item.skew_s > CLOCK_SKEW_S:
            self.metrics.clock_skew.inc()
            log.warning("edge clock skew", event_id=event.id, site=event.site, skew_s=item.skew_s)
        work.batch.events.append(event)
        work.batch.event_json[event.id] = item.json
        seen = work.batch.last_seen.get(event.device)
        if seen is None or event.ts > seen[1]:
            work.batch.last_seen[event.device] = (event.site, event.ts)
        work.batch.received_at.setdefault(event.id, now)
        work.arrived.setdefault(event.id, message.monotonic)

    def _refuse(self, message: Received, refused: Refused, now: datetime, work: _Work) -> None:
        self._count_refusal(message.topic, refused.reason, refused.detail)
        payload = message.payload if refused.payload is None else refused.payload
        work.batch.rejections.append(
            Rejection(
                message.topic[:300],
                refused.reason,
                refused.detail,
                payload[:DEAD_LETTER_BYTES],
                now,
            )
        )
        if refused.ack is not None:
            # Kept as a dead letter in the same transaction: acknowledge it, or the
            # edge would resend it forever.
            site, event_id = refused.ack
            work.extra_acks[site].append(event_id)

    def _count_refusal(self, topic: str, reason: RejectReason, detail: str) -> None:
        self.metrics.count_rejected(reason)
        log.warning("message rejected", reason=reason, topic=topic[:200], detail=detail[:300])

    # --- statuses ------------------------------------------------------------

    def _device_states(
        self, statuses: list[tuple[str, DeviceStatus]]
    ) -> list[tuple[str, DeviceState]]:
        """The devices' new states, newest status per device; a late older one is ignored."""
        states: dict[str, DeviceState] = {}
        for device_id, status in statuses:
            current = states.get(device_id) or self.picture.devices.get(device_id, DeviceState())
            if current.status_ts is not None and status.ts < current.status_ts:
                continue  # an older status arriving late: the newer one stands
            seen = max(status.ts, current.last_seen) if current.last_seen else status.ts
            states[device_id] = DeviceState(
                status.online, status.battery, status.rssi, status.ts, seen
            )
        return list(states.items())

    def _show_device_states(self, states: list[tuple[str, DeviceState]]) -> None:
        """Committed device states into the picture and out to consoles."""
        sites = set()
        for device_id, state in states:
            self.picture.set_status(device_id, state)
            site = self.config.device_by_id[device_id].site
            self.broadcaster.publish("device", self.picture.device_item(device_id), site)
            sites.add(site)
        if sites:
            # An offline fence or camera leaves its zones unguarded: the sites' risk moves.
            self.desk.refresh_sites(sorted(sites))

    async def _edge_status(self, site: str, status: EdgeStatus) -> None:
        current = self.picture.edges.get(site)
        if current is not None and status.ts < current.ts:
            if status.state != "offline" or not current.online:
                return  # an older status arriving late: the newer one stands
            # The edge's last will: composed when it connected, so older than the statuses
            # it sent since, and sent by the broker only after them, once the link died.
            # It stands, as of now.
            status = status.model_copy(update={"ts": max(utcnow(), current.ts)})
        row = EdgeRow(
            site, status.online, status.version, status.outbox, status.ts, state=status.state
        )
        await self.store.devices.save_edge(row)  # stored first: what consoles see is on disk
        self.picture.edges[site] = row
        self.broadcaster.publish("edge", self.picture.edge_item(site))
        if current is None or current.online != row.online:
            # An edge that is not online leaves its site's zones unguarded: the risk moves.
            self.desk.refresh_sites([site])


def _hub_status(state: Availability) -> bytes:
    status = HubStatus(
        online=state == "online",
        state=state,
        accepts=[EVENT_BATCH],
        version=__version__,
        ts=utcnow(),
    )
    return status.model_dump_json().encode()


async def _publish_stopped(client: Client) -> None:
    """A clean shutdown: ``stopped`` replaces ``online`` (the will is not sent)."""
    try:
        async with asyncio.timeout(STOPPED_STATUS_TIMEOUT_S):
            await client.publish(topics.hub_status(), _hub_status("stopped"), qos=1, retain=True)
    except (MqttError, TimeoutError) as exc:
        log.warning("stopped status not published", error=str(exc))


def _snapshot_item(snap: Snapshot) -> dict[str, str]:
    return {
        "event_id": snap.event_id,
        "site": snap.site,
        "snapshot_url": f"/api/events/{snap.event_id}/snapshot",
        "received_at": format_ts(snap.received_at),
    }


def _device_row(device_id: str, site: str, state: DeviceState) -> DeviceRow:
    return DeviceRow(
        device_id, site, state.online, state.battery, state.rssi, state.status_ts, state.last_seen
    )
