"""The local speaker driver plays through a real ffmpeg on ALSA (the ``null`` device here)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edge.agent import EdgeAgent
from edge.health import HealthServer
from edge.local_speaker import LocalSpeaker, player_command
from edge.sites import ServedSite
from riverguard.config import Config
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.models import Announce, AnnouncementAck, Stop
from tests.conftest import Broker
from tests.edge.support import (
    SITE,
    AudioServer,
    Recorder,
    announce,
    config_with_local_speaker,
    edge_settings,
    publisher,
    recording,
    running_edge,
    wav_bytes,
)

SPEAKER = "db-spk-local"


def test_player_command_sets_device_volume_and_repeat() -> None:
    command = player_command("/usr/bin/ffmpeg", Path("/c/a.wav"), "null", 80, 3)
    assert ["-stream_loop", "2"] == command[command.index("-stream_loop") :][:2]
    assert ["-af", "volume=0.80"] == command[command.index("-af") :][:2]
    assert ["-f", "alsa", "null"] == command[-3:]


@dataclass
class Scene:
    agent: EdgeAgent
    acks: Recorder
    hub: aiomqtt.Client

    @property
    def speaker(self) -> LocalSpeaker:
        speaker = self.agent.speakers[SPEAKER]
        assert isinstance(speaker, LocalSpeaker)
        return speaker

    async def announce(self, message: Announce) -> None:
        await self.hub.publish(topics.announce(SITE, SPEAKER), message.model_dump_json(), qos=1)

    def acks_of(self, announcement_id: str) -> list[AnnouncementAck]:
        acks = [
            AnnouncementAck.model_validate_json(p)
            for p in self.acks.on(topics.speaker_ack(SITE, SPEAKER))
        ]
        return [ack for ack in acks if ack.id == announcement_id]

    def states(self) -> list[tuple[str, str, str]]:
        acks = [
            AnnouncementAck.model_validate_json(p)
            for p in self.acks.on(topics.speaker_ack(SITE, SPEAKER))
        ]
        return [(ack.id, ack.state, ack.detail) for ack in acks]

    async def playing_pid(self, announcement_id: str) -> int:
        """The PID of the player once the announcement is acked playing."""
        await wait_for(
            lambda: (
                (announcement_id, "playing", "") in self.states() and self.speaker.pid is not None
            ),
            what=f"{announcement_id} playing",
        )
        pid = self.speaker.pid
        assert pid is not None
        return pid


@contextlib.asynccontextmanager
async def scene(
    broker: Broker, data_dir: Path, config: Config, **settings: Any
) -> AsyncIterator[Scene]:
    settings.setdefault("local_audio_device", "null")
    agent = EdgeAgent(
        edge_settings(broker.settings(f"edge-{SITE}"), data_dir, **settings),
        config_with_local_speaker(config),
    )
    async with (
        recording(broker.settings("hub"), topics.speaker_ack(SITE, SPEAKER)) as acks,
        running_edge(agent),
        publisher(broker.settings("hub")) as hub,
    ):
        yield Scene(agent, acks, hub)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.integration
async def test_announcement_plays_in_real_time_repeated_and_done(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(400, rate=16000))
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.announce(announce("ann-1", ref, repeat=2))
        await wait_for(lambda: ("ann-1", "done", "") in s.states(), what="done")
        acks = s.acks_of("ann-1")
    assert ["received", "playing", "done"] == [ack.state for ack in acks]
    played_s = (acks[2].ts - acks[1].ts).total_seconds()
    assert 0.8 <= played_s < 3.0  # 0.4 s twice, paced as a sound card would


@pytest.mark.integration
async def test_stop_and_preemption_kill_the_player_by_its_pid(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    long = audio_server.add("long.wav", wav_bytes(20_000))
    short = audio_server.add("short.wav", wav_bytes(100))
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.announce(announce("ann-low", long).model_copy(update={"priority": 2}))
        low_pid = await s.playing_pid("ann-low")
        await s.announce(announce("ann-high", short).model_copy(update={"priority": 8}))
        await wait_for(lambda: ("ann-high", "done", "") in s.states(), what="high done")
        assert ("ann-low", "failed", "preempted") in s.states()
        assert not _exists(low_pid)

        await s.announce(announce("ann-stop", long))
        stop_pid = await s.playing_pid("ann-stop")
        await s.hub.publish(topics.stop(SITE, SPEAKER), Stop(id="ann-stop").model_dump_json())
        await wait_for(lambda: ("ann-stop", "failed", "stopped") in s.states(), what="stopped")
        assert not _exists(stop_pid)
        assert s.speaker.pid is None


@pytest.mark.integration
async def test_missing_player_fails_the_announcement_without_playing(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(100))
    player = "riverguard-no-such-player"
    async with scene(own_broker, tmp_path, example_config, local_audio_player=player) as s:
        await s.announce(announce("ann-x", ref))
        await wait_for(lambda: 2 <= len(s.states()), what="two acks")
        detail = f"player {player} not found; cannot play on this edge"
        assert [("ann-x", "received", ""), ("ann-x", "failed", detail)] == s.states()


@pytest.mark.integration
async def test_player_that_cannot_open_the_sound_device_fails_with_its_error(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    ref = audio_server.add("warning.wav", wav_bytes(100))
    device = "riverguard-no-such-device"
    async with scene(own_broker, tmp_path, example_config, local_audio_device=device) as s:
        await s.announce(announce("ann-x", ref))
        await wait_for(lambda: 3 <= len(s.states()), what="three acks")
        [received, playing, (_, state, detail)] = s.states()
    assert [("ann-x", "received", ""), ("ann-x", "playing", "")] == [received, playing]
    assert "failed" == state
    assert detail.startswith("player exited 1: ")
    assert device in detail


@pytest.mark.integration
async def test_a_clean_edge_stop_leaves_no_player_behind(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    long = audio_server.add("long.wav", wav_bytes(20_000))
    async with scene(own_broker, tmp_path, example_config) as s:
        await s.announce(announce("ann-long", long))
        pid = await s.playing_pid("ann-long")
    await wait_for(lambda: not _exists(pid), what=f"player {pid} gone")


@pytest.mark.integration
async def test_the_edge_plays_its_own_warning_on_a_local_speaker_when_a_fence_is_breached(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    data = config_with_local_speaker(example_config).model_dump()
    for site in data["sites"]:
        if site["id"] == SITE:
            # A short warning: the null device takes it in real time, like a sound card.
            site.update(auto_warning="always", warning_text_zh="离开", warning_text_en="Leave.")
    config = Config.model_validate(data)
    agent = EdgeAgent(
        edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path, local_audio_device="null"),
        config,
    )
    server = HealthServer([ServedSite.of(agent)], 0)
    agent.audio_base_url = f"http://127.0.0.1:{server.port}"
    server.start()
    try:
        async with (
            recording(own_broker.settings("hub"), topics.speaker_ack(SITE, SPEAKER)) as acks,
            running_edge(agent),
            publisher(own_broker.settings("sim")) as fence,
        ):
            breach = json.dumps(fence_report(1, "z1"))
            await fence.publish(topics.field_report(SITE, "fence", "db-fence-01"), breach, qos=1)
            payloads = await acks.wait_count(topics.speaker_ack(SITE, SPEAKER), 3, timeout=30)
    finally:
        await asyncio.to_thread(server.stop)  # joins a thread
    states = [AnnouncementAck.model_validate_json(p) for p in payloads]
    assert ["received", "playing", "done"] == [ack.state for ack in states]
    assert states[0].id.startswith("edge-auto-z1-")
