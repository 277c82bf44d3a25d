"""The site's default warning, rendered and cached by the edge itself for local deterrence.

The edge cannot count on the hub when it warns on its own (that is the point
of ``when_hub_unreachable``), so it speaks the site's warning text offline
with espeak-ng (Mandarin, then English), 16 kHz mono WAV, into its audio
cache ``<data_dir>/audio/<sha256>.wav`` (the same cache announcements use).
Its speakers fetch it from the edge's own HTTP port (``edge.health`` serves
``/audio/<sha256>.wav``).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

from pydub import AudioSegment

from edge.errors import AudioError
from riverguard.config import Site
from riverguard.speech import SpeechError, speak_wav
from riverguard.wire.models import AudioRef

SAMPLE_RATE = 16_000


def _speak(text: str, voice: str) -> AudioSegment:
    try:
        return AudioSegment.from_wav(io.BytesIO(speak_wav(text, voice)))
    except SpeechError as exc:
        raise AudioError(str(exc)) from exc


def render_warning(site: Site, audio_dir: Path, base_url: str) -> AudioRef:
    """Blocking: the site's warning as a cached WAV, and the reference speakers fetch it by."""
    pause = AudioSegment.silent(duration=450, frame_rate=SAMPLE_RATE)
    clip = AudioSegment.silent(duration=200, frame_rate=SAMPLE_RATE)
    for text, voice in ((site.warning_text_zh, "cmn"), (site.warning_text_en, "en")):
        clip = clip + _speak(text, voice).set_frame_rate(SAMPLE_RATE) + pause
    clip = clip.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2)
    buffer = io.BytesIO()
    clip.export(buffer, format="wav")
    data = buffer.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    audio_dir.mkdir(parents=True, exist_ok=True)
    path = audio_dir / f"{sha256}.wav"
    if not path.exists():
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(data)
        temporary.replace(path)
    return AudioRef(
        url=f"{base_url.rstrip('/')}/audio/{sha256}.wav",
        sha256=sha256,
        format="wav",
        duration_ms=len(clip),
    )


async def prepare_warning(site: Site, audio_dir: Path, base_url: str) -> AudioRef:
    # espeak-ng is a subprocess and pydub CPU-bound: keep the event loop free.
    return await asyncio.to_thread(render_warning, site, audio_dir, base_url)
