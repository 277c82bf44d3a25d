"""Announcements through the edge to a simulated mqtt speaker, acknowledged at every step."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import aiomqtt
import httpx
import pytest

from edge.agent import EdgeAgent
from edge.speakers import NO_RESPONSE, OFFLINE, MqttSpeaker
from riverguard.config import Config
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import Announce, AnnouncementAck, AudioRef, Stop
from simulators.speaker import SimulatedSpeaker
from tests.conftest import Broker
from tests.edge.support import (
    SITE,
    AudioServer,
    Recorder,
    announce,
    background,
    edge_settings,
    publisher,
    recording,
    running_edge,
    wav_bytes,
)

pytestmark = pytest.mark.integration

SPEAKER = "db-spk-01"


@dataclass
class Scene:
    agent: EdgeAgent
    speaker: SimulatedSpeaker
    acks: Recorder
    hub: aiomqtt.Client

    async def announce(self, message: Announce, speaker: str = SPEAKER) -> None:
        await self.hub.publish(topics.announce(SITE, speaker), message.model_dump_json(), qos=1)

    async def stop(self, announcement_id: str, speaker: str = SPEAKER) -> None:
        stop = Stop(id=announcement_id).model_dump_json()
        await self.hub.publish(topics.stop(SITE, speaker), stop, qos=1)

    def states(self, speaker: str = SPEAKER) -> list[tuple[str, str, str]]:
        acks = [
            AnnouncementAck.model_validate_json(payload)
            for payload in self.acks.on(topics.speaker_ack(SITE, speaker))
        ]
        return [(ack.id, ack.state, ack.detail) for ack in acks]

    async def wait_acks(self, count: int, speaker: str = SPEAKER) -> list[tuple[str, str, str]]:
        await self.acks.wait_count(topics.speaker_ack(SITE, speaker), count)
        return self.states(speaker)


@contextlib.asynccontextmanager
async def scene(
    broker: Broker, data_dir: Path, config: Config, speed: float = 50.0
) -> AsyncIterator[Scene]:
    """An edge, a simulated speaker, the hub's view of the acks and a hub client."""
    agent = EdgeAgent(edge_settings(broker.settings(f"edge-{SITE}"), data_dir), config)
    async with httpx.AsyncClient() as http:
        speaker = SimulatedSpeaker(broker.settings("sim"), SITE, SPEAKER, http, speed)
        async with (
            background(speaker.run(), "test.speaker"),
            recording(broker.settings("hub"), topics.speaker_ack(SITE, "+")) as acks,
            running_edge(agent),
            publisher(broker.settings("hub")) as hub,
        ):
            await wait_for(speaker.ready.is_set, what="speaker ready")
            yield Scene(agent, speaker, acks, hub)


async def test_announce_is_received_played_and_done(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    body = wav_bytes(500)
    ref = audio_server.add("warning.wav", body)
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.announce(announce("ann-1", ref, repeat=2))
        expected = [("ann-1", "received", ""), ("ann-1", "playing", ""), ("ann-1", "done", "")]
        assert expected == await s.wait_acks(3)
        assert ["ann-1"] == s.speaker.played
    assert body == (tmp_path / "audio" / f"{ref.sha256}.wav").read_bytes()
    # The edge fetched it once to verify and cache it, the speaker once to play it.
    assert ["/warning.wav", "/warning.wav"] == audio_server.requests


async def test_cached_audio_is_not_fetched_again_by_the_edge(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(100))
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.announce(announce("ann-1", ref))
        await s.wait_acks(3)
        await s.announce(announce("ann-2", ref))
        assert ("ann-2", "done", "") == (await s.wait_acks(6))[-1]
    assert 3 == len(audio_server.requests)  # edge once, speaker twice


async def test_sha256_mismatch_fails_the_announcement(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    good = audio_server.add("warning.wav", wav_bytes(100))
    wrong = AudioRef(url=good.url, sha256="0" * 64, format="wav", duration_ms=100)
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.announce(announce("ann-bad", wrong))
        received, failed = await s.wait_acks(2)
        assert ("ann-bad", "received", "") == received
        assert ("ann-bad", "failed") == failed[:2]
        assert "sha256 mismatch" in failed[2]
        assert [] == s.speaker.played
    assert not (tmp_path / "audio" / f"{'0' * 64}.wav").exists()


async def test_unreachable_audio_fails_the_announcement(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    missing = AudioRef(
        url=f"{audio_server.hub_url}/api/audio/missing.wav",
        sha256="1" * 64,
        format="wav",
        duration_ms=100,
    )
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.announce(announce("ann-404", missing))
        _, failed = await s.wait_acks(2)
        # The hub's answer stays in the edge's log: the ack says no more than this.
        assert ("ann-404", "failed", "audio not available from the hub") == failed


async def test_expired_announce_is_acked_expired_and_not_played(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(100))
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.announce(announce("ann-old", ref, expires_in_s=-1))
        assert [("ann-old", "expired", "")] == await s.wait_acks(1)
        # A later announcement shows the expired one was not sent on to the speaker.
        await s.announce(announce("ann-new", ref))
        assert ("ann-new", "done", "") == (await s.wait_acks(4))[-1]
        assert ["ann-new"] == s.speaker.played
    assert [] == [path for path in audio_server.requests if "old" in path]


async def test_stop_while_playing_ends_with_failed_stopped(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("long.wav", wav_bytes(3000))
    async with scene(own_broker, tmp_path, example_config, speed=0.5) as s:
        await s.announce(announce("ann-long", ref))
        await s.wait_acks(2)  # received, playing
        await s.stop("ann-long")
        assert ("ann-long", "failed", "stopped") == (await s.wait_acks(3))[-1]
        assert [] == s.speaker.played


async def test_stop_before_playing_fails_queued_and_fetching_announcements(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    """One announcement is being fetched (the hub is slow), the next waits behind it."""
    slow = audio_server.add("slow.wav", wav_bytes(100))
    audio_server.gated.add("/slow.wav")
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.announce(announce("ann-fetching", slow))
        await s.announce(announce("ann-queued", slow))
        await s.wait_acks(2)  # both received
        await wait_for(lambda: ["/slow.wav"] == audio_server.requests, what="edge fetching")
        await s.stop("ann-queued")
        assert ("ann-queued", "failed", "stopped") == (await s.wait_acks(3))[-1]
        await s.stop("ann-fetching")
        registry = s.agent.metrics.registry
        await wait_for(
            lambda: 2.0 == registry.get_sample_value("riverguard_edge_stops_total"),
            what="edge handled the second stop",
        )
        audio_server.gate.set()
        assert ("ann-fetching", "failed", "stopped") == (await s.wait_acks(4))[-1], s.states()
        assert [] == s.speaker.played


async def test_announce_for_an_unknown_speaker_is_failed_and_counted(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(100))
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.announce(announce("ann-x", ref), speaker="spk-99")
        assert [("ann-x", "failed", "unknown speaker")] == await s.wait_acks(1, speaker="spk-99")
        rejected = s.agent.metrics.registry.get_sample_value(
            "riverguard_edge_rejected_total", {"reason": "unknown_device"}
        )
        assert 1.0 == rejected


async def test_malformed_announce_is_counted_and_the_edge_goes_on(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(100))
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.hub.publish(topics.announce(SITE, SPEAKER), b'{"id": "ann-1"}', qos=1)
        await s.announce(announce("ann-2", ref))
        assert ["ann-2"] * 3 == [ack[0] for ack in await s.wait_acks(3)]
        rejected = s.agent.metrics.registry.get_sample_value(
            "riverguard_edge_rejected_total", {"reason": "invalid"}
        )
        assert 1.0 == rejected


# --- speakers that do not answer ----------------------------------------------------------


@dataclass
class SilentScene:
    """An edge and the hub's view of its acks; the test plays the speaker (or not)."""

    agent: EdgeAgent
    acks: Recorder
    hub: aiomqtt.Client
    speaker: aiomqtt.Client
    plays: Recorder

    def states(self) -> list[tuple[str, str, str]]:
        acks = [
            AnnouncementAck.model_validate_json(payload)
            for payload in self.acks.on(topics.speaker_ack(SITE, SPEAKER))
        ]
        return [(ack.id, ack.state, ack.detail) for ack in acks]

    async def wait_acks(self, count: int) -> list[tuple[str, str, str]]:
        await self.acks.wait_count(topics.speaker_ack(SITE, SPEAKER), count)
        return self.states()

    async def say(self, announcement_id: str, state: str) -> None:
        """The speaker reports a state."""
        payload = json.dumps({"id": announcement_id, "state": state})
        await self.speaker.publish(topics.speaker_state(SITE, SPEAKER), payload, qos=1)

    async def status(self, online: bool) -> None:
        payload = json.dumps({"online": online})
        status_topic = topics.field_status(SITE, "speaker", SPEAKER)
        await self.speaker.publish(status_topic, payload, qos=1, retain=True)


@contextlib.asynccontextmanager
async def silent_scene(
    broker: Broker, data_dir: Path, config: Config, **settings: float
) -> AsyncIterator[SilentScene]:
    agent = EdgeAgent(edge_settings(broker.settings(f"edge-{SITE}"), data_dir, **settings), config)
    async with (
        recording(broker.settings("hub"), topics.speaker_ack(SITE, "+")) as acks,
        recording(broker.settings("sim"), topics.speaker_play(SITE, SPEAKER)) as plays,
        running_edge(agent),
        publisher(broker.settings("hub")) as hub,
        publisher(broker.settings("sim")) as speaker,
    ):
        yield SilentScene(agent, acks, hub, speaker, plays)


def _late_states(agent: EdgeAgent) -> float:
    value = agent.metrics.registry.get_sample_value(
        "riverguard_edge_rejected_total", {"reason": "late_state"}
    )
    return value or 0.0


async def test_speaker_that_never_answers_fails_the_announcement(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    """No ``playing`` within the response timeout: failed, and a late answer is dropped."""
    ref = audio_server.add("warning.wav", wav_bytes(100))
    async with silent_scene(
        own_broker, tmp_path, example_config, speaker_response_timeout_s=0.3
    ) as s:
        message = announce("ann-mute", ref).model_dump_json()
        await s.hub.publish(topics.announce(SITE, SPEAKER), message, qos=1)
        expected = [("ann-mute", "received", ""), ("ann-mute", "failed", NO_RESPONSE)]
        assert expected == await s.wait_acks(2)
        assert 1 == len(s.plays.on(topics.speaker_play(SITE, SPEAKER)))
        await s.say("ann-mute", "playing")
        await wait_for(lambda: 1.0 == _late_states(s.agent), what="late state counted")
        assert expected == s.states()


async def test_speaker_that_never_says_done_fails_after_length_times_repeat_plus_margin(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(400))
    async with silent_scene(
        own_broker,
        tmp_path,
        example_config,
        speaker_response_timeout_s=5.0,
        speaker_done_margin_s=0.2,
    ) as s:
        message = announce("ann-stuck", ref, repeat=2).model_dump_json()
        await s.hub.publish(topics.announce(SITE, SPEAKER), message, qos=1)
        await s.plays.wait_count(topics.speaker_play(SITE, SPEAKER), 1)
        await s.say("ann-stuck", "playing")
        await s.wait_acks(2)
        playing_at = time.monotonic()
        failed = (await s.wait_acks(3))[-1]
        waited = time.monotonic() - playing_at
        assert ("ann-stuck", "failed", NO_RESPONSE) == failed
        # 0.4 s twice plus 0.2 s margin; the watchdog ticks at most every second.
        assert 1.0 <= waited < 3.0


async def test_speaker_that_answers_in_time_is_not_failed(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(100))
    async with silent_scene(
        own_broker,
        tmp_path,
        example_config,
        speaker_response_timeout_s=0.4,
        speaker_done_margin_s=0.2,
    ) as s:
        message = announce("ann-ok", ref).model_dump_json()
        await s.hub.publish(topics.announce(SITE, SPEAKER), message, qos=1)
        await s.plays.wait_count(topics.speaker_play(SITE, SPEAKER), 1)
        await s.say("ann-ok", "playing")
        await s.say("ann-ok", "done")
        await s.wait_acks(3)
        # A second announcement failing by timeout shows the first one's deadline had passed.
        await s.hub.publish(
            topics.announce(SITE, SPEAKER), announce("ann-2", ref).model_dump_json(), qos=1
        )
        await s.wait_acks(5)
    assert [
        ("ann-ok", "received", ""),
        ("ann-ok", "playing", ""),
        ("ann-ok", "done", ""),
        ("ann-2", "received", ""),
        ("ann-2", "failed", NO_RESPONSE),
    ] == s.states()


async def test_announcement_for_an_offline_speaker_fails_at_once(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(100))
    async with silent_scene(own_broker, tmp_path, example_config) as s:
        await s.status(online=False)
        await wait_for(
            lambda: cast(MqttSpeaker, s.agent.speakers[SPEAKER]).online is False,
            what="edge saw the speaker offline",
        )
        message = announce("ann-off", ref).model_dump_json()
        await s.hub.publish(topics.announce(SITE, SPEAKER), message, qos=1)
        expected = [("ann-off", "received", ""), ("ann-off", "failed", OFFLINE)]
        assert expected == await s.wait_acks(2)
        assert [] == s.plays.on(topics.speaker_play(SITE, SPEAKER))


async def test_speaker_going_offline_mid_announcement_fails_it_at_once(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(5000))
    async with silent_scene(
        own_broker, tmp_path, example_config, speaker_response_timeout_s=30.0
    ) as s:
        await s.status(online=True)
        message = announce("ann-cut", ref).model_dump_json()
        await s.hub.publish(topics.announce(SITE, SPEAKER), message, qos=1)
        await s.plays.wait_count(topics.speaker_play(SITE, SPEAKER), 1)
        await s.say("ann-cut", "playing")
        await s.wait_acks(2)
        await s.status(online=False)
        assert ("ann-cut", "failed", OFFLINE) == (await s.wait_acks(3))[-1]


# --- priorities -----------------------------------------------------------------------------


def _with_priority(message: Announce, priority: int) -> Announce:
    return message.model_copy(update={"priority": priority})


async def test_higher_priority_preempts_the_playing_announcement(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    long = audio_server.add("long.wav", wav_bytes(3000))
    short = audio_server.add("short.wav", wav_bytes(100))
    async with scene(own_broker, tmp_path, example_config, speed=1.0) as s:
        await s.announce(_with_priority(announce("ann-low", long), 2))
        await s.wait_acks(2)  # received, playing
        await s.announce(_with_priority(announce("ann-high", short), 8))
        await wait_for(lambda: ("ann-high", "done", "") in s.states(), what="high one done")
        states = s.states()
        assert ("ann-low", "failed", "preempted") in states
        assert states.index(("ann-low", "failed", "preempted")) < states.index(
            ("ann-high", "playing", "")
        )
        assert ["ann-high"] == s.speaker.played
        # The speaker's own "failed stopped" for the low one was not passed on.
        assert 1 == sum(1 for state in states if state[:2] == ("ann-low", "failed"))


async def test_equal_priority_waits_for_the_playing_one_to_finish(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    first = audio_server.add("first.wav", wav_bytes(600))
    second = audio_server.add("second.wav", wav_bytes(100))
    async with scene(own_broker, tmp_path, example_config, speed=2.0) as s:
        await s.announce(announce("ann-1", first))
        await s.wait_acks(2)
        await s.announce(announce("ann-2", second))
        await wait_for(lambda: ("ann-2", "done", "") in s.states(), what="second done")
        states = s.states()
        assert states.index(("ann-1", "done", "")) < states.index(("ann-2", "playing", ""))
        assert ["ann-1", "ann-2"] == s.speaker.played


async def test_queued_announcements_play_highest_priority_first(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    slow = audio_server.add("slow.wav", wav_bytes(100))
    audio_server.gated.add("/slow.wav")
    quick = audio_server.add("quick.wav", wav_bytes(100))
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.announce(_with_priority(announce("ann-fetching", slow), 9))
        await wait_for(lambda: ["/slow.wav"] == audio_server.requests, what="edge fetching")
        await s.announce(_with_priority(announce("ann-low", quick), 1))
        await s.announce(_with_priority(announce("ann-mid", quick), 5))
        await s.wait_acks(3)
        audio_server.gate.set()
        await wait_for(lambda: 3 == len(s.speaker.played), what="all three played")
        assert ["ann-fetching", "ann-mid", "ann-low"] == s.speaker.played
