"""The ``http`` speaker driver (PROTOCOL 1.5): POST G.711 µ-law to a network speaker.

Network speakers with an HTTP audio-transmit endpoint take the audio itself,
not a URL: 8 kHz mono µ-law (``Content-Type: audio/basic``), played as it
arrives; the request ends when the audio has played. The edge converts the
verified, cached audio once with ffmpeg (``<sha256>.8k.ulaw`` beside it in
the cache), repeats it ``repeat`` times in one body, acks ``playing`` when
it starts sending and ``done`` when the speaker answers 2xx.

Stopping or preempting an announcement that plays closes the request (the
speaker stops when its input ends) and acks ``failed`` "stopped"/"preempted".
Priorities and queueing are those of ``edge.speakers``. The speaker's status
(PROTOCOL 1.4), if it publishes one, works as for ``mqtt`` speakers.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import aiomqtt
import httpx
import structlog

from edge.audio import ULAW_BYTES_PER_S, AudioCache
from edge.errors import AudioError
from edge.speakers import OFFLINE, PREEMPTED, STOPPED, Acks, next_announcement
from riverguard.config import Device
from riverguard.wire.models import AckState, Announce, SpeakerState, Stop

log = structlog.get_logger()

CONTENT_TYPE = "audio/basic"
CONVERT_TIMEOUT_S = 60.0


def to_ulaw(path: Path) -> Path:
    """Blocking: ``path`` as 8 kHz mono G.711 µ-law, converted once and kept beside it."""
    target = path.with_name(f"{path.name.split('.')[0]}.8k.ulaw")
    if target.exists():
        return target
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError("ffmpeg is not installed; cannot convert for an http speaker")
    temporary = target.with_name(f".{target.name}.tmp")
    command = [ffmpeg, "-v", "error", "-y", "-i", str(path), "-ar", "8000", "-ac", "1"]
    try:
        subprocess.run(
            [*command, "-f", "mulaw", str(temporary)],
            check=True,
            capture_output=True,
            timeout=CONVERT_TIMEOUT_S,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        raise AudioError(f"cannot convert {path.name} to µ-law: {exc}"[:300]) from exc
    temporary.replace(target)
    return target


class HttpSpeaker:
    """The ``http`` driver for one speaker: a queue of announcements and its worker."""

    def __init__(
        self,
        device: Device,
        audio: AudioCache,
        acks: Acks,
        clock: Callable[[], datetime],
        http: httpx.AsyncClient,
        *,
        done_margin_s: float = 10.0,
    ) -> None:
        if device.url is None:
            raise ValueError(f"http speaker {device.id} has no url")
        self.device = device
        self.url: str = device.url
        self.audio = audio
        self.acks = acks
        self.clock = clock
        self.http = http
        self.done_margin_s = done_margin_s
        self.online: bool | None = None
        self._queue: deque[Announce] = deque()
        self._wakeup = asyncio.Event()
        self._fetching: Announce | None = None
        self._stopped: set[str] = set()
        self._playing: Announce | None = None
        self._interrupt = asyncio.Event()
        self._reason = ""

    async def announce(self, client: aiomqtt.Client, announce: Announce) -> None:
        if self.online is False:
            await self._ack(client, announce.id, "failed", OFFLINE)
            return
        self._queue.append(announce)
        self._wakeup.set()
        playing = self._playing
        if playing is not None and announce.priority > playing.priority:
            self._interrupt_with(PREEMPTED)

    async def stop(self, client: aiomqtt.Client, stop: Stop) -> None:
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

    async def on_state(self, client: aiomqtt.Client, state: SpeakerState) -> None:
        log.info("state from an http speaker ignored", speaker=self.device.id, id=state.id)

    async def on_status(self, client: aiomqtt.Client, online: bool) -> None:
        self.online = online
        if online:
            return
        queued = list(self._queue)
        self._queue.clear()
        for announce in queued:
            await self._ack(client, announce.id, "failed", OFFLINE)
        if self._playing is not None:
            self._interrupt_with(OFFLINE)

    async def run(self, client: aiomqtt.Client) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            announce = next_announcement(self._queue)
            self._fetching = announce
            try:
                body = await self._prepare(client, announce)
            except asyncio.CancelledError:
                self._queue.appendleft(announce)  # the connection went away: next one
                raise
            finally:
                self._fetching = None
            if body is not None:
                await self._transmit(client, announce, body)

    async def _prepare(self, client: aiomqtt.Client, announce: Announce) -> bytes | None:
        """The µ-law body to send, or None if the announcement ended already."""
        if announce.expires_at <= self.clock():
            await self._ack(client, announce.id, "expired")
            return None
        try:
            path = await self.audio.get(announce.audio)
            # ffmpeg is a subprocess (once per clip): keep the event loop free.
            ulaw = await asyncio.to_thread(to_ulaw, path)
            data = await asyncio.to_thread(ulaw.read_bytes)
        except AudioError as exc:
            await self._ack(client, announce.id, "failed", str(exc))
            return None
        if announce.id in self._stopped:
            self._stopped.discard(announce.id)
            await self._ack(client, announce.id, "failed", STOPPED)
            return None
        if announce.expires_at <= self.clock():
            await self._ack(client, announce.id, "expired")
            return None
        return data * announce.repeat

    async def _transmit(self, client: aiomqtt.Client, announce: Announce, body: bytes) -> None:
        self._playing = announce
        self._interrupt.clear()
        self._reason = ""
        await self._ack(client, announce.id, "playing")
        post = asyncio.ensure_future(self._post(body))
        interrupted = asyncio.ensure_future(self._interrupt.wait())
        try:
            await asyncio.wait({post, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._playing = None
            for task in (post, interrupted):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(post, interrupted, return_exceptions=True)
        state: AckState = "failed"
        detail = self._reason or "interrupted"
        if not post.cancelled() and post.done() and post.exception() is None:
            state, detail = post.result()
        await self._ack(client, announce.id, state, detail)

    async def _post(self, body: bytes) -> tuple[AckState, str]:
        """Send the audio; the resulting state and its detail."""
        seconds = len(body) / ULAW_BYTES_PER_S
        try:
            response = await self.http.post(
                self.url,
                content=body,
                headers={"Content-Type": CONTENT_TYPE},
                timeout=httpx.Timeout(seconds + self.done_margin_s, connect=5.0),
            )
        except httpx.HTTPError as exc:
            return "failed", f"speaker unreachable: {exc!r}"[:300]
        if response.is_success:
            return "done", ""
        return "failed", f"speaker answered {response.status_code}"

    def _interrupt_with(self, reason: str) -> None:
        self._reason = reason
        self._interrupt.set()

    async def _ack(
        self, client: aiomqtt.Client, announcement_id: str, state: AckState, detail: str = ""
    ) -> None:
        await self.acks.send(client, self.device.id, announcement_id, state, detail)
