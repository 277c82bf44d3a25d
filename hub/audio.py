"""Audio for announcements: the site's default warning, rendered at start-up.

The warning is an attention chime, the Mandarin text and the English text,
spoken offline by espeak-ng and assembled with pydub (over ffmpeg) into the
profile mqtt speakers take: 16 kHz, 16-bit, mono WAV. Files are named by
their sha256, which is also how edges cache and verify them.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydub import AudioSegment
from pydub.effects import normalize

from hub.profiles import chime
from riverguard.config import Site
from riverguard.speech import SpeechError, speak_wav

SAMPLE_RATE = 16_000


class AudioError(Exception):
    """Rendering failed: espeak-ng or ffmpeg missing or refusing the input."""


@dataclass(frozen=True)
class Clip:
    id: str
    sha256: str
    path: Path
    format: str
    duration_ms: int
    title: str


def _speak(text: str, voice: str) -> AudioSegment:
    try:
        return AudioSegment.from_wav(io.BytesIO(speak_wav(text, voice)))
    except SpeechError as exc:
        raise AudioError(str(exc)) from exc


def _render_warning(site: Site, audio_dir: Path) -> Clip:
    pause = AudioSegment.silent(duration=450, frame_rate=SAMPLE_RATE)
    speech = [_speak(site.warning_text_zh, "cmn"), _speak(site.warning_text_en, "en")]
    clip = chime() + pause
    for part in speech:
        clip = clip + part.set_frame_rate(SAMPLE_RATE) + pause
    clip = normalize(clip.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2), 1.0)
    buffer = io.BytesIO()
    clip.export(buffer, format="wav")
    data = buffer.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    audio_dir.mkdir(parents=True, exist_ok=True)
    path = audio_dir / f"{sha256}.wav"
    if not path.exists():
        # Sites with the same text render the same file, maybe at the same time:
        # each writes its own temporary file, and the rename is atomic.
        with tempfile.NamedTemporaryFile(dir=audio_dir, suffix=".part", delete=False) as tmp:
            tmp.write(data)
        Path(tmp.name).replace(path)
    return Clip(
        id=f"warning-{site.id}",
        sha256=sha256,
        path=path,
        format="wav",
        duration_ms=len(clip),
        title=f"{site.warning_text_zh} / {site.warning_text_en}",
    )


async def render_site_warning(site: Site, audio_dir: Path) -> Clip:
    """The site's default warning as a 16 kHz mono WAV under ``audio_dir``."""
    # espeak-ng and ffmpeg are subprocesses and pydub is CPU-bound: keep the loop free.
    return await asyncio.to_thread(_render_warning, site, audio_dir)
