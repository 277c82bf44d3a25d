"""The http speaker driver POSTs G.711 µ-law to a (simulated) network speaker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import httpx
import pytest

from edge.agent import EdgeAgent
from edge.http_speaker import to_ulaw
from riverguard.config import Config
from riverguard.services import free_port
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import Announce, AnnouncementAck, Stop
from simulators.http_speaker import HttpSpeakerSim
from tests.conftest import Broker
from tests.edge.conftest import HTTP_SPEAKER as SPEAKER
from tests.edge.support import (
    SITE,
    AudioServer,
    Recorder,
    announce,
    config_with_http_speaker,
    edge_settings,
    publisher,
    recording,
    running_edge,
    wav_bytes,
)


def test_audio_is_converted_once_to_8khz_ulaw(tmp_path: Path) -> None:
    wav = tmp_path / f"{'a' * 64}.wav"
    wav.write_bytes(wav_bytes(1000, rate=16000))
    ulaw = to_ulaw(wav)
    assert f"{'a' * 64}.8k.ulaw" == ulaw.name
    assert 8000 == pytest.approx(len(ulaw.read_bytes()), abs=80)
    assert ulaw == to_ulaw(wav)  # cached


def test_ulaw_audio_is_passed_through_as_it_is(tmp_path: Path) -> None:
    """The hub's headerless ``.ulaw`` rendering is not run through ffmpeg (it cannot read it)."""
    ulaw = tmp_path / f"{'a' * 64}.ulaw"
    ulaw.write_bytes(bytes(range(256)) * 10)
    assert ulaw == to_ulaw(ulaw)
    assert [ulaw.name] == [p.name for p in tmp_path.iterdir()]


async def test_simulated_http_speaker_plays_audio_basic_and_refuses_other_types(
    http_speaker: HttpSpeakerSim,
) -> None:
    url = f"http://127.0.0.1:{http_speaker.server.config.port}/audio"
    async with httpx.AsyncClient() as http:
        basic = {"Content-Type": "audio/basic"}
        played = await http.post(url, content=b"\x7f" * 800, headers=basic)
        refused = await http.post(url, content=b"RIFF", headers={"Content-Type": "audio/wav"})
    assert (204, 415) == (played.status_code, refused.status_code)
    assert [(800, True)] == [(p.bytes, p.completed) for p in http_speaker.playbacks]


@dataclass
class Scene:
    agent: EdgeAgent
    acks: Recorder
    hub: aiomqtt.Client

    async def announce(self, message: Announce) -> None:
        await self.hub.publish(topics.announce(SITE, SPEAKER), message.model_dump_json(), qos=1)

    def states(self) -> list[tuple[str, str, str]]:
        acks = [
            AnnouncementAck.model_validate_json(p)
            for p in self.acks.on(topics.speaker_ack(SITE, SPEAKER))
        ]
        return [(ack.id, ack.state, ack.detail) for ack in acks]


@contextlib.asynccontextmanager
async def scene(broker: Broker, data_dir: Path, config: Config) -> AsyncIterator[Scene]:
    agent = EdgeAgent(edge_settings(broker.settings(f"edge-{SITE}"), data_dir), config)
    async with (
        recording(broker.settings("hub"), topics.speaker_ack(SITE, SPEAKER)) as acks,
        running_edge(agent),
        publisher(broker.settings("hub")) as hub,
    ):
        yield Scene(agent, acks, hub)


def _config(example_config: Config, sim: HttpSpeakerSim) -> Config:
    url = f"http://127.0.0.1:{sim.server.config.port}/audio"
    return config_with_http_speaker(example_config, url, SPEAKER)


@pytest.mark.integration
async def test_announcement_is_posted_as_ulaw_repeated_and_done(
    own_broker: Broker,
    tmp_path: Path,
    example_config: Config,
    audio_server: AudioServer,
    http_speaker: HttpSpeakerSim,
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(200, rate=16000))
    async with scene(own_broker, tmp_path, _config(example_config, http_speaker)) as s:
        await s.announce(announce("ann-1", ref, repeat=2))
        await wait_for(lambda: ("ann-1", "done", "") in s.states(), what="done")
        assert [("ann-1", "received", ""), ("ann-1", "playing", ""), ("ann-1", "done", "")] == (
            s.states()
        )
    [playback] = http_speaker.playbacks
    assert 2 * 1600 == pytest.approx(playback.bytes, abs=40)  # 0.2 s at 8 kHz, twice
    assert playback.completed


@pytest.mark.integration
async def test_ulaw_announcement_reaches_the_speaker_byte_for_byte(
    own_broker: Broker,
    tmp_path: Path,
    example_config: Config,
    audio_server: AudioServer,
    http_speaker: HttpSpeakerSim,
) -> None:
    body = bytes(range(256)) * 8  # 0.256 s of µ-law noise: any conversion would change it
    ref = audio_server.add("warning.ulaw", body).model_copy(update={"format": "ulaw"})
    async with scene(own_broker, tmp_path, _config(example_config, http_speaker)) as s:
        await s.announce(announce("ann-u", ref, repeat=2))
        await wait_for(lambda: ("ann-u", "done", "") in s.states(), what="done")
    assert body * 2 == http_speaker.last_audio


@pytest.mark.integration
async def test_higher_priority_preempts_and_stop_interrupts_an_http_speaker(
    own_broker: Broker,
    tmp_path: Path,
    example_config: Config,
    audio_server: AudioServer,
    http_speaker: HttpSpeakerSim,
) -> None:
    long = audio_server.add("long.wav", wav_bytes(3000))
    short = audio_server.add("short.wav", wav_bytes(100))
    async with scene(own_broker, tmp_path, _config(example_config, http_speaker)) as s:
        low = announce("ann-low", long).model_copy(update={"priority": 2})
        await s.announce(low)
        await wait_for(lambda: ("ann-low", "playing", "") in s.states(), what="low playing")
        high = announce("ann-high", short).model_copy(update={"priority": 8})
        await s.announce(high)
        await wait_for(lambda: ("ann-high", "done", "") in s.states(), what="high done")
        assert ("ann-low", "failed", "preempted") in s.states()
        await s.announce(announce("ann-stop", long))
        await wait_for(lambda: ("ann-stop", "playing", "") in s.states(), what="playing")
        stop = Stop(id="ann-stop").model_dump_json()
        await s.hub.publish(topics.stop(SITE, SPEAKER), stop, qos=1)
        await wait_for(lambda: ("ann-stop", "failed", "stopped") in s.states(), what="stopped")
    await wait_for(lambda: 3 == len(http_speaker.playbacks), what="the speaker saw all three")
    assert [False, True, False] == [p.completed for p in http_speaker.playbacks]


@pytest.mark.integration
async def test_unreachable_http_speaker_fails_the_announcement(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(100))
    config = config_with_http_speaker(example_config, f"http://127.0.0.1:{free_port()}/x", SPEAKER)
    async with scene(own_broker, tmp_path, config) as s:
        await s.announce(announce("ann-x", ref))
        await wait_for(lambda: 3 == len(s.states()), what="three acks")
        [_, _, (_, state, detail)] = s.states()
        assert "failed" == state
        assert detail.startswith("speaker unreachable")
