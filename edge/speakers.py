"""Speaker drivers (PROTOCOL 1.5) and announcement acknowledgements (2.4).

``MqttSpeaker`` drives a speaker that speaks the ``mqtt`` driver: the edge
verifies and caches the audio, then publishes ``play`` with the audio's URL;
the speaker's ``state`` replies become acknowledgements to the hub.
``HttpSpeaker`` (``edge.http_speaker``) POSTs G.711 µ-law to a network
speaker and ``LocalSpeaker`` (``edge.local_speaker``) plays on the edge's own
sound output; both share ``edge.direct_speaker``.

Announcements of one speaker are played one at a time: the highest
``priority`` first, in arrival order within a priority; the next one waits
until the speaker has finished the current one. One with a higher priority
than the one playing preempts it (PROTOCOL 3.1): the edge acks the playing
one ``failed`` "preempted", tells the speaker to stop it and plays the new one.

A speaker that does not answer does not leave an announcement ``received``
forever: ``MqttSpeaker`` watches each ``play`` it sent. No ``playing`` within
``response_timeout_s``, or no ``done`` within the audio's length times
``repeat`` plus ``done_margin_s``, and the edge acks ``failed`` "no response
from speaker" itself; a speaker whose relayed status is offline fails what it
holds and what it is given at once ("speaker offline"). States the speaker
sends later for an announcement that already ended are dropped and counted
(``rejected{reason="late_state"}``), so the hub never sees ``done`` after
``failed``; so are states of an announcement the speaker is not playing
(``unknown_state``: forged, or from before an edge restart), and a repeated
``playing``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import structlog

from edge.audio import AudioCache, audio_duration_s
from edge.errors import AudioError
from edge.metrics import EdgeMetrics
from edge.outgoing import Outgoing
from riverguard.config import Device
from riverguard.mqtt_client import Client
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
NO_RESPONSE = "no response from speaker"
OFFLINE = "speaker offline"
# Announcement ids the edge ended itself, remembered to drop the speaker's late states.
_FINISHED_MEMORY = 1024


class Acks:
    """One site's announcement acknowledgements, handed to the uplink (``edge.outgoing``).

    They never wait for the hub: a speaker warns the swimmer with the uplink down,
    and its acks reach the hub when the uplink is back.
    """

    def __init__(
        self,
        site: str,
        clock: Callable[[], datetime],
        metrics: EdgeMetrics,
        outgoing: Outgoing,
    ) -> None:
        self.site = site
        self.clock = clock
        self.metrics = metrics
        self.outgoing = outgoing

    async def send(
        self,
        speaker: str,
        announcement_id: str,
        state: AckState,
        detail: str = "",
        *,
        after_event: str | None = None,
    ) -> None:
        """Queue one ack; ``after_event``: held until the hub has committed that event."""
        ack = AnnouncementAck(id=announcement_id, state=state, ts=self.clock(), detail=detail)
        self.outgoing.post(
            topics.speaker_ack(self.site, speaker), ack.model_dump_json(), after_event=after_event
        )
        self.metrics.acks.labels(state).inc()
        log.info(
            "announcement ack", speaker=speaker, id=announcement_id, state=state, detail=detail
        )


class SpeakerDriver(Protocol):
    device: Device

    async def announce(self, client: Client, announce: Announce) -> None:
        """Take an announcement that is not expired and was acked ``received``."""
        ...

    async def stop(self, client: Client, stop: Stop) -> None: ...

    async def on_state(self, client: Client, state: SpeakerState) -> None: ...

    async def on_status(self, client: Client, online: bool) -> None:
        """The speaker's own status (PROTOCOL 1.4) changed or was repeated."""
        ...

    async def run(self, client: Client) -> None:
        """The driver's worker, for as long as a broker connection lasts."""
        ...


PREEMPTED = "preempted"


@dataclass(slots=True)
class _InFlight:
    """A ``play`` sent to the speaker, and by when it must answer."""

    announce: Announce
    deadline: float  # monotonic
    length_s: float  # the audio's length times repeat
    playing: bool = False
    # Set once it ended, however: done, failed, timed out, preempted.
    ended: asyncio.Event = field(default_factory=asyncio.Event)


def next_announcement(queue: deque[Announce]) -> Announce:
    """Remove and return the highest-priority announcement, the oldest among equals."""
    best = max(range(len(queue)), key=lambda index: (queue[index].priority, -index))
    announce = queue[best]
    del queue[best]
    return announce


class MqttSpeaker:
    """The ``mqtt`` driver for one speaker: a queue of announcements and its worker."""

    def __init__(
        self,
        site: str,
        device: Device,
        audio: AudioCache,
        acks: Acks,
        clock: Callable[[], datetime],
        *,
        response_timeout_s: float = 10.0,
        done_margin_s: float = 10.0,
    ) -> None:
        self.site = site
        self.device = device
        self.audio = audio
        self.acks = acks
        self.clock = clock
        self.response_timeout_s = response_timeout_s
        self.done_margin_s = done_margin_s
        # None until the speaker's (retained) status was seen.
        self.online: bool | None = None
        self._queue: deque[Announce] = deque()
        self._wakeup = asyncio.Event()
        self._current: Announce | None = None
        self._stopped: set[str] = set()
        self._inflight: dict[str, _InFlight] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()

    async def announce(self, client: Client, announce: Announce) -> None:
        if self.online is False:
            await self._finish(client, announce.id, OFFLINE)
            return
        self._queue.append(announce)
        self._wakeup.set()

    async def stop(self, client: Client, stop: Stop) -> None:
        queued = next((a for a in self._queue if a.id == stop.id), None)
        if queued is not None:
            self._queue.remove(queued)
            await self.acks.send(self.device.id, stop.id, "failed", STOPPED)
        elif self._current is not None and self._current.id == stop.id:
            self._stopped.add(stop.id)  # the worker acks it once the fetch returns
        else:
            # Playing, or unknown to us (an edge restart): the speaker decides and
            # answers "failed" on its state topic if it was playing it.
            await client.publish(
                topics.speaker_stop(self.site, self.device.id), stop.model_dump_json(), qos=1
            )
            log.info("stop forwarded", speaker=self.device.id, id=stop.id)

    async def on_state(self, client: Client, state: SpeakerState) -> None:
        if state.id in self._finished:
            self.acks.metrics.count_rejected("late_state")
            log.warning(
                "late speaker state dropped",
                speaker=self.device.id,
                id=state.id,
                state=state.state,
                reason="late_state",
            )
            return
        inflight = self._inflight.get(state.id)
        if inflight is None:
            # Not what this speaker was told to play: forged, or of a play the edge
            # forgot (a restart; the hub then times it out as unacknowledged).
            self.acks.metrics.count_rejected("unknown_state")
            log.warning(
                "speaker state of no play in flight dropped",
                speaker=self.device.id,
                id=state.id[:100],
                state=state.state,
                reason="unknown_state",
            )
            return
        if state.state == "playing":
            if inflight.playing:
                return  # said already: the hub needs it once
            inflight.playing = True
            inflight.deadline = time.monotonic() + inflight.length_s + self.done_margin_s
        else:
            del self._inflight[state.id]
            inflight.ended.set()
            self._remember_finished(state.id)
        await self.acks.send(self.device.id, state.id, state.state, state.detail)

    async def on_status(self, client: Client, online: bool) -> None:
        self.online = online
        if online:
            return
        pending = [*self._inflight, *(announce.id for announce in self._queue)]
        for inflight in self._inflight.values():
            inflight.ended.set()
        self._inflight.clear()
        self._queue.clear()
        for announcement_id in pending:
            await self._finish(client, announcement_id, OFFLINE)
        if self._current is not None:
            self._stopped.add(self._current.id)  # the worker acks it once the fetch returns

    async def run(self, client: Client) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._worker(client), name=f"speaker[{self.device.id}].worker")
            tg.create_task(self._watchdog(client), name=f"speaker[{self.device.id}].watchdog")

    async def _worker(self, client: Client) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            announce = next_announcement(self._queue)
            self._current = announce
            try:
                inflight = await self._play(client, announce)
            except asyncio.CancelledError:
                # The connection went away mid-way: take it up again on the next one.
                self._queue.appendleft(announce)
                raise
            finally:
                self._current = None
                self._stopped.discard(announce.id)
            if inflight is not None:
                await self._until_ended(client, inflight)

    async def _until_ended(self, client: Client, inflight: _InFlight) -> None:
        """Wait for the speaker to finish, unless a higher priority preempts it."""
        while not inflight.ended.is_set():
            self._wakeup.clear()
            if any(a.priority > inflight.announce.priority for a in self._queue):
                self._inflight.pop(inflight.announce.id, None)
                inflight.ended.set()
                await self._finish(client, inflight.announce.id, PREEMPTED)
                stop = Stop(id=inflight.announce.id).model_dump_json()
                await client.publish(topics.speaker_stop(self.site, self.device.id), stop, qos=1)
                log.info("announcement preempted", speaker=self.device.id, id=inflight.announce.id)
                return
            ended = asyncio.ensure_future(inflight.ended.wait())
            arrived = asyncio.ensure_future(self._wakeup.wait())
            try:
                await asyncio.wait({ended, arrived}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (ended, arrived):
                    waiter.cancel()
                await asyncio.gather(ended, arrived, return_exceptions=True)

    async def _watchdog(self, client: Client) -> None:
        """Fail what the speaker left unanswered past its deadline."""
        tick = min(1.0, self.response_timeout_s / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            overdue = [i for i in self._inflight.values() if i.deadline <= now]
            for inflight in overdue:
                announcement_id = inflight.announce.id
                del self._inflight[announcement_id]
                inflight.ended.set()
                log.warning(
                    "speaker did not answer",
                    speaker=self.device.id,
                    id=announcement_id,
                    waiting_for="done" if inflight.playing else "playing",
                )
                await self._finish(client, announcement_id, NO_RESPONSE)

    def _remember_finished(self, announcement_id: str) -> None:
        self._finished[announcement_id] = None
        while len(self._finished) > _FINISHED_MEMORY:
            self._finished.popitem(last=False)

    async def _finish(self, client: Client, announcement_id: str, detail: str) -> None:
        """Fail an announcement on the speaker's behalf and ignore what it says about it later."""
        self._remember_finished(announcement_id)
        await self.acks.send(self.device.id, announcement_id, "failed", detail)

    async def _play(self, client: Client, announce: Announce) -> _InFlight | None:
        """Send ``play``; the announcement in flight, or None if it ended before that."""
        speaker = self.device.id
        if announce.expires_at <= self.clock():
            await self.acks.send(speaker, announce.id, "expired")
            return None
        try:
            path = await self.audio.get(announce.audio)
        except AudioError as exc:
            log.warning(
                "announcement audio unusable", speaker=speaker, id=announce.id, error=str(exc)
            )
            await self.acks.send(speaker, announce.id, "failed", str(exc))
            return None
        if announce.id in self._stopped:
            detail = OFFLINE if self.online is False else STOPPED
            await self._finish(client, announce.id, detail)
            return None
        if announce.expires_at <= self.clock():
            await self.acks.send(speaker, announce.id, "expired")
            return None
        # Reading a WAV header is a small blocking file read.
        measured = await asyncio.to_thread(audio_duration_s, path)
        length_s = max(announce.audio.duration_ms / 1000, measured or 0.0) * announce.repeat
        play = SpeakerPlay(
            id=announce.id,
            url=announce.audio.url,
            sha256=announce.audio.sha256,
            volume=announce.volume,
            repeat=announce.repeat,
        )
        inflight = _InFlight(announce, time.monotonic() + self.response_timeout_s, length_s)
        self._inflight[announce.id] = inflight
        await client.publish(topics.speaker_play(self.site, speaker), play.model_dump_json(), qos=1)
        log.info("play sent", speaker=speaker, id=announce.id, url=announce.audio.url)
        return inflight
