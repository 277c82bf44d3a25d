"""The simulated mqtt speaker fetches, verifies and 'plays' audio, and reports its state."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from riverguard.mqtt import BrokerSettings
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import SpeakerPlay, SpeakerState
from simulators.speaker import AudioUnusable, SimulatedSpeaker, audio_duration_s
from tests.conftest import Broker
from tests.edge.support import AudioServer, Recorder, background, publisher, recording, wav_bytes

SITE = "danshui-bridge"
SPEAKER = "db-spk-01"
PLAY = topics.speaker_play(SITE, SPEAKER)
STATE = topics.speaker_state(SITE, SPEAKER)


def test_wav_duration_is_read_from_its_header() -> None:
    assert 0.5 == audio_duration_s(wav_bytes(500))
    assert 1.25 == audio_duration_s(wav_bytes(1250, rate=16000))


def test_headerless_audio_is_taken_as_8khz_ulaw() -> None:
    assert 1.0 == audio_duration_s(b"\x7f" * 8000)


@pytest.mark.parametrize("data", [b"ID3\x03\x00rest-of-mp3", b"RIFF\x00\x00\x00\x00WAVEjunk"])
def test_unplayable_audio_is_refused(data: bytes) -> None:
    with pytest.raises(AudioUnusable):
        audio_duration_s(data)


def _states(recorder: Recorder) -> list[tuple[str, str, str]]:
    states = [SpeakerState.model_validate_json(p) for p in recorder.on(STATE)]
    return [(s.id, s.state, s.detail) for s in states]


@contextlib.asynccontextmanager
async def speaker_scene(broker: Broker, speed: float = 50.0) -> AsyncIterator[Recorder]:
    sim: BrokerSettings = broker.settings("sim")
    async with httpx.AsyncClient() as http:
        speaker = SimulatedSpeaker(sim, SITE, SPEAKER, http, speed)
        async with (
            recording(broker.settings("edge-danshui-bridge"), STATE) as states,
            background(speaker.run(), "test.speaker"),
        ):
            await wait_for(speaker.ready.is_set, what="speaker ready")
            yield states


def _play(play_id: str, url: str, sha256: str, repeat: int = 1) -> str:
    return SpeakerPlay(
        id=play_id, url=url, sha256=sha256, volume=70, repeat=repeat
    ).model_dump_json()


@pytest.mark.integration
async def test_play_reports_playing_then_done(
    own_broker: Broker, audio_server: AudioServer
) -> None:
    ref = audio_server.add("a.wav", wav_bytes(200))
    async with (
        speaker_scene(own_broker) as states,
        publisher(own_broker.settings("edge-danshui-bridge")) as edge,
    ):
        await edge.publish(PLAY, _play("p1", ref.url, ref.sha256, repeat=3), qos=1)
        await states.wait_count(STATE, 2)
        assert [("p1", "playing", ""), ("p1", "done", "")] == _states(states)


@pytest.mark.integration
async def test_sha256_mismatch_reports_failed(
    own_broker: Broker, audio_server: AudioServer
) -> None:
    ref = audio_server.add("a.wav", wav_bytes(200))
    async with (
        speaker_scene(own_broker) as states,
        publisher(own_broker.settings("edge-danshui-bridge")) as edge,
    ):
        await edge.publish(PLAY, _play("p1", ref.url, "f" * 64), qos=1)
        await states.wait_count(STATE, 1)
        [(play_id, state, detail)] = _states(states)
        assert ("p1", "failed") == (play_id, state)
        assert "sha256 mismatch" in detail


@pytest.mark.integration
async def test_newer_play_preempts_the_current_one(
    own_broker: Broker, audio_server: AudioServer
) -> None:
    long = audio_server.add("long.wav", wav_bytes(5000))
    short = audio_server.add("short.wav", wav_bytes(100))
    async with (
        speaker_scene(own_broker, speed=1.0) as states,
        publisher(own_broker.settings("edge-danshui-bridge")) as edge,
    ):
        await edge.publish(PLAY, _play("long", long.url, long.sha256), qos=1)
        await states.wait_count(STATE, 1)
        await edge.publish(PLAY, _play("short", short.url, short.sha256), qos=1)
        await states.wait_count(STATE, 4)
        assert {
            ("long", "playing", ""),
            ("long", "failed", "preempted"),
            ("short", "playing", ""),
            ("short", "done", ""),
        } == set(_states(states))
        assert ("short", "done", "") == _states(states)[-1]


@pytest.mark.integration
async def test_speaker_announces_itself_online_retained(own_broker: Broker) -> None:
    status = topics.field_status(SITE, "speaker", SPEAKER)
    async with speaker_scene(own_broker), recording(own_broker.settings("sim"), status) as view:
        [payload] = await view.wait_count(status, 1)
        assert view.messages[0].retain
        assert {"online": True} == json.loads(payload)


@pytest.mark.integration
async def test_speaker_repeats_its_online_status_as_a_heartbeat(own_broker: Broker) -> None:
    status = topics.field_status(SITE, "speaker", SPEAKER)
    async with (
        httpx.AsyncClient() as http,
        recording(own_broker.settings("sim"), status) as view,
    ):
        sim = own_broker.settings("sim")
        speaker = SimulatedSpeaker(sim, SITE, SPEAKER, http, heartbeat_s=0.05)
        async with background(speaker.run(), "test.speaker"):
            payloads = await view.wait_count(status, 3)
    assert [{"online": True}] * 3 == [json.loads(payload) for payload in payloads[:3]]
