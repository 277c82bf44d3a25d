"""The site's default warning, rendered the same way by the hub and the edge.

The warning is an attention chime, the Mandarin text and the English text,
spoken offline by espeak-ng and assembled with pydub (over ffmpeg) into the
profile mqtt speakers take: 16 kHz, 16-bit, mono WAV. The hub announces it
and the edge plays it on its own when the hub is unreachable; both name the
file by its sha256, so one site's warning is one file with one hash on both.
"""

from __future__ import annotations

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
    pause = AudioSegment.silent(duration=CHIME_PAUSE_MS, frame_rate=SAMPLE_RATE)
    speech = [_spoken(site.warning_text_zh, "cmn"), _spoken(site.warning_text_en, "en")]
    clip = chime() + pause
    for part in speech:
        clip = clip + part.set_frame_rate(SAMPLE_RATE) + pause
    clip = normalize(clip.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2), 1.0)
    buffer = io.BytesIO()
    clip.export(buffer, format="wav")
    sha256, path = write_by_hash(buffer.getvalue(), "wav", audio_dir)
    return SiteWarning(sha256=sha256, path=path, duration_ms=len(clip))
