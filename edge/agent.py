"""The edge agent of one site: one persistent MQTT session, reconnected forever.

Per connection, in one TaskGroup:
- ``receiver``: device reports -> events (into the outbox and to the publisher),
  device statuses -> relayed, speaker states -> acks, hub commands
  (announce, stop, committed);
- ``publisher``: first send of new events (snapshot first, then the event),
  handed over once the outbox has them on disk; several to a message
  (PROTOCOL 7.12) while the hub's retained status says it takes batches, one
  per message otherwise;
- ``resender``: events the hub has not committed within ``commit_timeout_s``,
  oldest first, paced. An event resent for lack of a commit means the hub is
  not committing (away, or its link is); the resender then only probes with
  the oldest uncommitted event, once per tick, instead of flooding a broker
  nobody reads. The hub's next commit ends that: the outbox is reset to insertion
  order and the whole backlog goes out again, oldest first, at
  ``resend_per_s``;
- ``status``: the retained edge status, refreshed;
- ``heartbeats``: with ``device_offline_after_s``, a device whose last status
  said online and that sent none for that long is reported offline (retained,
  as if the device had said so) until it speaks again;
- ``speaker[<id>]``: one worker per speaker driver.

The outbox and the speakers' queues outlive a connection; a reconnect resends
everything still uncommitted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import os
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import httpx
import structlog

import riverguard
from edge.adapters import Adapted, LateSnapshot, check_device, parse_message
from edge.audio import AudioCache, on_hub
from edge.deterrence import Deterrence
from edge.errors import AudioError, Rejected, Skipped
from edge.event_ids import EventIds
from edge.http_speaker import HttpSpeaker
from edge.local_speaker import LocalSpeaker
from edge.metrics import EdgeMetrics
from edge.normalizer import Normalizer
from edge.outbox import MemoryOutbox, Outbox, OutboxEntry
from edge.settings import EdgeSettings
from edge.sources import Raw, Source, build_sources
from edge.speakers import Acks, MqttSpeaker, SpeakerDriver
from edge.sqlite_outbox import SqliteOutbox
from edge.warning import prepare_warning
from riverguard import policy
from riverguard.config import Config
from riverguard.mqtt import Backoff, make_client
from riverguard.mqtt_client import Client, Message, MqttError, Subscription, Will
from riverguard.wire import batches, topics
from riverguard.wire.models import (
    MAX_BATCH_EVENTS,
    Announce,
    Availability,
    Committed,
    DeviceStatus,
    EdgeStatus,
    HubStatus,
    SpeakerState,
    Stop,
)
from riverguard.wire.times import utcnow
from riverguard.wire.topics import FieldTopic, HubTopic, SiteTopic, TopicError

log = structlog.get_logger()

# Events handed to the broker per round trip of PUBACKs: one message each, or batches
# (PROTOCOL 7.12) of up to MAX_BATCH_EVENTS when the hub takes them.
PUBLISH_BATCH = 100
# Device messages handled per wake-up of the receiver; acknowledged together.
RECEIVE_BATCH = 500
# The ack of an announce whose audio is not the hub's: no more than that.
NOT_HUB_AUDIO = "audio URL is not the hub's"


class _Stopping(Exception):
    """Raised inside a session's TaskGroup to end it for a clean shutdown."""


class EdgeAgent:
    def __init__(
        self,
        settings: EdgeSettings,
        config: Config,
        *,
        clock: Callable[[], datetime] = utcnow,
        outbox: Outbox | None = None,
        metrics: EdgeMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.site = config.site(settings.site)
        self.devices = {device.id: device for device in config.devices_of(self.site.id)}
        self.clock = clock
        self.metrics = metrics or EdgeMetrics()
        self.outbox: Outbox = outbox or _make_outbox(settings)
        self.normalizer = Normalizer(
            self.site,
            self.devices,
            clock_ahead_max_s=settings.clock_ahead_max_s,
            clock_behind_max_s=settings.clock_behind_max_s,
        )
        self._sequences_path = settings.data_dir / "sequences.json"
        self.sources = build_sources(self.site, self.devices)
        self.acks = Acks(self.site.id, clock, self.metrics)
        self.speakers: dict[str, SpeakerDriver] = {}
        # Set while connected and subscribed; tests and the supervisor wait on it.
        self.ready = asyncio.Event()
        # Events kept while handling the current batch of messages; then, once on disk,
        # those waiting for their first send (``_publisher``), oldest first.
        self._kept: list[OutboxEntry] = []
        self._fresh: collections.deque[OutboxEntry] = collections.deque()
        self._fresh_added = asyncio.Event()
        # Counts connections: what a batch of an earlier one left is not handed on.
        self._connection = 0
        # Set when an event needed a resend: the hub is not committing (see the module doc).
        self.hub_silent = False
        # What the hub's latest retained status (7.12) says: it is online and takes event
        # batches. False until a status says so, on every connection.
        self.hub_takes_batches = False
        # Devices' last status (online or not) and when it came (monotonic), and those
        # the edge reported offline for missing heartbeats.
        self._device_online: dict[str, bool] = {}
        self._device_heard: dict[str, float] = {}
        self.devices_offline: set[str] = set()
        # Base URL of the edge's own HTTP port, for audio it serves (set by main).
        self.audio_base_url: str | None = settings.audio_base_url
        self.deterrence: Deterrence | None = None
        self._name = f"edge[{self.site.id}]"
        self.log = log.bind(site=self.site.id)

    # --- lifecycle ----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, serve, reconnect on loss; return after a clean shutdown once ``stop`` is set."""
        client = make_client(
            self.settings.broker,
            identifier=f"edge-{self.site.id}",
            persistent=True,
            will=Will(
                topics.edge_status(self.site.id), self._status("offline"), qos=1, retain=True
            ),
            # A device's message is acknowledged to the broker only once its event is on
            # disk (``_receiver``), so a kill -9 between the two loses nothing: the broker
            # redelivers it.
            manual_ack=True,
        )
        await self.outbox.open()
        await self._load_sequences()
        # A small file, made once: still, disk I/O blocks.
        self.normalizer.ids = await asyncio.to_thread(
            EventIds.load_or_create, self.settings.data_dir
        )
        try:
            async with asyncio.TaskGroup() as tg:
                writer = tg.create_task(self.outbox.run(), name=f"{self._name}.outbox")
                await self._serve(client, stop)
                writer.cancel()
        finally:
            await self._save_sequences()
            await self.outbox.close()

    async def _load_sequences(self) -> None:
        """Devices' boots and highest seqs as the last run left them (see edge.dedup)."""
        path = self._sequences_path
        try:
            # A small file, read once at start; still, disk reads block.
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
            self.normalizer.sequences.load(json.loads(text))
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            self.log.warning("device sequences unreadable; starting afresh", error=str(exc))

    async def _save_sequences(self) -> None:
        state = json.dumps(self.normalizer.sequences.state())
        try:
            # Written on a device restart, every status refresh and at stop; fsync blocks.
            await asyncio.to_thread(_write_atomically, self._sequences_path, state)
        except OSError as exc:
            self.log.warning("device sequences not saved", error=str(exc))

    async def _serve(self, client: Client, stop: asyncio.Event) -> None:
        backoff = Backoff()
        # The hub's HTTPS may carry a private CA's certificate: that CA is trusted too
        # (besides the system's, for speakers that serve a public one).
        verify: ssl.SSLContext | bool = True
        if self.settings.hub_ca_file is not None:
            verify = ssl.create_default_context()
            verify.load_verify_locations(cafile=self.settings.hub_ca_file)
        async with httpx.AsyncClient(timeout=self.settings.http_timeout_s, verify=verify) as http:
            self.audio = AudioCache(
                self.settings.data_dir / "audio",
                http,
                total_bytes=self.settings.audio_cache_bytes,
            )
            self._build_speakers(self.audio, http)
            self.deterrence = Deterrence(
                self.site,
                self.devices,
                speakers=self.speakers,
                acks=self.acks,
                metrics=self.metrics,
                clock=self.clock,
                committed=lambda event_id: event_id not in self.outbox,
                hub_silent=lambda: self.hub_silent,
            )
            await self._prepare_warning()
            while not stop.is_set():
                try:
                    async with client:
                        backoff.reset()
                        await self._session(client, stop)
                        await self._publish_status(client, "stopped")
                    self.log.info("edge stopped", outbox=len(self.outbox))
                except* MqttError as group:
                    self.ready.clear()
                    delay = backoff.next_delay()
                    self.log.warning(
                        "broker connection lost", error=str(group.exceptions[0]), retry_in_s=delay
                    )
                    await _sleep_unless(stop, delay)

    async def _prepare_warning(self) -> None:
        if self.deterrence is None or not self.deterrence.enabled:
            return
        if self.audio_base_url is None:
            self.log.warning("auto warning needs the edge's HTTP port (metrics_port); off")
            return
        try:
            warning = await prepare_warning(
                self.site, self.settings.data_dir / "audio", self.audio_base_url
            )
            self.audio.pinned.add(warning.sha256)  # needed most when the hub is away
            self.deterrence.warning = warning
        except AudioError as exc:
            self.log.warning("default warning could not be rendered", error=str(exc))

    def _build_speakers(self, audio: AudioCache, http: httpx.AsyncClient) -> None:
        for device in self.devices.values():
            if device.type != "speaker":
                continue
            if device.driver == "mqtt":
                self.speakers[device.id] = MqttSpeaker(
                    self.site.id,
                    device,
                    audio,
                    self.acks,
                    self.clock,
                    response_timeout_s=self.settings.speaker_response_timeout_s,
                    done_margin_s=self.settings.speaker_done_margin_s,
                )
            elif device.driver == "http":
                self.speakers[device.id] = HttpSpeaker(
                    device,
                    audio,
                    self.acks,
                    self.clock,
                    http,
                    done_margin_s=self.settings.speaker_done_margin_s,
                )
            else:  # "local": the config allows no other driver
                self.speakers[device.id] = LocalSpeaker(
                    device,
                    audio,
                    self.acks,
                    self.clock,
                    sound_device=self.settings.local_audio_device,
                    player=self.settings.local_audio_player,
                )

    async def _session(self, client: Client, stop: asyncio.Event) -> None:
        site = self.site.id
        await client.subscribe(
            [
                # noLocal: our own play/stop commands to the speakers need not come back.
                Subscription(topics.field_site_filter(site), no_local=True),
                *(Subscription(topic) for topic in topics.edge_subscriptions(site)),
                *(
                    Subscription(topic)
                    for source in self.sources
                    for topic in source.subscriptions()
                ),
            ]
        )
        await self.outbox.reset()  # whatever was sent before may be lost: send it all again
        self._connection += 1
        self.hub_takes_batches = False  # until the hub's retained status, just subscribed to
        if self._kept:  # kept in a batch the lost connection cut short
            self.metrics.events.inc(len(self._kept))
            self._kept.clear()
        self._fresh.clear()  # in the outbox already, and due after the reset
        await self._publish_status(client, "online")
        self.metrics.connects.inc()
        self.log.info("edge online", outbox=len(self.outbox), version=riverguard.__version__)
        self.ready.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receiver(client), name=f"{self._name}.receiver")
                tg.create_task(self._publisher(client), name=f"{self._name}.publisher")
                tg.create_task(self._resender(client), name=f"{self._name}.resender")
                tg.create_task(self._status_refresher(client), name=f"{self._name}.status")
                if self.deterrence is not None and self.deterrence.enabled:
                    tg.create_task(self.deterrence.run(client), name=f"{self._name}.deterrence")
                if self.settings.device_offline_after_s:
                    tg.create_task(self._heartbeats(client), name=f"{self._name}.heartbeats")
                for speaker_id, speaker in self.speakers.items():
                    tg.create_task(speaker.run(client), name=f"{self._name}.speaker[{speaker_id}]")
                tg.create_task(_raise_when_set(stop), name=f"{self._name}.stop")
        except* _Stopping:
            pass
        finally:
            self.ready.clear()

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
        await client.publish(
            topics.edge_status(self.site.id), self._status(state), qos=1, retain=True
        )

    async def _status_refresher(self, client: Client) -> None:
        while True:
            await asyncio.sleep(self.settings.status_interval_s)
            await self._publish_status(client, "online")
            await self._save_sequences()

    async def _heartbeats(self, client: Client) -> None:
        """Report offline the devices that stopped sending their status."""
        after = self.settings.device_offline_after_s
        tick = min(5.0, after / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            silent = [
                device
                for device, heard in self._device_heard.items()
                if self._device_online.get(device)
                and device not in self.devices_offline
                and now - heard > after
            ]
            for device in silent:
                self.devices_offline.add(device)
                status = DeviceStatus(online=False, ts=self.clock())
                await client.publish(
                    topics.device_status(self.site.id, device),
                    status.model_dump_json(),
                    qos=1,
                    retain=True,
                )
                self.metrics.device_timeouts.inc()
                self.log.warning("device missed its heartbeats", device=device, after_s=after)
                speaker = self.speakers.get(device)
                if speaker is not None:
                    await speaker.on_status(client, False)

    # --- receiving ------------------------------------------------------------------

    async def _receiver(self, client: Client) -> None:
        while True:
            batch = await client.next_batch(RECEIVE_BATCH)
            for message in batch:
                await self._receive(client, message)
            kept, self._kept = self._kept, []
            if kept:
                self.metrics.events.inc(len(kept))
                self.metrics.outbox.set(len(self.outbox))
            # The messages are acknowledged to the broker, and their events handed to the
            # publisher, all together once the events are on disk.
            self.outbox.when_durable(
                functools.partial(self._on_disk, client, self._connection, batch, kept)
            )

    def _on_disk(
        self, client: Client, connection: int, messages: list[Message], kept: list[OutboxEntry]
    ) -> None:
        # The ack of a connection lost by then is skipped (the broker redelivers).
        with contextlib.suppress(MqttError):
            client.ack(messages)
        if kept and connection == self._connection:  # else due after the reconnect's reset
            self._fresh.extend(kept)
            self._fresh_added.set()

    async def _receive(self, client: Client, message: Message) -> None:
        topic = message.topic
        try:
            source = next((s for s in self.sources if s.matches(topic)), None)
            if source is not None:
                await self._from_source(client, source, Raw(topic, message.payload, message.retain))
            else:
                await self._handle(client, topic, message.payload)
        except Rejected as exc:
            self._reject(exc, topic)
        except MqttError:
            raise
        except Exception:
            # A bug in handling one message must not stop the site's edge.
            self.log.exception("message handling failed", topic=topic[:200])
            self.metrics.rejected.labels("internal").inc()

    def _reject(self, exc: Rejected, topic: str) -> None:
        self.metrics.rejected.labels(exc.reason).inc()
        self.log.warning(
            "message rejected", reason=exc.reason, detail=exc.detail, topic=topic[:200]
        )

    async def _handle(self, client: Client, topic: str, payload: bytes) -> None:
        try:
            parsed = topics.parse(topic)
        except TopicError as exc:
            raise Rejected("bad_topic", str(exc)) from None
        if isinstance(parsed, FieldTopic):
            if parsed.kind == "report":
                await self._ingest(parsed, payload)
            elif parsed.kind == "status":
                await self._relay_status(client, parsed, payload)
            elif parsed.kind == "state":
                await self._speaker_state(client, parsed, payload)
            # "play" and "stop" are commands to speakers, not for the edge to read.
            return
        if isinstance(parsed, HubTopic):
            self._hub_status(payload)
            return
        if not isinstance(parsed, SiteTopic):
            raise Rejected("bad_topic", f"not for an edge: {topic[:120]}")
        if parsed.site != self.site.id:
            raise Rejected("wrong_site", f"topic is for site {parsed.site}")
        if parsed.kind == "committed":
            await self._committed(parsed, payload)
        elif parsed.kind == "announce" and parsed.name is not None:
            await self._announce(client, parsed.name, payload)
        elif parsed.kind == "stop" and parsed.name is not None:
            await self._stop(client, parsed.name, payload)
        else:
            raise Rejected("bad_topic", f"an edge does not read {parsed.kind} topics")

    async def _from_source(self, client: Client, source: Source, raw: Raw) -> None:
        try:
            made = self.normalizer.vendor(source, raw, self.clock())
        except Skipped as exc:
            self.metrics.skipped.labels(source.source, exc.reason).inc()
            self.log.debug("no event", source=source.source, reason=exc.reason, detail=exc.detail)
            return
        for item in made:
            if isinstance(item, Adapted):
                await self._keep(item)
            else:
                await self._late_snapshot(client, item)

    async def _late_snapshot(self, client: Client, late: LateSnapshot) -> None:
        """A picture of an event sent earlier without one.

        Published once at QoS 1 and not kept in the outbox: the hub stores it
        by event id whenever it comes, and losing it loses a picture, never an event.
        """
        await client.publish(topics.snapshot(self.site.id, late.event_id), late.jpeg, qos=1)
        self.metrics.late_snapshots.inc()
        self.log.info("late snapshot sent", event_id=late.event_id, bytes=len(late.jpeg))

    async def _ingest(self, topic: FieldTopic, payload: bytes) -> None:
        await self._keep(self.normalizer.report(topic, payload, self.clock()))

    async def _keep(self, adapted: Adapted) -> None:
        """An accepted event: into the outbox, then to the publisher."""
        event = adapted.event
        if adapted.snapshot_problem is not None:
            self.metrics.rejected.labels("bad_snapshot").inc()
            self.log.warning(
                "snapshot left out",
                event_id=event.id,
                reason="bad_snapshot",
                detail=adapted.snapshot_problem,
            )
        if adapted.clock_replaced:
            self.metrics.clock_skew.inc()
            self.log.warning(
                "device clock skewed; edge time used",
                device=event.device,
                event_id=event.id,
                device_ahead_s=round(adapted.skew_s, 1),
            )
        if adapted.restarted:
            self.metrics.device_restarts.inc()
            self.log.warning("device restarted; new ids", device=event.device, event_id=event.id)
            await self._save_sequences()
        if "correlated" in event.attrs:
            self.metrics.correlated.inc()
        entry = OutboxEntry.of(event, adapted.snapshot)
        entry.sent_at = time.monotonic()  # handed to the publisher: not due for a resend yet
        dropped = await self.outbox.add(entry)
        if dropped:
            self.metrics.outbox_dropped.inc(dropped)
            self.log.error("outbox full, oldest events dropped", dropped=dropped)
        self._kept.append(entry)  # counted and handed on with the rest of its batch
        if self.deterrence is not None:
            self.deterrence.observe(event)
        log_event = self.log.info if event.severity == "critical" else self.log.debug
        log_event(
            "event",
            id=event.id,
            kind=event.kind,
            zone=event.zone,
            severity=event.severity,
            correlated=event.attrs.get("correlated"),
        )

    async def _relay_status(self, client: Client, topic: FieldTopic, payload: bytes) -> None:
        status = self.normalizer.status(topic, payload, self.clock())
        self._device_online[topic.device] = status.online
        self._device_heard[topic.device] = time.monotonic()
        self.devices_offline.discard(topic.device)
        await client.publish(
            topics.device_status(self.site.id, topic.device),
            status.model_dump_json(),
            qos=1,
            retain=True,
        )
        self.metrics.statuses.inc()
        self.log.info("device status", device=topic.device, online=status.online)
        speaker = self.speakers.get(topic.device)
        if speaker is not None:
            await speaker.on_status(client, status.online)

    async def _committed(self, topic: SiteTopic, payload: bytes) -> None:
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

    # --- speakers -------------------------------------------------------------------

    async def _announce(self, client: Client, speaker_id: str, payload: bytes) -> None:
        announce = parse_message(Announce, payload)
        speaker = self.speakers.get(speaker_id)
        if speaker is None:
            await self.acks.send(client, speaker_id, announce.id, "failed", "unknown speaker")
            raise Rejected("unknown_device", f"{speaker_id} is not a speaker of {self.site.id}")
        self.log.info(
            "announce", speaker=speaker_id, id=announce.id, requested_by=announce.requested_by
        )
        if not on_hub(announce.audio.url, self.settings.hub_url):
            # Fetched by the edge and handed to mqtt speakers: only the hub's audio.
            await self.acks.send(client, speaker_id, announce.id, "failed", NOT_HUB_AUDIO)
            raise Rejected(
                "foreign_audio_url",
                f"{announce.id}: audio not under the hub URL {self.settings.hub_url!r}",
            )
        now = self.clock()
        if announce.expires_at <= now:
            await self.acks.send(client, speaker_id, announce.id, "expired")
            return
        shaped = policy.shape(
            priority=announce.priority,
            repeat=announce.repeat,
            volume=announce.volume,
            alarm_id=announce.alarm_id,
            site=self.site,
            now=now,
            quiet_volume_cap=self.settings.quiet_volume_cap,
        )
        if shaped.notes:
            self.metrics.announcements_capped.inc()
            self.log.warning("announce beyond policy; capped", id=announce.id, caps=shaped.detail)
            announce = announce.model_copy(
                update={
                    "priority": shaped.priority,
                    "repeat": shaped.repeat,
                    "volume": shaped.volume,
                }
            )
        await self.acks.send(client, speaker_id, announce.id, "received", shaped.detail)
        await speaker.announce(client, announce)

    async def _stop(self, client: Client, speaker_id: str, payload: bytes) -> None:
        stop = parse_message(Stop, payload)
        speaker = self.speakers.get(speaker_id)
        if speaker is None:
            raise Rejected("unknown_device", f"{speaker_id} is not a speaker of {self.site.id}")
        self.log.info("stop", speaker=speaker_id, id=stop.id)
        await speaker.stop(client, stop)
        self.metrics.stops.inc()

    async def _speaker_state(self, client: Client, topic: FieldTopic, payload: bytes) -> None:
        check_device(topic, self.site, self.devices)
        state = parse_message(SpeakerState, payload)
        await self.speakers[topic.device].on_state(client, state)

    # --- sending --------------------------------------------------------------------

    async def _publisher(self, client: Client) -> None:
        while True:
            await self._fresh_added.wait()
            fresh = self._fresh
            batch = [fresh.popleft() for _ in range(min(self._send_size(), len(fresh)))]
            if not fresh:
                self._fresh_added.clear()
            # On disk already (``_on_disk``): nothing leaves the edge before it is stored.
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
        site = self.site.id
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


def _make_outbox(settings: EdgeSettings) -> Outbox:
    if settings.outbox == "memory":
        return MemoryOutbox(settings.outbox_limit)
    path = settings.outbox_path or settings.data_dir / "outbox.sqlite3"
    return SqliteOutbox(path, settings.outbox_limit)


async def run_edge(settings: EdgeSettings, config: Config, stop: asyncio.Event) -> None:
    """Run one site's edge until ``stop`` is set."""
    await EdgeAgent(settings, config).run(stop)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)


async def _raise_when_set(stop: asyncio.Event) -> None:
    await stop.wait()
    raise _Stopping


async def _sleep_unless(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
