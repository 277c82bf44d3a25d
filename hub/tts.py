"""Text to speech, offline, with espeak-ng: Mandarin, Cantonese and English.

A spoken text becomes a clip like any other (``hub.clips``), named by the
hash of its voice, speed and text, so the same words are rendered once and
then served from the library. The built-in default warnings in the three
languages are rendered at the hub's first start and kept.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import datetime

from pydub import AudioSegment

from hub.clips import ClipInfo, ClipLibrary, content_key
from hub.errors import AudioRejected
from riverguard.speech import SPEED_WPM, SpeechError, speak_wav
from riverguard.wire.times import format_ts

MAX_TEXT = 300

# Accepted voice names -> espeak-ng voice.
VOICES: dict[str, str] = {
    "cmn": "cmn",
    "zh": "cmn",
    "zh-cn": "cmn",
    "yue": "yue",
    "zh-hk": "yue",
    "en": "en",
    "en-gb": "en",
}
LANGUAGES = ("cmn", "yue", "en")


@dataclass(frozen=True, slots=True)
class Builtin:
    voice: str
    text: str
    title: str
    name_zh: str
    name_en: str


BUILTIN_WARNINGS = (
    Builtin("cmn", "危险水域，请勿靠近，请立即离开", "默认警告（普通话）", "默认警告（普通话）",
            "Default warning (Mandarin)"),
    Builtin("yue", "危險水域，唔好行近，請即刻離開", "默认警告（粤语）", "默认警告（粤语）",
            "Default warning (Cantonese)"),
    Builtin("en", "Dangerous water. Do not approach. Please leave immediately.",
            "Default warning (English)", "默认警告（英语）", "Default warning (English)"),
)  # fmt: skip


def voice_of(name: str) -> str:
    voice = VOICES.get(name.strip().lower())
    if voice is None:
        raise AudioRejected("invalid_voice", f"voice is one of {', '.join(LANGUAGES)}")
    return voice


def clean_text(text: str) -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise AudioRejected("invalid_request", "the text is empty")
    if len(cleaned) > MAX_TEXT:
        raise AudioRejected("text_too_long", f"the text is longer than {MAX_TEXT} characters")
    return cleaned


def speak(text: str, voice: str, speed: int = SPEED_WPM) -> bytes:
    """Blocking: espeak-ng's WAV of ``text``, refusals as the API's errors."""
    try:
        return speak_wav(text, voice, speed)
    except SpeechError as exc:
        if exc.missing:
            raise AudioRejected("audio_unavailable", str(exc), status=503) from exc
        raise AudioRejected("tts_failed", str(exc)) from exc


def tts_clip_id(text: str, voice: str, speed: int = SPEED_WPM) -> str:
    return f"tts-{content_key(voice, str(speed), text)[:20]}"


class Speech:
    """Spoken clips in the library."""

    def __init__(self, library: ClipLibrary) -> None:
        self.library = library
        # One rendering per text at a time: two officers sending the same words wait for one.
        self._locks: dict[str, asyncio.Lock] = {}

    def cached(self, text: str, voice_name: str) -> ClipInfo | None:
        return self.library.get(tts_clip_id(clean_text(text), voice_of(voice_name)))

    async def render(
        self, text: str, voice_name: str, *, created_by: str, now: datetime
    ) -> ClipInfo:
        voice = voice_of(voice_name)
        text = clean_text(text)
        clip_id = tts_clip_id(text, voice)
        lock = self._locks.setdefault(clip_id, asyncio.Lock())
        async with lock:
            found = self.library.get(clip_id)
            if found is not None:
                return found
            info = ClipInfo(
                id=clip_id,
                title=text[:200],
                sha256="",
                duration_ms=0,
                source="tts",
                created_at=format_ts(now),
                created_by=created_by,
                language=voice,
                text=text,
                tags=("tts", voice),
            )
            # espeak-ng is a subprocess and pydub's processing is CPU-bound: keep the loop free.
            rendered = await asyncio.to_thread(self._render, text, voice, info)
        self._locks.pop(clip_id, None)
        return rendered

    def _render(self, text: str, voice: str, info: ClipInfo) -> ClipInfo:
        wav = speak(text, voice)
        with tempfile.SpooledTemporaryFile() as handle:
            handle.write(wav)
            handle.seek(0)
            segment = AudioSegment.from_wav(handle)
        return self.library.add_segment(segment, info, wav)

    async def builtins(self, now: datetime) -> list[ClipInfo]:
        """The default warnings in Mandarin, Cantonese and English, rendered once ever."""
        out = []
        for builtin in BUILTIN_WARNINGS:
            clip_id = f"warning-{builtin.voice}"
            found = self.library.get(clip_id)
            if found is None:
                info = ClipInfo(
                    id=clip_id,
                    title=builtin.title,
                    sha256="",
                    duration_ms=0,
                    source="builtin",
                    created_at=format_ts(now),
                    created_by="system",
                    name_zh=builtin.name_zh,
                    name_en=builtin.name_en,
                    language=builtin.voice,
                    text=builtin.text,
                    tags=("warning", builtin.voice),
                )
                # As above: espeak-ng and pydub block.
                found = await asyncio.to_thread(self._render, builtin.text, builtin.voice, info)
            out.append(found)
        return out
