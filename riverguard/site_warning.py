"""The site's default warning, rendered the same way by the hub and the edge.

The warning is an attention chime, the Mandarin text and the English text,
spoken offline by espeak-ng and assembled with pydub (over ffmpeg) into the
profile mqtt speakers take: 16 kHz, 16-bit, mono WAV. The hub announces it
and the edge plays it on its own when the hub is unreachable; both name the
file by its sha256, so one site's warning is one file with one hash on both.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path

from pydub import AudioSegment
from pydub.effects import normalize
from pydub.generators import Sine

from riverguard.config import Site
from riverguard.hashed_files import write_by_hash
from riverguard.speech import speak_wav

SAMPLE_RATE = 16_000
# Pause between the chime and the words, and after each sentence: long enough to
# turn one's head.
CHIME_PAUSE_MS = 450


@dataclass(frozen=True, slots=True)
class SiteWarning:
    sha256: str
    path: Path
    duration_ms: int


def chime() -> AudioSegment:
    """Two rising tones: a cue that makes people look up before the words start."""
    low = Sine(660).to_audio_segment(duration=220, volume=-8).fade_out(60)
    high = Sine(880).to_audio_segment(duration=320, volume=-8).fade_out(120)
    return low + high


def _spoken(text: str, voice: str) -> AudioSegment:
    return AudioSegment.from_wav(io.BytesIO(speak_wav(text, voice)))


def render_site_warning(site: Site, audio_dir: Path) -> SiteWarning:
    """Blocking (espeak-ng, ffmpeg): the site's warning as ``<sha256>.wav`` in ``audio_dir``.

    Raises ``riverguard.speech.SpeechError`` when espeak-ng cannot speak.
    """
    wav, duration_ms = _rendered(site.warning_text_zh, site.warning_text_en)
    sha256, path = write_by_hash(wav, "wav", audio_dir)
    return SiteWarning(sha256=sha256, path=path, duration_ms=duration_ms)


# Kept per pair of texts: a city's sites mostly share the default ones, and one
# rendering is two espeak-ng runs and an ffmpeg resampling, 0.1-0.2 s of CPU (200
# sites took the hub 20-30 s to start on two busy cores). A failure is not kept.
@functools.lru_cache(maxsize=32)
def _rendered(text_zh: str, text_en: str) -> tuple[bytes, int]:
    """The warning of these texts as WAV bytes, and its length in milliseconds."""
    pause = AudioSegment.silent(duration=CHIME_PAUSE_MS, frame_rate=SAMPLE_RATE)
    speech = [_spoken(text_zh, "cmn"), _spoken(text_en, "en")]
    clip = chime() + pause
    for part in speech:
        clip = clip + part.set_frame_rate(SAMPLE_RATE) + pause
    clip = normalize(clip.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2), 1.0)
    buffer = io.BytesIO()
    clip.export(buffer, format="wav")
    return buffer.getvalue(), len(clip)
