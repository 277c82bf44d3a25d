"""A simulated loudspeaker with the ``mqtt`` driver (PROTOCOL 1.5).

On ``play`` it fetches the audio, verifies its sha256, works out its length,
says ``playing``, waits for the length times ``repeat`` (divided by
``speed``) and says ``done``. A ``stop`` for what it plays, or a newer
``play``, interrupts it with ``failed`` ("stopped", "preempted").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import wave
from dataclasses import dataclass, field

import httpx
import structlog
from pydantic import ValidationError

from riverguard.mqtt import Backoff, BrokerSettings, make_client
from riverguard.mqtt_client import Client, MqttError, Subscription, Will
from riverguard.wire import topics
from riverguard.wire.models import SpeakerPlay, SpeakerState, Stop

log = structlog.get_logger()

OFFLINE = json.dumps({"online": False})
ONLINE = json.dumps({"online": True})
# G.711 µ-law as the http driver sends it: 8 kHz, one byte per sample.
ULAW_BYTES_PER_S = 8000


class AudioUnusable(Exception):
    """The audio of a ``play`` cannot be played; the message is the ``failed`` detail."""


def audio_duration_s(data: bytes) -> float:
    """Length of a WAV file, or of headerless µ-law."""
    if data[:4] == b"RIFF":
        try:
            with wave.open(io.BytesIO(data)) as wav:
                return float(wav.getnframes() / wav.getframerate())
        except (wave.Error, EOFError, ZeroDivisionError) as exc:
            raise AudioUnusable(f"unreadable WAV: {exc}") from exc
    if data[:3] == b"ID3" or data[:2] == b"\xff\xfb":
        raise AudioUnusable("MP3 is not supported by this speaker")
    return len(data) / ULAW_BYTES_PER_S


@dataclass
class _Playback:
    id: str
    interrupted: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""


class SimulatedSpeaker:
    def __init__(
        self,
        broker: BrokerSettings,
        site: str,
        device: str,
        http: httpx.AsyncClient,
        speed: float = 1.0,
        *,
        heartbeat_s: float = 30.0,
    ) -> None:
        self.broker = broker
        self.site = site
        self.device = device
        self.http = http
        self.speed = speed
        # The online status is repeated this often, so an edge can tell a dead speaker.
        self.heartbeat_s = heartbeat_s
        self.ready = asyncio.Event()
        self.played: list[str] = []  # ids played to the end, for tests and logs
        self._current: _Playback | None = None
        self.log = log.bind(site=site, speaker=device)

    async def run(self) -> None:
        """Serve forever, reconnecting after a lost connection."""
        client = make_client(
            self.broker,
            will=Will(
                topics.field_status(self.site, "speaker", self.device),
                OFFLINE,
                qos=1,
                retain=True,
            ),
        )
        backoff = Backoff()
        while True:
            try:
                async with client:
                    backoff.reset()
                    await self._session(client)
            except* MqttError as group:
                self.ready.clear()
                delay = backoff.next_delay()
                self.log.warning(
                    "speaker lost the broker", error=str(group.exceptions[0]), retry_in_s=delay
                )
                await asyncio.sleep(delay)

    async def _session(self, client: Client) -> None:
        await client.subscribe(
            [
                Subscription(topics.speaker_play(self.site, self.device)),
                Subscription(topics.speaker_stop(self.site, self.device)),
            ]
        )
        status = topics.field_status(self.site, "speaker", self.device)
        await client.publish(status, ONLINE, qos=1, retain=True)
        self.log.info("speaker online")
        self.ready.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(
                    self._heartbeat(client, status), name=f"sim.speaker[{self.device}].heartbeat"
                )
                while True:
                    for message in await client.next_batch(100):
                        if message.topic.endswith("/stop"):
                            self._stop(message.payload)
                        else:
                            self._play(client, tg, message.payload)
        finally:
            self.ready.clear()

    async def _heartbeat(self, client: Client, status: str) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await client.publish(status, ONLINE, qos=1, retain=True)

    def _stop(self, payload: bytes) -> None:
        try:
            stop = Stop.model_validate_json(payload)
        except ValidationError as exc:
            self.log.warning("bad stop ignored", error=str(exc)[:200])
            return
        current = self._current
        if current is not None and current.id == stop.id:
            current.reason = "stopped"
            current.interrupted.set()
        else:
            self.log.info("stop for what is not playing", id=stop.id)

    def _play(self, client: Client, tg: asyncio.TaskGroup, payload: bytes) -> None:
        try:
            play = SpeakerPlay.model_validate_json(payload)
        except ValidationError as exc:
            self.log.warning("bad play ignored", error=str(exc)[:200])
            return
        if self._current is not None:
            self._current.reason = "preempted"
            self._current.interrupted.set()
        playback = _Playback(play.id)
        self._current = playback
        tg.create_task(
            self._playback(client, play, playback), name=f"sim.speaker[{self.device}].{play.id}"
        )

    async def _playback(self, client: Client, play: SpeakerPlay, playback: _Playback) -> None:
        try:
            duration = await self._fetch(play)
        except AudioUnusable as exc:
            await self._state(client, play.id, "failed", str(exc))
            return
        if playback.interrupted.is_set():
            await self._state(client, play.id, "failed", playback.reason)
            return
        await self._state(client, play.id, "playing")
        seconds = duration * play.repeat / self.speed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(playback.interrupted.wait(), seconds)
        if self._current is playback:
            self._current = None
        if playback.interrupted.is_set():
            await self._state(client, play.id, "failed", playback.reason)
            return
        self.played.append(play.id)
        await self._state(client, play.id, "done")

    async def _fetch(self, play: SpeakerPlay) -> float:
        try:
            response = await self.http.get(play.url)
        except httpx.HTTPError as exc:
            raise AudioUnusable(f"GET {play.url} failed: {exc!r}"[:300]) from exc
        if response.status_code != 200:
            raise AudioUnusable(f"GET {play.url} answered {response.status_code}")
        digest = hashlib.sha256(response.content).hexdigest()
        if digest != play.sha256:
            raise AudioUnusable(f"sha256 mismatch: expected {play.sha256}, got {digest}")
        return audio_duration_s(response.content)

    async def _state(
        self, client: Client, announcement_id: str, state: str, detail: str = ""
    ) -> None:
        message = SpeakerState.model_validate(
            {"id": announcement_id, "state": state, "detail": detail}
        )
        await client.publish(
            topics.speaker_state(self.site, self.device), message.model_dump_json(), qos=1
        )
        self.log.info("speaker state", id=announcement_id, state=state, detail=detail)
