"""Speakers the edge plays to itself, so it knows when playing starts and ends.

The ``http`` driver (``edge.http_speaker``) streams µ-law to a network
speaker and the ``local`` driver (``edge.local_speaker``) runs a player on
the edge's own sound output; neither has a speaker that reports states, so
the edge reports them: ``playing`` when it starts delivering, ``done`` when
delivery ended well, ``failed`` with the reason otherwise.

``DirectSpeaker`` holds what both share: the queue (highest ``priority``
first, arrival order within one, see ``edge.speakers``), expiry, stop, the
speaker's relayed status, and interruption: stopping or preempting what
plays cancels the driver's delivery (which then ends its request or kills
its player) and acks ``failed`` "stopped"/"preempted"/"speaker offline".
A driver provides ``_media`` (fetch and convert, before ``playing``) and
``_deliver`` (play it; cancellable).
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

import structlog

from edge.audio import AudioCache
from edge.errors import AudioError, PlayerError
from edge.speakers import OFFLINE, PREEMPTED, STOPPED, Acks, next_announcement
from riverguard.config import Device
from riverguard.mqtt_client import Client
from riverguard.wire.models import AckState, Announce, SpeakerState, Stop

log = structlog.get_logger()

Media = TypeVar("Media")


class DirectSpeaker(ABC, Generic[Media]):
    """One speaker's queue of announcements and its worker; subclasses deliver the audio."""

    def __init__(
        self, device: Device, audio: AudioCache, acks: Acks, clock: Callable[[], datetime]
    ) -> None:
        self.device = device
        self.audio = audio
        self.acks = acks
        self.clock = clock
        self.online: bool | None = None
        self._queue: deque[Announce] = deque()
        self._wakeup = asyncio.Event()
        self._fetching: Announce | None = None
        self._stopped: set[str] = set()
        self._playing: Announce | None = None
        self._interrupt = asyncio.Event()
        self._reason = ""

    @abstractmethod
    async def _media(self, announce: Announce) -> Media:
        """What ``_deliver`` plays; raises AudioError or PlayerError when it cannot."""

    @abstractmethod
    async def _deliver(self, announce: Announce, media: Media) -> tuple[AckState, str]:
        """Play ``media``; the final state and its detail. Cancelled to interrupt it."""

    async def announce(self, client: Client, announce: Announce) -> None:
        if self.online is False:
            await self._ack(client, announce.id, "failed", OFFLINE)
            return
        self._queue.append(announce)
        self._wakeup.set()
        playing = self._playing
        if playing is not None and announce.priority > playing.priority:
            self._interrupt_with(PREEMPTED)

    async def stop(self, client: Client, stop: Stop) -> None:
        queued = next((a for a in self._queue if a.id == stop.id), None)
        if queued is not None:
            self._queue.remove(queued)
            await self._ack(client, stop.id, "failed", STOPPED)
        elif self._fetching is not None and self._fetching.id == stop.id:
            self._stopped.add(stop.id)
        elif self._playing is not None and self._playing.id == stop.id:
            self._interrupt_with(STOPPED)
        else:
            log.info("stop for what this speaker does not hold", speaker=self.device.id, id=stop.id)

    async def on_state(self, client: Client, state: SpeakerState) -> None:
        log.info(
            "state from a directly played speaker ignored", speaker=self.device.id, id=state.id
        )

    async def on_status(self, client: Client, online: bool) -> None:
        self.online = online
        if online:
            return
        queued = list(self._queue)
        self._queue.clear()
        for announce in queued:
            await self._ack(client, announce.id, "failed", OFFLINE)
        if self._playing is not None:
            self._interrupt_with(OFFLINE)

    async def run(self, client: Client) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            announce = next_announcement(self._queue)
            self._fetching = announce
            try:
                media = await self._prepare(client, announce)
            except asyncio.CancelledError:
                self._queue.appendleft(announce)  # the connection went away: next one
                raise
            finally:
                self._fetching = None
            if media is not None:
                await self._play(client, announce, media)

    async def _prepare(self, client: Client, announce: Announce) -> Media | None:
        """The media to play, or None if the announcement ended already."""
        if announce.expires_at <= self.clock():
            await self._ack(client, announce.id, "expired")
            return None
        try:
            media = await self._media(announce)
        except (AudioError, PlayerError) as exc:
            log.warning(
                "announcement cannot be played",
                speaker=self.device.id,
                id=announce.id,
                error=str(exc),
            )
            await self._ack(client, announce.id, "failed", str(exc))
            return None
        if announce.id in self._stopped:
            self._stopped.discard(announce.id)
            await self._ack(client, announce.id, "failed", STOPPED)
            return None
        if announce.expires_at <= self.clock():
            await self._ack(client, announce.id, "expired")
            return None
        return media

    async def _play(self, client: Client, announce: Announce, media: Media) -> None:
        self._playing = announce
        self._interrupt.clear()
        self._reason = ""
        await self._ack(client, announce.id, "playing")
        delivery = asyncio.ensure_future(self._deliver(announce, media))
        interrupted = asyncio.ensure_future(self._interrupt.wait())
        try:
            await asyncio.wait({delivery, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._playing = None
            for task in (delivery, interrupted):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(delivery, interrupted, return_exceptions=True)
        state: AckState = "failed"
        detail = self._reason or "interrupted"
        if not delivery.cancelled() and delivery.done() and delivery.exception() is None:
            state, detail = delivery.result()
        await self._ack(client, announce.id, state, detail)

    def _interrupt_with(self, reason: str) -> None:
        self._reason = reason
        self._interrupt.set()

    async def _ack(
        self, client: Client, announcement_id: str, state: AckState, detail: str = ""
    ) -> None:
        await self.acks.send(self.device.id, announcement_id, state, detail)
