"""Announces and speaker states the edge must not obey: foreign audio URLs, announces
beyond policy, forged speaker states (edge/agent.py, edge/audio.py, edge/speakers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.audio import on_hub
from edge.field_side import NOT_HUB_AUDIO
from edge.metrics import EdgeMetrics
from riverguard.config import Config
from riverguard.services import Influxd
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import AudioRef, SpeakerState
from tests.conftest import Broker
from tests.edge.support import SITE, AudioServer, announce, publisher, recording, wav_bytes
from tests.edge.test_announce import SPEAKER, scene

pytestmark = pytest.mark.integration


def rejected_count(metrics: EdgeMetrics, reason: str) -> float | None:
    return metrics.registry.get_sample_value("riverguard_edge_rejected_total", {"reason": reason})


HUB = "http://hub.example:8080/riverguard"
SHA = "ab" * 32


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"{HUB}/api/audio/{SHA}.wav", True),
        (f"https://hub.example:8080/riverguard/api/audio/{SHA}.wav", False),
        (f"http://hub.example/riverguard/api/audio/{SHA}.wav", False),
        (f"http://hub.example:8080/api/audio/{SHA}.wav", False),
        (f"http://hub.example:8080/riverguard/api/clips/{SHA}.wav", False),
        (f"http://hub.example:8080@evil.example/riverguard/api/audio/{SHA}.wav", False),
        (f"http://user@hub.example:8080/riverguard/api/audio/{SHA}.wav", False),
        ("http://hub.example:8080/riverguard/api/audio/..%2f..%2fmetrics", False),
        ("http://hub.example:8080/riverguard/api/audio/../../metrics", False),
        (f"http://hub.example:8080/riverguard/api/audio/{SHA}.wav?x=1", False),
        ("http://127.0.0.1:8086/ping", False),
        ("file:///etc/passwd", False),
        ("not a url at all", False),
    ],
)
def test_only_audio_under_the_hubs_url_counts_as_the_hubs(url: str, expected: bool) -> None:
    assert expected == on_hub(url, HUB)


def test_an_edge_with_no_hub_url_trusts_no_audio_url() -> None:
    assert not on_hub(f"{HUB}/api/audio/{SHA}.wav", None)


async def test_an_announce_of_influxdbs_ping_is_not_fetched_and_its_ack_tells_nothing(
    own_broker: Broker,
    tmp_path: Path,
    example_config: Config,
    audio_server: AudioServer,
    influxd: Influxd,
) -> None:
    """The attack: an announce naming another service's URL made the edge GET it."""
    elsewhere = AudioServer()
    with elsewhere.running():
        copy = elsewhere.add("warning.wav", wav_bytes(100))
        foreign = [
            AudioRef(url=f"{influxd.url}/ping", sha256=SHA, format="wav", duration_ms=100),
            # The right digest, the audio served by someone else.
            copy,
        ]
        async with scene(own_broker, tmp_path, example_config) as s:
            for index, ref in enumerate(foreign):
                await s.announce(announce(f"ann-foreign-{index}", ref))
            acks = await s.wait_acks(2)
            rejected = rejected_count(s.agent.metrics, "foreign_audio_url")
            assert [] == s.speaker.played

    assert [
        ("ann-foreign-0", "failed", NOT_HUB_AUDIO),
        ("ann-foreign-1", "failed", NOT_HUB_AUDIO),
    ] == acks
    assert 2 == rejected
    assert [] == elsewhere.requests


async def test_an_announce_beyond_policy_is_capped_by_the_edge(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    """Priority 10 with no alarm, volume 100, repeat 10: played as routine, repeat 5."""
    ref = audio_server.add("warning.wav", wav_bytes(100))
    loud = announce("ann-loud", ref).model_copy(
        update={"priority": 10, "repeat": 10, "volume": 100, "alarm_id": None}
    )
    play_topic = topics.speaker_play(SITE, SPEAKER)
    async with (
        recording(own_broker.settings("sim"), play_topic) as plays,
        scene(own_broker, tmp_path, example_config) as s,
    ):
        await s.announce(loud)
        [sent] = await plays.wait_count(play_topic, 1)
        received = (await s.wait_acks(1))[0]
        capped = s.agent.metrics.registry.get_sample_value(
            "riverguard_edge_announcements_capped_total"
        )

    assert (5, 100) == (json.loads(sent)["repeat"], json.loads(sent)["volume"])
    assert (
        "ann-loud",
        "received",
        "priority capped 10 -> 7 (no open alarm); repeat capped 10 -> 5 (routine)",
    ) == received
    assert 1 == capped


async def test_forged_speaker_states_never_reach_the_hub(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    """A ``done`` for an announcement the speaker is not playing, and repeats after the end."""
    ref = audio_server.add("warning.wav", wav_bytes(100))
    state_topic = topics.speaker_state(SITE, SPEAKER)
    async with (
        scene(own_broker, tmp_path, example_config) as s,
        publisher(own_broker.settings("sim")) as attacker,
    ):
        forged = SpeakerState(id="ann-never-sent", state="done").model_dump_json()
        await attacker.publish(state_topic, forged, qos=1)
        await s.announce(announce("ann-real", ref))
        assert ("ann-real", "done", "") == (await s.wait_acks(3))[-1]
        late = SpeakerState(id="ann-real", state="failed", detail="forged").model_dump_json()
        await attacker.publish(state_topic, late, qos=1)
        metrics = s.agent.metrics

        await wait_for(
            lambda: rejected_count(metrics, "late_state") == 1, what="late state dropped"
        )
        states = s.states()

    assert 1 == rejected_count(metrics, "unknown_state")
    assert [
        ("ann-real", "received", ""),
        ("ann-real", "playing", ""),
        ("ann-real", "done", ""),
    ] == states
