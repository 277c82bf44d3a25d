"""Speaker profiles rendered by real ffmpeg, checked with ffprobe."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hub.clips import ClipInfo, ClipLibrary
from hub.errors import AudioRejected
from hub.profiles import Profile
from riverguard.site_warning import CHIME_PAUSE_MS
from riverguard.wire.times import utcnow
from tests.hub.conftest import RunningHub

# The chime is two tones, 220 ms and 320 ms.
CHIME_MS = 540


def ffprobe(path: Path, *forced: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", *forced, "-show_streams", "-show_format", "-of", "json",
         str(path)],
        check=True,
        capture_output=True,
    ).stdout  # fmt: skip
    info: dict[str, Any] = json.loads(out)
    return info


@pytest.fixture
def clip(tmp_path: Path) -> tuple[ClipLibrary, ClipInfo]:
    source = tmp_path / "speech.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=500:duration=2",
         "-ar", "44100", "-ac", "2", str(source)],
        check=True,
    )  # fmt: skip
    library = ClipLibrary(tmp_path / "clips", tmp_path / "audio")
    info = library.add_upload(source.read_bytes(), title="t", created_by="t", now=utcnow())
    return library, info


@pytest.mark.parametrize(
    ("profile", "codec", "rate", "forced"),
    [
        ("wav", "pcm_s16le", 16000, ()),
        # Headerless G.711 as network speakers take it: ffprobe must be told the format.
        ("ulaw", "pcm_mulaw", 8000, ("-f", "mulaw", "-ar", "8000", "-ac", "1")),
        ("mp3", "mp3", 22050, ()),
    ],
)
def test_each_profile_has_its_codec_rate_and_one_channel(
    clip: tuple[ClipLibrary, ClipInfo],
    profile: str,
    codec: str,
    rate: int,
    forced: tuple[str, ...],
) -> None:
    library, info = clip
    rendered = library.render(info, Profile(profile))  # type: ignore[arg-type]

    stream = ffprobe(rendered.path, *forced)["streams"][0]

    assert (codec, str(rate), 1) == (
        stream["codec_name"],
        stream["sample_rate"],
        stream["channels"],
    )
    assert rendered.path.name == f"{rendered.sha256}.{profile}"
    assert info.duration_ms == pytest.approx(rendered.duration_ms, abs=60)


def test_ulaw_is_one_byte_per_sample_at_8_khz(clip: tuple[ClipLibrary, ClipInfo]) -> None:
    library, info = clip
    rendered = library.render(info, Profile("ulaw"))
    assert info.duration_ms == pytest.approx(rendered.path.stat().st_size / 8, abs=20)


def test_chime_repeat_and_gap_make_the_expected_length(clip: tuple[ClipLibrary, ClipInfo]) -> None:
    library, info = clip
    rendered = library.render(info, Profile("wav", chime=True, repeat=3, gap_ms=700))
    expected = CHIME_MS + CHIME_PAUSE_MS + 3 * info.duration_ms + 2 * 700
    probed = float(ffprobe(rendered.path)["format"]["duration"]) * 1000
    assert expected == pytest.approx(rendered.duration_ms, abs=5)
    assert expected == pytest.approx(probed, abs=10)


def test_renderings_are_cached_by_content_hash(clip: tuple[ClipLibrary, ClipInfo]) -> None:
    library, info = clip
    first = library.render(info, Profile("mp3", chime=True))
    written = first.path.stat().st_mtime_ns
    again = library.render(info, Profile("mp3", chime=True))
    other = library.render(info, Profile("mp3", chime=False))
    assert (first, written) == (again, again.path.stat().st_mtime_ns)
    assert first.sha256 != other.sha256


@pytest.mark.parametrize("bad", [{"repeat": 0}, {"repeat": 6}, {"gap_ms": -1}, {"name": "flac"}])
def test_profile_options_are_bounded(bad: dict[str, Any]) -> None:
    with pytest.raises(AudioRejected):
        Profile(**bad)


async def test_render_route_serves_each_profile(running_hub: RunningHub) -> None:
    headers = await running_hub.auth("viewer")
    types = {}
    for profile in ("wav", "ulaw", "mp3"):
        response = await running_hub.http.get(
            f"/api/clips/warning-cmn/render?profile={profile}&chime=true&repeat=2",
            headers=headers,
        )
        assert 200 == response.status_code, response.text
        audio = await running_hub.http.get(response.json()["url"])
        types[profile] = audio.headers["content-type"]
    assert {"wav": "audio/wav", "ulaw": "audio/basic", "mp3": "audio/mpeg"} == types
