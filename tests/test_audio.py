"""The default warning is real speech rendered to the mqtt speaker profile."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from pydub import AudioSegment

from hub.audio import render_site_warning
from riverguard.config import Config


async def test_site_warning_is_16khz_mono_wav_named_by_its_sha256(
    tmp_path: Path, example_config: Config
) -> None:
    clip = await render_site_warning(example_config.sites[0], tmp_path)
    data = clip.path.read_bytes()
    assert clip.sha256 == hashlib.sha256(data).hexdigest()
    assert tmp_path / f"{clip.sha256}.wav" == clip.path
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(clip.path)],
        check=True,
        capture_output=True,
    )
    (stream,) = json.loads(probe.stdout)["streams"]
    assert ("pcm_s16le", "16000", 1) == (
        stream["codec_name"],
        stream["sample_rate"],
        stream["channels"],
    )
    # Chime plus both sentences: several seconds, and loud enough to be speech.
    assert 4000 < clip.duration_ms < 30000
    with clip.path.open("rb") as wav:
        assert AudioSegment.from_wav(wav).dBFS > -30


async def test_rendering_twice_gives_the_same_file(tmp_path: Path, example_config: Config) -> None:
    first = await render_site_warning(example_config.sites[0], tmp_path)
    second = await render_site_warning(example_config.sites[0], tmp_path)
    assert first.sha256 == second.sha256
    assert [first.path] == sorted(tmp_path.glob("*.wav"))
