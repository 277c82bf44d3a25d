"""The default warning: real speech in the mqtt speaker profile, one file on hub and edge."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from pydub import AudioSegment

from edge.warning import prepare_warning
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


async def test_edge_and_hub_render_one_site_warning_with_one_hash(
    tmp_path: Path, example_config: Config
) -> None:
    """The edge's own warning (local deterrence) is the file the hub announces."""
    site = example_config.sites[0]
    hub_clip = await render_site_warning(site, tmp_path / "hub")
    edge_ref = await prepare_warning(site, tmp_path / "edge", "http://edge.invalid:9100/")
    edge_file = tmp_path / "edge" / f"{edge_ref.sha256}.wav"
    assert hub_clip.sha256 == edge_ref.sha256
    assert hub_clip.path.read_bytes() == edge_file.read_bytes()
    assert (hub_clip.duration_ms, f"http://edge.invalid:9100/audio/{hub_clip.sha256}.wav") == (
        edge_ref.duration_ms,
        edge_ref.url,
    )


async def test_sites_with_the_same_texts_share_a_warning_and_other_texts_get_their_own(
    tmp_path: Path, example_config: Config
) -> None:
    """Rendered once per pair of texts (a city's sites mostly share the default ones)."""
    bridge, wharf = example_config.sites[:2]
    assert (bridge.warning_text_zh, bridge.warning_text_en) == (
        wharf.warning_text_zh,
        wharf.warning_text_en,
    )
    own = wharf.model_copy(update={"warning_text_en": "Deep water. Step back from the edge."})
    shared = [await render_site_warning(site, tmp_path) for site in (bridge, wharf)]
    other = await render_site_warning(own, tmp_path)
    assert shared[0].sha256 == shared[1].sha256 != other.sha256
    assert sorted([shared[0].path, other.path]) == sorted(tmp_path.glob("*.wav"))
