"""Speaker profiles: a clip rendered the way one kind of speaker takes it.

- ``wav``: 16 kHz, 16-bit, mono WAV, for ``mqtt`` speakers (PROTOCOL 1.5);
- ``ulaw``: G.711 µ-law, 8 kHz, mono, headerless (``audio/basic``), for ``http``
  network speakers;
- ``mp3``: 22.05 kHz mono MP3 at 48 kbit/s, for players that want it small.

A rendering may put an attention chime before the message, and repeat the
message with a gap between repeats. Renderings are cached by content hash:
the key is the master's sha256 and the profile's options, the file is named
by its own sha256 in the audio folder (served as ``/api/audio/<sha256>.<ext>``),
and a small index file maps one to the other, so a restart renders nothing twice.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from pydub import AudioSegment

from hub.errors import AudioRejected
from riverguard.hashed_files import write_by_hash
from riverguard.site_warning import CHIME_PAUSE_MS, chime

ProfileName = Literal["wav", "ulaw", "mp3"]
PROFILE_NAMES: tuple[ProfileName, ...] = ("wav", "ulaw", "mp3")

MAX_REPEAT = 5
MAX_GAP_MS = 10_000


@dataclass(frozen=True, slots=True)
class Profile:
    name: ProfileName = "wav"
    chime: bool = False
    repeat: int = 1
    gap_ms: int = 800

    def __post_init__(self) -> None:
        if self.name not in PROFILE_NAMES:
            raise AudioRejected("invalid_profile", f"profile is one of {', '.join(PROFILE_NAMES)}")
        if not 1 <= self.repeat <= MAX_REPEAT:
            raise AudioRejected("invalid_profile", f"repeat is 1 to {MAX_REPEAT}")
        if not 0 <= self.gap_ms <= MAX_GAP_MS:
            raise AudioRejected("invalid_profile", f"gap_ms is 0 to {MAX_GAP_MS}")

    def key(self, master_sha256: str) -> str:
        spec = json.dumps({"master": master_sha256, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(spec.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Rendered:
    sha256: str
    format: ProfileName
    duration_ms: int
    path: Path


_RATES: dict[ProfileName, int] = {"wav": 16_000, "ulaw": 8_000, "mp3": 22_050}


def assemble(speech: AudioSegment, profile: Profile) -> AudioSegment:
    """Chime, then the speech ``repeat`` times with ``gap_ms`` between, as mono 16-bit."""
    rate = _RATES[profile.name]
    speech = speech.set_channels(1).set_frame_rate(rate).set_sample_width(2)
    out = AudioSegment.silent(duration=0, frame_rate=rate)
    if profile.chime:
        out = out + chime().set_channels(1).set_frame_rate(rate).set_sample_width(2)
        out = out + AudioSegment.silent(duration=CHIME_PAUSE_MS, frame_rate=rate)
    gap = AudioSegment.silent(duration=profile.gap_ms, frame_rate=rate)
    for i in range(profile.repeat):
        if i:
            out = out + gap
        out = out + speech
    return out.set_channels(1).set_frame_rate(rate).set_sample_width(2)


def encode(segment: AudioSegment, name: ProfileName) -> bytes:
    """Blocking (ffmpeg for ``ulaw`` and ``mp3``): the segment in the profile's encoding."""
    buffer = io.BytesIO()
    rate = str(_RATES[name])
    if name == "wav":
        segment.export(buffer, format="wav")
    elif name == "ulaw":
        segment.export(
            buffer, format="mulaw", codec="pcm_mulaw", parameters=["-ar", rate, "-ac", "1"]
        )
    else:
        segment.export(buffer, format="mp3", bitrate="48k", parameters=["-ar", rate, "-ac", "1"])
    return buffer.getvalue()


def _duration_ms(data: bytes, name: ProfileName, segment: AudioSegment) -> int:
    if name == "ulaw":
        return len(data) * 1000 // _RATES["ulaw"]
    return len(segment)


def render(master: Path, master_sha256: str, profile: Profile, audio_dir: Path) -> Rendered:
    """Blocking: ``master`` (a processed WAV) rendered for ``profile``; cached."""
    index = audio_dir / "profiles" / f"{profile.key(master_sha256)}.json"
    if index.is_file():
        known = json.loads(index.read_text(encoding="utf-8"))
        path = audio_dir / f"{known['sha256']}.{profile.name}"
        if path.is_file():
            return Rendered(known["sha256"], profile.name, int(known["duration_ms"]), path)
    with master.open("rb") as handle:
        speech = AudioSegment.from_wav(handle)
    segment = assemble(speech, profile)
    data = encode(segment, profile.name)
    sha256, path = write_by_hash(data, profile.name, audio_dir)
    duration_ms = _duration_ms(data, profile.name, segment)
    index.parent.mkdir(parents=True, exist_ok=True)
    tmp = index.with_name(f".{index.name}.{sha256[:8]}.tmp")
    tmp.write_text(json.dumps({"sha256": sha256, "duration_ms": duration_ms}), encoding="utf-8")
    tmp.replace(index)
    return Rendered(sha256, profile.name, duration_ms, path)
