"""The ``local`` speaker driver (PROTOCOL 1.5): the edge plays the audio on its own sound output.

The verified, cached audio (WAV or MP3, ``edge.audio``) is played by an
ffmpeg subprocess writing to an ALSA device (``local_audio_device``,
``default`` unless set; ``null`` discards the sound, for machines without
a sound card and for tests). ffmpeg rather than ``aplay`` because it plays
every format the hub renders and does volume and repeat itself: the
``volume`` filter scales by ``volume``/100 and ``-stream_loop`` repeats.
``-re`` paces the input at its own rate, so playing lasts as long as the
audio whatever the device does (ALSA's ``null`` takes audio as fast as it
is given).

The edge acks ``playing`` once the player has started, ``done`` when it
exits 0, ``failed`` with the player's last error lines when it exits
otherwise, and ``failed`` "player ... not found" without starting when the
player is missing. Stop and preemption (``edge.direct_speaker``) kill the
player by its PID: SIGTERM, then SIGKILL if it lingers.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from edge.audio import AudioCache
from edge.direct_speaker import DirectSpeaker
from edge.errors import PlayerError
from edge.speakers import Acks
from riverguard.config import Device
from riverguard.wire.models import AckState, Announce

log = structlog.get_logger()

# ffmpeg ends at once on SIGTERM; one that does not is killed after this.
TERMINATE_GRACE_S = 2.0
# Of the player's stderr, what an ack's detail carries.
DETAIL_CHARS = 300


@dataclass(frozen=True, slots=True)
class Playable:
    player: str  # the player's absolute path
    path: Path


def player_command(player: str, path: Path, device: str, volume: int, repeat: int) -> list[str]:
    """The ffmpeg command that plays ``path`` ``repeat`` times at ``volume`` % on ``device``."""
    return [
        player,
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-re",
        "-stream_loop",
        str(repeat - 1),
        "-i",
        str(path),
        "-af",
        f"volume={volume / 100:.2f}",
        "-f",
        "alsa",
        device,
    ]


class LocalSpeaker(DirectSpeaker[Playable]):
    """The ``local`` driver: one player subprocess at a time on the edge's sound output."""

    def __init__(
        self,
        device: Device,
        audio: AudioCache,
        acks: Acks,
        clock: Callable[[], datetime],
        *,
        sound_device: str = "default",
        player: str = "ffmpeg",
    ) -> None:
        super().__init__(device, audio, acks, clock)
        self.sound_device = sound_device
        self.player = player
        # The running player's PID, while one runs.
        self.pid: int | None = None

    async def _media(self, announce: Announce) -> Playable:
        player = shutil.which(self.player)
        if player is None:
            raise PlayerError(f"player {self.player} not found; cannot play on this edge")
        path = await self.audio.get(announce.audio)
        return Playable(player, path)

    async def _deliver(self, announce: Announce, media: Playable) -> tuple[AckState, str]:
        command = player_command(
            media.player, media.path, self.sound_device, announce.volume, announce.repeat
        )
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            return "failed", f"player {self.player} cannot start: {exc}"[:DETAIL_CHARS]
        self.pid = process.pid
        log.info(
            "local player started",
            speaker=self.device.id,
            id=announce.id,
            pid=process.pid,
            sound_device=self.sound_device,
        )
        try:
            _, stderr = await process.communicate()
        except asyncio.CancelledError:
            await _end(process)
            log.info("local player killed", speaker=self.device.id, id=announce.id, pid=process.pid)
            raise
        finally:
            self.pid = None
        if process.returncode == 0:
            return "done", ""
        # ffmpeg's cause (a device it cannot open) comes a line or two before its last.
        lines = stderr.decode(errors="replace").strip().splitlines()[-3:]
        detail = f"player exited {process.returncode}: {' | '.join(lines)}"[:DETAIL_CHARS]
        log.warning("local player failed", speaker=self.device.id, id=announce.id, detail=detail)
        return "failed", detail


async def _end(process: asyncio.subprocess.Process) -> None:
    """Stop the player by its PID and reap it."""
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), TERMINATE_GRACE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
