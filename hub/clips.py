"""The clip library: uploaded, spoken and built-in audio the hub can announce.

An upload (WAV, MP3, OGG or M4A) is checked with ffprobe before anything
decodes it: refused when empty, larger than ``MAX_UPLOAD_BYTES``, not audio,
in another container, or longer than ``MAX_DURATION_S``. What passes is
decoded (pydub over ffmpeg), made mono, trimmed of leading and trailing
silence and normalised to ``TARGET_DBFS`` RMS (peaks held under
``PEAK_CEILING_DBFS``), then kept as the clip's processed WAV; the uploaded
bytes are kept too, untouched, as the master. Speaker profiles
(``hub.profiles``) are rendered from the processed WAV.

Each clip's description (title, zh-CN and English names, tags, who added it)
is a small JSON file beside the audio, ``<data_dir>/clips/<id>.json``, so the
library needs no schema of its own and survives restarts as it is.

Every function here blocks (ffprobe, ffmpeg, file I/O): callers run them in a
thread.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydub import AudioSegment
from pydub.silence import detect_leading_silence

from hub.audio import Clip
from hub.errors import AudioRejected
from hub.profiles import Profile, Rendered, render
from riverguard.hashed_files import write_by_hash
from riverguard.wire.times import format_ts

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_DURATION_S = 60.0
PROBE_TIMEOUT_S = 20
# Speech level: -18 dBFS RMS is loud and clear on a horn speaker without clipping.
TARGET_DBFS = -18.0
PEAK_CEILING_DBFS = -1.0
# Silence is what lies this far under the clip's loudest moment (and under -35 dBFS).
SILENCE_BELOW_PEAK_DB = 45.0
# Kept at each end after trimming, so words do not start abruptly.
TRIM_PAD_MS = 80
MASTER_RATE = 22_050

MAX_TITLE = 200
MAX_TAGS = 10
MAX_TAG = 40

# ffprobe's format_name -> the upload format we accept.
_FORMATS = {
    "wav": "wav",
    "mp3": "mp3",
    "ogg": "ogg",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
}
_CLIP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")

ClipSource = Literal["upload", "tts", "builtin", "site"]


@dataclass(frozen=True, slots=True)
class ClipInfo:
    id: str
    title: str
    sha256: str
    duration_ms: int
    source: ClipSource
    created_at: str
    created_by: str
    name_zh: str = ""
    name_en: str = ""
    tags: tuple[str, ...] = ()
    language: str | None = None
    text: str | None = None
    master_sha256: str = ""
    master_format: str = "wav"
    master_bytes: int = 0
    site: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClipInfo:
        return cls(**{**data, "tags": tuple(data.get("tags", ()))})


@dataclass(frozen=True, slots=True)
class Probe:
    format: str
    duration_s: float


def clean_tags(tags: list[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(t.strip() for t in tags if t.strip()))
    if len(cleaned) > MAX_TAGS or any(len(t) > MAX_TAG for t in cleaned):
        raise AudioRejected("invalid_request", f"at most {MAX_TAGS} tags of {MAX_TAG} characters")
    return cleaned


def probe(path: Path) -> Probe:
    """What ffprobe says the file is; refuses what is not audio of an accepted format."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise AudioRejected("audio_unavailable", "ffprobe is not installed", status=503)
    try:
        result = subprocess.run(
            [ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AudioRejected("not_audio", "the file could not be read as audio in time") from None
    if result.returncode != 0:
        raise AudioRejected("not_audio", "the file is not audio ffprobe can read", status=415)
    info = json.loads(result.stdout or b"{}")
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    video = [
        s
        for s in info.get("streams", [])
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    format_name = str(info.get("format", {}).get("format_name", ""))
    if not streams or video:
        raise AudioRejected(
            "not_audio", f"the file holds no audio track (read as {format_name!r})", status=415
        )
    accepted = _FORMATS.get(format_name)
    if accepted is None:
        raise AudioRejected(
            "unsupported_format",
            f"{format_name!r} is not accepted; upload WAV, MP3, OGG or M4A",
            status=415,
        )
    raw = info.get("format", {}).get("duration") or streams[0].get("duration")
    try:
        duration = float(raw)
    except (TypeError, ValueError):
        duration = -1.0
    return Probe(accepted, duration)


def process(segment: AudioSegment) -> AudioSegment:
    """Mono, trimmed of silence at both ends, normalised to the target level."""
    segment = segment.set_channels(1).set_frame_rate(MASTER_RATE).set_sample_width(2)
    if segment.max_dBFS == float("-inf"):
        raise AudioRejected("silent", "the clip is silent")
    threshold = min(-35.0, segment.max_dBFS - SILENCE_BELOW_PEAK_DB)
    start = detect_leading_silence(segment, silence_threshold=threshold, chunk_size=10)
    end = detect_leading_silence(segment.reverse(), silence_threshold=threshold, chunk_size=10)
    start = max(0, start - TRIM_PAD_MS)
    stop = min(len(segment), len(segment) - end + TRIM_PAD_MS)
    trimmed = segment[start:stop]
    if len(trimmed) < 100:
        raise AudioRejected("silent", "the clip holds no sound above silence")
    gain = TARGET_DBFS - trimmed.dBFS
    gain = min(gain, PEAK_CEILING_DBFS - trimmed.max_dBFS)
    return trimmed.apply_gain(gain)


def segment_bytes(segment: AudioSegment) -> bytes:
    buffer = io.BytesIO()
    segment.export(buffer, format="wav")
    return buffer.getvalue()


class ClipLibrary:
    """Clips by id, their descriptions on disk, and their renderings per profile."""

    def __init__(self, root: Path, audio_dir: Path) -> None:
        self.root = root
        self.audio_dir = audio_dir
        self.masters = root / "masters"
        self.processed = root / "processed"
        self._clips: dict[str, ClipInfo] = {}
        # Routes call in from worker threads; descriptions are written one at a time.
        self._lock = threading.Lock()

    def load(self) -> None:
        """Blocking: read every clip description under the library folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.root.glob("*.json")):
            info = ClipInfo.from_json(json.loads(path.read_text(encoding="utf-8")))
            if (self.processed / f"{info.sha256}.wav").is_file():
                self._clips[info.id] = info

    # --- reading -------------------------------------------------------------

    def get(self, clip_id: str) -> ClipInfo | None:
        return self._clips.get(clip_id)

    def all(self) -> list[ClipInfo]:
        return sorted(self._clips.values(), key=lambda c: (c.source != "builtin", c.created_at))

    def processed_path(self, info: ClipInfo) -> Path:
        return self.processed / f"{info.sha256}.wav"

    def render(self, info: ClipInfo, profile: Profile) -> Rendered:
        """Blocking: the clip for one speaker profile (cached by content hash)."""
        return render(self.processed_path(info), info.sha256, profile, self.audio_dir)

    def announce_clip(self, info: ClipInfo, profile: Profile | None = None) -> Clip:
        """Blocking: the clip as announcements send it (default: 16 kHz mono WAV)."""
        rendered = self.render(info, profile or Profile())
        return Clip(
            id=info.id,
            sha256=rendered.sha256,
            path=rendered.path,
            format=rendered.format,
            duration_ms=rendered.duration_ms,
            title=info.title,
        )

    # --- adding --------------------------------------------------------------

    def add_upload(
        self,
        data: bytes,
        *,
        title: str,
        created_by: str,
        now: datetime,
        name_zh: str = "",
        name_en: str = "",
        tags: tuple[str, ...] = (),
    ) -> ClipInfo:
        """Blocking: validate, process and keep an uploaded file."""
        if not data:
            raise AudioRejected("empty", "the file is empty")
        if len(data) > MAX_UPLOAD_BYTES:
            raise AudioRejected(
                "too_large", f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB", status=413
            )
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.root, suffix=".upload") as tmp:
            tmp.write(data)
            tmp.flush()
            found = probe(Path(tmp.name))
            if found.duration_s > MAX_DURATION_S:
                raise AudioRejected(
                    "too_long",
                    f"the clip lasts {found.duration_s:.1f} s; at most {MAX_DURATION_S:.0f} s",
                )
            try:
                with open(tmp.name, "rb") as handle:
                    decoded = AudioSegment.from_file(handle, format=_ffmpeg_format(found.format))
            except Exception as exc:  # pydub raises CouldntDecodeError or bare exceptions
                raise AudioRejected(
                    "not_audio", f"the audio cannot be decoded: {exc}"[:300]
                ) from exc
        if len(decoded) > MAX_DURATION_S * 1000:
            raise AudioRejected(
                "too_long",
                f"the clip lasts {len(decoded) / 1000:.1f} s; at most {MAX_DURATION_S:.0f} s",
            )
        master_sha, _ = write_by_hash(data, found.format, self.masters)
        clip_id = f"clip-{master_sha[:16]}"
        existing = self.get(clip_id)
        if existing is not None:
            return existing
        return self._keep(
            process(decoded),
            ClipInfo(
                id=clip_id,
                title=title,
                sha256="",
                duration_ms=0,
                source="upload",
                created_at=format_ts(now),
                created_by=created_by,
                name_zh=name_zh,
                name_en=name_en,
                tags=tags,
                master_sha256=master_sha,
                master_format=found.format,
                master_bytes=len(data),
            ),
        )

    def add_segment(self, segment: AudioSegment, info: ClipInfo, master: bytes) -> ClipInfo:
        """Blocking: keep audio made by the hub itself (speech, a site's warning)."""
        master_sha, _ = write_by_hash(master, "wav", self.masters)
        info = replace(
            info, master_sha256=master_sha, master_format="wav", master_bytes=len(master)
        )
        return self._keep(process(segment), info)

    def update(self, clip_id: str, **changes: Any) -> ClipInfo:
        with self._lock:
            info = self._clips.get(clip_id)
            if info is None:
                raise AudioRejected("not_found", f"no clip {clip_id!r}", status=404)
            info = replace(info, **changes)
            self._write(info)
            return info

    def _keep(self, segment: AudioSegment, info: ClipInfo) -> ClipInfo:
        if not _CLIP_ID.match(info.id):
            raise AudioRejected("invalid_request", f"bad clip id {info.id!r}")
        sha256, _ = write_by_hash(segment_bytes(segment), "wav", self.processed)
        info = replace(info, sha256=sha256, duration_ms=len(segment))
        with self._lock:
            self._write(info)
        return info

    def _write(self, info: ClipInfo) -> None:
        path = self.root / f"{info.id}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(info.to_json(), ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
        self._clips[info.id] = info


def _ffmpeg_format(accepted: str) -> str:
    # ffmpeg's demuxer for M4A is "mp4"; the others carry their own names.
    return "mp4" if accepted == "m4a" else accepted


def content_key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
