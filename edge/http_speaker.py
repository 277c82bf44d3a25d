"""The ``http`` speaker driver (PROTOCOL 1.5): POST G.711 µ-law to a network speaker.

Network speakers with an HTTP audio-transmit endpoint take the audio itself,
not a URL: 8 kHz mono µ-law (``Content-Type: audio/basic``), played as it
arrives; the request ends when the audio has played. Audio the hub already
rendered as µ-law (``audio.format`` ``ulaw``: headerless 8 kHz G.711, cached as
``<sha256>.ulaw``) is sent as it is; other audio (WAV from older hubs, or a
site's composite warning) is converted once with ffmpeg (``<sha256>.8k.ulaw``
beside it in the cache). The edge repeats it ``repeat`` times in one body,
acks ``playing`` when it starts sending and ``done`` when the speaker answers 2xx.

Stopping or preempting an announcement that plays closes the request (the
speaker stops when its input ends) and acks ``failed`` "stopped"/"preempted".
Priorities, queueing and interruption are those of ``edge.direct_speaker``.
The speaker's status (PROTOCOL 1.4), if it publishes one, works as for
``mqtt`` speakers.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import structlog

from edge.audio import ULAW_BYTES_PER_S, AudioCache
from edge.direct_speaker import DirectSpeaker
from edge.errors import AudioError
from edge.speakers import Acks
from riverguard.config import Device
from riverguard.wire.models import AckState, Announce

log = structlog.get_logger()

CONTENT_TYPE = "audio/basic"
CONVERT_TIMEOUT_S = 60.0


def to_ulaw(path: Path) -> Path:
    """Blocking: ``path`` as 8 kHz mono G.711 µ-law, converted once and kept beside it.

    A ``.ulaw`` file (the hub's ``ulaw`` rendering) is that already and comes back as it is.
    """
    if path.suffix == ".ulaw":
        # Already the speaker's own format; headerless, so ffmpeg could not even read it.
        return path
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


class HttpSpeaker(DirectSpeaker[bytes]):
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
        super().__init__(device, audio, acks, clock)
        self.url: str = device.url
        self.http = http
        self.done_margin_s = done_margin_s

    async def _media(self, announce: Announce) -> bytes:
        """The µ-law body to send: the audio ``repeat`` times."""
        path = await self.audio.get(announce.audio)
        # ffmpeg is a subprocess (once per clip): keep the event loop free.
        ulaw = await asyncio.to_thread(to_ulaw, path)
        data = await asyncio.to_thread(ulaw.read_bytes)
        return data * announce.repeat

    async def _deliver(self, announce: Announce, media: bytes) -> tuple[AckState, str]:
        """Send the audio; the resulting state and its detail."""
        seconds = len(media) / ULAW_BYTES_PER_S
        try:
            response = await self.http.post(
                self.url,
                content=media,
                headers={"Content-Type": CONTENT_TYPE},
                timeout=httpx.Timeout(seconds + self.done_margin_s, connect=5.0),
            )
        except httpx.HTTPError as exc:
            return "failed", f"speaker unreachable: {exc!r}"[:300]
        if response.is_success:
            return "done", ""
        return "failed", f"speaker answered {response.status_code}"
