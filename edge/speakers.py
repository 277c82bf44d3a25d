"""Speaker drivers (PROTOCOL 1.5) and announcement acknowledgements (2.4).

``MqttSpeaker`` drives a speaker that speaks the ``mqtt`` driver: the edge
verifies and caches the audio, then publishes ``play`` with the audio's URL;
the speaker's ``state`` replies become acknowledgements to the hub.
Speakers with another driver get ``failed`` "driver not implemented" for now.

Announcements of one speaker are handled one at a time, in arrival order.
Priority preemption (3.1) is not implemented yet: a newer ``play`` simply
replaces what the speaker is playing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import aiomqtt
import structlog

from edge.audio import AudioCache
from edge.errors import AudioError
from edge.metrics import EdgeMetrics
from riverguard.config import Device
from riverguard.wire import topics
from riverguard.wire.models import (
    AckState,
    Announce,
    AnnouncementAck,
    SpeakerPlay,
    SpeakerState,
    Stop,
)

log = structlog.get_logger()

STOPPED = "stopped"
NOT_IMPLEMENTED = "driver not implemented"


class Acks:
    """Publishes one site's announcement acknowledgements."""

    def __init__(self, site: str, clock: Callable[[], datetime], metrics: EdgeMetrics) -> None:
        self.site = site
        self.clock = clock
        self.metrics = metrics

    async def send(
        self,
        client: aiomqtt.Client,
        speaker: str,
        announcement_id: str,
        state: AckState,
        detail: str = "",
    ) -> None:
        ack = AnnouncementAck(id=announcement_id, state=state, ts=self.clock(), detail=detail)
        await client.publish(topics.speaker_ack(self.site, speaker), ack.model_dump_json(), qos=1)
        self.metrics.acks.labels(state).inc()
        log.info(
            "announcement ack", speaker=speaker, id=announcement_id, state=state, detail=detail
        )


class SpeakerDriver(Protocol):
    device: Device

    async def announce(self, client: aiomqtt.Client, announce: Announce) -> None:
        """Take an announcement that is not expired and was acked ``received``."""
        ...

    async def stop(self, client: aiomqtt.Client, stop: Stop) -> None: ...

    async def on_state(self, client: aiomqtt.Client, state: SpeakerState) -> None: ...

    async def run(self, client: aiomqtt.Client) -> None:
        """The driver's worker, for as long as a broker connection lasts."""
        ...


class UnsupportedSpeaker:
    """A speaker whose driver (``http``, ``local``) this edge cannot drive yet."""

    def __init__(self, device: Device, acks: Acks) -> None:
        self.device = device
        self.acks = acks

    async def announce(self, client: aiomqtt.Client, announce: Announce) -> None:
        await self.acks.send(client, self.device.id, announce.id, "failed", NOT_IMPLEMENTED)

    async def stop(self, client: aiomqtt.Client, stop: Stop) -> None:
        log.info("stop for a speaker without a driver", speaker=self.device.id, id=stop.id)

    async def on_state(self, client: aiomqtt.Client, state: SpeakerState) -> None:
        log.info("state from a speaker without a driver", speaker=self.device.id, id=state.id)

    async def run(self, client: aiomqtt.Client) -> None:
        await asyncio.Event().wait()  # nothing to do, but lives as long as its siblings


class MqttSpeaker:
    """The ``mqtt`` driver for one speaker: a queue of announcements and its worker."""

    def __init__(
        self,
        site: str,
        device: Device,
        audio: AudioCache,
        acks: Acks,
        clock: Callable[[], datetime],
    ) -> None:
        self.site = site
        self.device = device
        self.audio = audio
        self.acks = acks
        self.clock = clock
        self._queue: deque[Announce] = deque()
        self._wakeup = asyncio.Event()
        self._current: Announce | None = None
        self._stopped: set[str] = set()

    async def announce(self, client: aiomqtt.Client, announce: Announce) -> None:
        self._queue.append(announce)
        self._wakeup.set()

    async def stop(self, client: aiomqtt.Client, stop: Stop) -> None:
        queued = next((a for a in self._queue if a.id == stop.id), None)
        if queued is not None:
            self._queue.remove(queued)
            await self.acks.send(client, self.device.id, stop.id, "failed", STOPPED)
        elif self._current is not None and self._current.id == stop.id:
            self._stopped.add(stop.id)  # the worker acks it once the fetch returns
        else:
            # Playing, or unknown to us (an edge restart): the speaker decides and
            # answers "failed" on its state topic if it was playing it.
            await client.publish(
                topics.speaker_stop(self.site, self.device.id), stop.model_dump_json(), qos=1
            )
            log.info("stop forwarded", speaker=self.device.id, id=stop.id)

    async def on_state(self, client: aiomqtt.Client, state: SpeakerState) -> None:
        await self.acks.send(client, self.device.id, state.id, state.state, state.detail)

    async def run(self, client: aiomqtt.Client) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            announce = self._queue.popleft()
            self._current = announce
            try:
                await self._play(client, announce)
            except asyncio.CancelledError:
                # The connection went away mid-way: take it up again on the next one.
                self._queue.appendleft(announce)
                raise
            finally:
                self._current = None
                self._stopped.discard(announce.id)

    async def _play(self, client: aiomqtt.Client, announce: Announce) -> None:
        speaker = self.device.id
        if announce.expires_at <= self.clock():
            await self.acks.send(client, speaker, announce.id, "expired")
            return
        try:
            await self.audio.get(announce.audio)
        except AudioError as exc:
            log.warning(
                "announcement audio unusable", speaker=speaker, id=announce.id, error=str(exc)
            )
            await self.acks.send(client, speaker, announce.id, "failed", str(exc))
            return
        if announce.id in self._stopped:
            await self.acks.send(client, speaker, announce.id, "failed", STOPPED)
            return
        if announce.expires_at <= self.clock():
            await self.acks.send(client, speaker, announce.id, "expired")
            return
        play = SpeakerPlay(
            id=announce.id,
            url=announce.audio.url,
            sha256=announce.audio.sha256,
            volume=announce.volume,
            repeat=announce.repeat,
        )
        await client.publish(topics.speaker_play(self.site, speaker), play.model_dump_json(), qos=1)
        log.info("play sent", speaker=speaker, id=announce.id, url=announce.audio.url)
