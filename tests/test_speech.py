"""espeak-ng, run in one place for hub and edge: real speech, clear refusals."""

from __future__ import annotations

import io

import pytest
from pydub import AudioSegment

from riverguard.speech import SpeechError, speak_wav


def test_speaks_mandarin_to_a_non_silent_wav() -> None:
    audio = AudioSegment.from_wav(io.BytesIO(speak_wav("危险水域", "cmn")))
    assert audio.duration_seconds > 0.3
    assert audio.dBFS > -40


def test_text_starting_with_a_dash_is_spoken_not_taken_for_an_option() -> None:
    audio = AudioSegment.from_wav(io.BytesIO(speak_wav("--help me", "en")))
    assert audio.duration_seconds > 0.3


def test_missing_espeak_is_a_speech_error_that_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SpeechError, match="not installed") as raised:
        speak_wav("hello", "en")
    assert raised.value.missing
