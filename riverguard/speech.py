"""Offline speech with espeak-ng, shared by the hub (clips, TTS) and the edge
(its own warning when the hub is unreachable): one place that runs it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from riverguard.errors import RiverguardError

ESPEAK_TIMEOUT_S = 30
# Words per minute: a little slower than espeak's 175, for a loudspeaker over a river.
SPEED_WPM = 150


class SpeechError(RiverguardError):
    """espeak-ng is missing, failed or took too long; ``missing`` tells the first apart."""

    def __init__(self, detail: str, *, missing: bool = False) -> None:
        super().__init__(detail)
        self.missing = missing


def speak_wav(text: str, voice: str, speed: int = SPEED_WPM) -> bytes:
    """Blocking: espeak-ng's WAV of ``text`` in ``voice`` (cmn, yue, en, ...).

    espeak-ng falls back to its default voice for a name it does not know,
    without an error: callers pass only voices they mapped (``hub.tts.voice_of``).
    """
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SpeechError("espeak-ng is not installed; run scripts/setup", missing=True)
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        try:
            # The text goes on stdin: a text starting with "-" is not taken for an option.
            subprocess.run(
                [espeak, "-v", voice, "-s", str(speed), "-w", out.name, "--stdin"],
                input=text.encode(),
                check=True,
                capture_output=True,
                timeout=ESPEAK_TIMEOUT_S,
            )
        except subprocess.CalledProcessError as exc:
            raise SpeechError(f"espeak-ng failed for voice {voice}: {exc.stderr!r}"[:300]) from exc
        except subprocess.TimeoutExpired:
            raise SpeechError("espeak-ng took too long") from None
        except OSError as exc:
            raise SpeechError(f"espeak-ng could not run: {exc}") from exc
        return Path(out.name).read_bytes()
