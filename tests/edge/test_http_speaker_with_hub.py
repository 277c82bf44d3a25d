"""An http network speaker end to end: the real hub's µ-law rendering, through the real edge.

The hub sends ``http`` speakers its ``ulaw`` rendering (headerless G.711, 8 kHz
mono); the edge must POST those bytes as they are, and the simulated speaker
must get audio that ffprobe reads as such, of the clip's length.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from riverguard.config import load_config
from riverguard.services import Influxd
from riverguard.testing import wait_for
from simulators.http_speaker import HttpSpeakerSim
from tests.conftest import EXAMPLE_CONFIG, Broker
from tests.edge.conftest import HTTP_SPEAKER as SPEAKER
from tests.edge.support import SITE, edge_settings, running_edge
from tests.hub.conftest import hub_settings, run_hub
from tests.hub.test_profiles import ffprobe

pytestmark = pytest.mark.integration


def config_file(tmp_path: Path, speaker_url: str) -> Path:
    """The example configuration plus an http speaker at danshui-bridge, as a file for the hub."""
    speaker = f"""
[[devices]]
id = "{SPEAKER}"
site = "{SITE}"
type = "speaker"
driver = "http"
url = "{speaker_url}"
zones = ["z1"]
"""
    path = tmp_path / "riverguard.toml"
    path.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8") + speaker, encoding="utf-8")
    return path


async def test_http_speaker_gets_the_hubs_ulaw_rendering_and_reports_done(
    own_broker: Broker,
    influxd: Influxd,
    influx_database: str,
    tmp_path: Path,
    http_speaker: HttpSpeakerSim,
) -> None:
    url = f"http://127.0.0.1:{http_speaker.server.config.port}/audio"
    path = config_file(tmp_path, url)
    settings = hub_settings(
        tmp_path, own_broker.settings("hub"), influxd.url, influx_database, config=path
    )
    agent = EdgeAgent(
        edge_settings(
            own_broker.settings(f"edge-{SITE}"), tmp_path / "edge", hub_url=settings.base_url
        ),
        load_config(path),
    )
    async with run_hub(settings) as hub, running_edge(agent):
        headers = await hub.auth()
        clip = (await hub.http.get("/api/clips/warning-cmn", headers=headers)).json()
        response = await hub.http.post(
            "/api/announcements",
            headers=headers,
            json={"speakers": [SPEAKER], "clip_id": "warning-cmn", "repeat": 1},
        )
        assert 202 == response.status_code, response.text
        ann_id = response.json()["id"]

        async def states() -> list[str]:
            shaped = (await hub.http.get(f"/api/announcements/{ann_id}", headers=headers)).json()
            return [step["state"] for step in shaped["history"]]

        async def finished() -> bool:
            return {"done", "failed", "expired"} & set(await states()) != set()

        await wait_for(finished, timeout=30, what="the speaker's final state")
        assert ["pending", "received", "playing", "done"] == await states()

    received = tmp_path / "received.ulaw"
    received.write_bytes(http_speaker.last_audio)
    probed = ffprobe(received, "-f", "mulaw", "-ar", "8000", "-ac", "1")
    stream = probed["streams"][0]
    assert ("pcm_mulaw", "8000", 1) == (
        stream["codec_name"],
        stream["sample_rate"],
        stream["channels"],
    )
    seconds = float(probed["format"]["duration"])
    # The WAV clip's length, within a few samples' rounding of the 8 kHz resampling.
    assert clip["duration_ms"] / 1000 == pytest.approx(seconds, abs=0.06)
    assert [True] == [p.completed for p in http_speaker.playbacks]
