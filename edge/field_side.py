"""The edge's field side: the site's devices on the site's broker, and nothing of the hub.

One persistent MQTT session with the site broker (``EdgeSettings.field_broker``),
reconnected forever. Per connection, in one TaskGroup:

- ``receiver``: device reports and vendor messages -> events, on disk in the
  outbox before the broker's message is acknowledged, then handed to the uplink;
  device statuses -> relayed to the hub; speaker states -> acks;
- ``heartbeats``: with ``device_offline_after_s``, a device whose last status
  said online and that sent none for that long is reported offline (as if the
  device had said so) until it speaks again;
- ``deterrence``: the site's own warning on its own speakers (``edge.deterrence``);
- ``speaker[<id>]``: one worker per speaker driver;
- ``sequences``: the devices' boots and sequence numbers saved now and then.

What it tells the hub goes through ``edge.outgoing`` and never waits for the
uplink: with the uplink down the site keeps detecting, warning and keeping every
event. Announce and stop commands of the hub come in through the uplink
(``announce``, ``stop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import structlog

from edge.adapters import Adapted, LateSnapshot, check_device, parse_message
from edge.audio import AudioCache, on_hub
from edge.deterrence import Deterrence
from edge.errors import AudioError, Rejected, Skipped
from edge.event_ids import EventIds
from edge.http_speaker import HttpSpeaker
from edge.lifecycle import SideReady, Stopping, raise_when_set, sleep_unless
from edge.local_speaker import LocalSpeaker
from edge.metrics import EdgeMetrics
from edge.normalizer import Normalizer
from edge.outbox import Outbox, OutboxEntry
from edge.outgoing import Outgoing
from edge.settings import EdgeSettings
from edge.sources import Raw, Source, build_sources
from edge.speakers import Acks, MqttSpeaker, SpeakerDriver
from edge.warning import prepare_warning
from riverguard import broker_acl, policy
from riverguard.config import Device, Site
from riverguard.mqtt import Backoff, make_client
from riverguard.mqtt_client import Client, Message, MqttError, Subscription
from riverguard.wire import topics
from riverguard.wire.models import Announce, DeviceStatus, SpeakerState, Stop
from riverguard.wire.topics import FieldTopic, TopicError

log = structlog.get_logger()

# Device messages handled per wake-up of the receiver; acknowledged together.
RECEIVE_BATCH = 500
# The ack of an announce whose audio is not the hub's: no more than that.
NOT_HUB_AUDIO = "audio URL is not the hub's"


# Called as a receiver round starts: what its events are handed to once on disk.
HandOver = Callable[[], Callable[[list[OutboxEntry]], None]]


class FieldSide:
    def __init__(
        self,
        settings: EdgeSettings,
        site: Site,
        devices: dict[str, Device],
        *,
        clock: Callable[[], datetime],
        outbox: Outbox,
        outgoing: Outgoing,
        acks: Acks,
        metrics: EdgeMetrics,
        hand_over: HandOver,
        hub_unreachable: Callable[[], bool],
        on_ready_change: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.site = site
        self.devices = devices
        self.clock = clock
        self.outbox = outbox
        self.outgoing = outgoing
        self.acks = acks
        self.metrics = metrics
        self._hand_over = hand_over
        self._hub_unreachable = hub_unreachable
        self.normalizer = Normalizer(
            site,
            devices,
            clock_ahead_max_s=settings.clock_ahead_max_s,
            clock_behind_max_s=settings.clock_behind_max_s,
        )
        self._sequences_path = settings.data_dir / "sequences.json"
        self.sources = build_sources(site, devices)
        self.speakers: dict[str, SpeakerDriver] = {}
        # Set while connected to the site broker and subscribed.
        self.ready = SideReady(on_ready_change)
        # Events kept while handling the current batch of messages.
        self._kept: list[OutboxEntry] = []
        # Devices' last status (online or not) and when it came (monotonic), and those
        # the edge reported offline for missing heartbeats.
        self._device_online: dict[str, bool] = {}
        self._device_heard: dict[str, float] = {}
        self.devices_offline: set[str] = set()
        # Base URL of the edge's own HTTP port, for audio it serves (set by main).
        self.audio_base_url: str | None = settings.audio_base_url
        self.deterrence: Deterrence | None = None
        self.audio: AudioCache | None = None
        self.client = make_client(
            settings.field_side_broker,
            identifier=broker_acl.edge_field_client_id(site.id),
            persistent=True,
            # A device's message is acknowledged to the broker only once its event is on
            # disk (``_receiver``), so a kill -9 between the two loses nothing: the broker
            # redelivers it.
            manual_ack=True,
        )
        self._name = f"edge[{site.id}].field"
        self.log = log.bind(site=site.id, side="field")

    # --- lifecycle ----------------------------------------------------------------

    async def open(self, http: httpx.AsyncClient) -> None:
        """Devices' sequences and the event id key, the audio cache, speakers, the warning."""
        await self._load_sequences()
        # A small file, made once: still, disk I/O blocks.
        self.normalizer.ids = await asyncio.to_thread(
            EventIds.load_or_create, self.settings.data_dir
        )
        self.audio = AudioCache(
            self.settings.data_dir / "audio", http, total_bytes=self.settings.audio_cache_bytes
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
            hub_silent=self._hub_unreachable,
        )
        await self._prepare_warning(self.audio)

    async def close(self) -> None:
        await self._save_sequences()

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, serve, reconnect on loss; return once ``stop`` is set."""
        backoff = Backoff()
        while not stop.is_set():
            try:
                async with self.client:
                    backoff.reset()
                    await self._session(stop)
            except* MqttError as group:
                self.ready.mark(False)
                delay = backoff.next_delay()
                self.log.warning(
                    "site broker connection lost", error=str(group.exceptions[0]), retry_in_s=delay
                )
                await sleep_unless(stop, delay)

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
            # Written on a device restart, every status interval and at stop; fsync blocks.
            await asyncio.to_thread(_write_atomically, self._sequences_path, state)
        except OSError as exc:
            self.log.warning("device sequences not saved", error=str(exc))

    async def _prepare_warning(self, audio: AudioCache) -> None:
        if self.deterrence is None or not self.deterrence.enabled:
            return
        if self.audio_base_url is None:
            self.log.warning("auto warning needs the edge's HTTP port (metrics_port); off")
            return
        try:
            warning = await prepare_warning(
                self.site, self.settings.data_dir / "audio", self.audio_base_url
            )
            audio.pinned.add(warning.sha256)  # needed most when the hub is away
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

    async def _session(self, stop: asyncio.Event) -> None:
        client = self.client
        await client.subscribe(
            [
                # noLocal: our own play/stop commands to the speakers need not come back.
                Subscription(topics.field_site_filter(self.site.id), no_local=True),
                *(
                    Subscription(topic)
                    for source in self.sources
                    for topic in source.subscriptions()
                ),
            ]
        )
        if self._kept:  # kept in a batch the lost connection cut short
            self.metrics.events.inc(len(self._kept))
            self._kept.clear()
        self.metrics.field_connects.inc()
        self.log.info("site broker connected", broker=self.settings.field_side_broker.host)
        self.ready.mark(True)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receiver(client), name=f"{self._name}.receiver")
                tg.create_task(self._sequence_saver(), name=f"{self._name}.sequences")
                if self.deterrence is not None and self.deterrence.enabled:
                    tg.create_task(self.deterrence.run(client), name=f"{self._name}.deterrence")
                if self.settings.device_offline_after_s:
                    tg.create_task(self._heartbeats(client), name=f"{self._name}.heartbeats")
                for speaker_id, speaker in self.speakers.items():
                    tg.create_task(speaker.run(client), name=f"{self._name}.speaker[{speaker_id}]")
                tg.create_task(raise_when_set(stop), name=f"{self._name}.stop")
        except* Stopping:
            pass
        finally:
            self.ready.mark(False)

    async def _sequence_saver(self) -> None:
        while True:
            await asyncio.sleep(self.settings.status_interval_s)
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
                self.outgoing.post(
                    topics.device_status(self.site.id, device),
                    status.model_dump_json(),
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
            hand_over = self._hand_over()
            for message in batch:
                await self._receive(client, message)
            kept, self._kept = self._kept, []
            if kept:
                self.metrics.events.inc(len(kept))
                self.metrics.outbox.set(len(self.outbox))
            # The messages are acknowledged to the broker, and their events handed to the
            # uplink, all together once the events are on disk.
            self.outbox.when_durable(
                functools.partial(self._on_disk, client, batch, kept, hand_over)
            )

    def _on_disk(
        self,
        client: Client,
        messages: list[Message],
        kept: list[OutboxEntry],
        hand_over: Callable[[list[OutboxEntry]], None],
    ) -> None:
        # The ack of a connection lost by then is skipped (the broker redelivers, and
        # the normalizer's ids make the repeat the same event).
        with contextlib.suppress(MqttError):
            client.ack(messages)
        hand_over(kept)

    async def _receive(self, client: Client, message: Message) -> None:
        topic = message.topic
        try:
            source = next((s for s in self.sources if s.matches(topic)), None)
            if source is not None:
                await self._from_source(source, Raw(topic, message.payload, message.retain))
            else:
                await self._handle(client, topic, message.payload)
        except Rejected as exc:
            self.reject(exc, topic)
        except MqttError:
            raise
        except Exception:
            # A bug in handling one message must not stop the site's edge.
            self.log.exception("message handling failed", topic=topic[:200])
            self.metrics.count_rejected("internal")

    def reject(self, exc: Rejected, topic: str) -> None:
        self.metrics.count_rejected(exc.reason)
        self.log.warning(
            "message rejected", reason=exc.reason, detail=exc.detail, topic=topic[:200]
        )

    async def _handle(self, client: Client, topic: str, payload: bytes) -> None:
        try:
            parsed = topics.parse(topic)
        except TopicError as exc:
            raise Rejected("bad_topic", str(exc)) from None
        if not isinstance(parsed, FieldTopic):
            raise Rejected("bad_topic", f"not a field topic: {topic[:120]}")
        if parsed.kind == "report":
            await self._keep(self.normalizer.report(parsed, payload, self.clock()))
        elif parsed.kind == "status":
            await self._relay_status(client, parsed, payload)
        elif parsed.kind == "state":
            await self._speaker_state(client, parsed, payload)
        # "play" and "stop" are commands to speakers, not for the edge to read.

    async def _from_source(self, source: Source, raw: Raw) -> None:
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
                self._late_snapshot(item)

    def _late_snapshot(self, late: LateSnapshot) -> None:
        """A picture of an event sent earlier without one.

        Sent once (QoS 1, queued while the uplink is down) and not kept in the outbox:
        the hub stores it by event id whenever it comes, and losing it loses a picture,
        never an event.
        """
        self.outgoing.post(topics.snapshot(self.site.id, late.event_id), late.jpeg)
        self.metrics.late_snapshots.inc()
        self.log.info("late snapshot sent", event_id=late.event_id, bytes=len(late.jpeg))

    async def _keep(self, adapted: Adapted) -> None:
        """An accepted event: into the outbox, then (once on disk) to the uplink."""
        event = adapted.event
        if adapted.snapshot_problem is not None:
            self.metrics.count_rejected("bad_snapshot")
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
        entry.sent_at = time.monotonic()  # handed to the uplink: not due for a resend yet
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
        self.outgoing.post(
            topics.device_status(self.site.id, topic.device),
            status.model_dump_json(),
            retain=True,
        )
        self.metrics.statuses.inc()
        self.log.info("device status", device=topic.device, online=status.online)
        speaker = self.speakers.get(topic.device)
        if speaker is not None:
            await speaker.on_status(client, status.online)

    async def _speaker_state(self, client: Client, topic: FieldTopic, payload: bytes) -> None:
        check_device(topic, self.site, self.devices)
        state = parse_message(SpeakerState, payload)
        await self.speakers[topic.device].on_state(client, state)

    # --- the hub's commands to the site's speakers (through the uplink) ------------

    async def announce(self, speaker_id: str, payload: bytes) -> None:
        announce = parse_message(Announce, payload)
        speaker = self.speakers.get(speaker_id)
        if speaker is None:
            await self.acks.send(speaker_id, announce.id, "failed", "unknown speaker")
            raise Rejected("unknown_device", f"{speaker_id} is not a speaker of {self.site.id}")
        self.log.info(
            "announce", speaker=speaker_id, id=announce.id, requested_by=announce.requested_by
        )
        if not on_hub(announce.audio.url, self.settings.hub_url):
            # Fetched by the edge and handed to mqtt speakers: only the hub's audio.
            await self.acks.send(speaker_id, announce.id, "failed", NOT_HUB_AUDIO)
            raise Rejected(
                "foreign_audio_url",
                f"{announce.id}: audio not under the hub URL {self.settings.hub_url!r}",
            )
        now = self.clock()
        if announce.expires_at <= now:
            await self.acks.send(speaker_id, announce.id, "expired")
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
        await self.acks.send(speaker_id, announce.id, "received", shaped.detail)
        await speaker.announce(self.client, announce)

    async def stop(self, speaker_id: str, payload: bytes) -> None:
        stop = parse_message(Stop, payload)
        speaker = self.speakers.get(speaker_id)
        if speaker is None:
            raise Rejected("unknown_device", f"{speaker_id} is not a speaker of {self.site.id}")
        self.log.info("stop", speaker=speaker_id, id=stop.id)
        await speaker.stop(self.client, stop)
        self.metrics.stops.inc()


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)
