"""Local deterrence: the edge plays the site's warning itself, by policy, hours and cooldown."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.agent import EdgeAgent
from edge.health import HealthServer
from edge.sites import ServedSite
from riverguard.config import Config
from riverguard.policy import quiet_hours_cover
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.models import AnnouncementAck
from simulators.speaker import SimulatedSpeaker
from tests.conftest import Broker
from tests.edge.support import (
    SITE,
    Committer,
    Recorder,
    background,
    edge_settings,
    publisher,
    recording,
    running_edge,
    site_config,
)

SPEAKER = "db-spk-01"
FENCE = topics.field_report(SITE, "fence", "db-fence-01")
ACKS = topics.speaker_ack(SITE, SPEAKER)


@pytest.mark.parametrize(
    ("hours", "local", "quiet"),
    [
        ("22:00-06:00", "23:30", True),
        ("22:00-06:00", "05:59", True),
        ("22:00-06:00", "06:00", False),
        ("22:00-06:00", "12:00", False),
        ("12:00-14:00", "13:00", True),
        ("12:00-14:00", "14:30", False),
        (None, "03:00", False),
    ],
)
def test_quiet_hours_may_span_midnight(hours: str | None, local: str, quiet: bool) -> None:
    at = datetime.fromisoformat(f"2026-07-27T{local}:00")
    assert quiet == quiet_hours_cover(hours, at.time())


@dataclass
class Scene:
    agent: EdgeAgent
    speaker: SimulatedSpeaker
    acks: Recorder

    def outcome(self, outcome: str) -> float:
        value = self.agent.metrics.registry.get_sample_value(
            "riverguard_edge_auto_warnings_total", {"outcome": outcome}
        )
        return value or 0.0

    def states(self) -> list[tuple[str, str, str]]:
        acks = [AnnouncementAck.model_validate_json(payload) for payload in self.acks.on(ACKS)]
        return [(ack.id, ack.state, ack.detail) for ack in acks]


@contextlib.asynccontextmanager
async def scene(
    broker: Broker, data_dir: Path, config: Config, **settings: Any
) -> AsyncIterator[Scene]:
    agent = EdgeAgent(edge_settings(broker.settings(f"edge-{SITE}"), data_dir, **settings), config)
    server = HealthServer([ServedSite.of(agent)], 0)
    agent.audio_base_url = f"http://127.0.0.1:{server.port}"
    server.start()
    try:
        async with httpx.AsyncClient() as http:
            speaker = SimulatedSpeaker(broker.settings("sim"), SITE, SPEAKER, http, speed=50)
            async with (
                background(speaker.run(), "test.speaker"),
                recording(broker.settings("hub"), ACKS) as acks,
                running_edge(agent),
            ):
                await wait_for(speaker.ready.is_set, what="speaker ready")
                yield Scene(agent, speaker, acks)
    finally:
        await asyncio.to_thread(server.stop)  # joins a thread


async def _breach(broker: Broker, seq: int, zone: str = "z1") -> None:
    async with publisher(broker.settings("sim")) as device:
        await device.publish(FENCE, json.dumps(fence_report(seq, zone)), qos=1)


@pytest.mark.integration
async def test_always_plays_the_warning_served_by_the_edge_and_reports_it_as_edge_auto(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    config = site_config(example_config, auto_warning="always")
    async with scene(own_broker, tmp_path, config) as s:
        await _breach(own_broker, 1)
        await s.acks.wait_count(ACKS, 3)
        [(auto_id, _, detail), *rest] = s.states()
        assert auto_id.startswith("edge-auto-z1-")
        assert "edge-auto" == detail
        assert [(auto_id, "playing", ""), (auto_id, "done", "")] == rest
        assert [auto_id] == s.speaker.played
        assert 1.0 == s.outcome("played")


@pytest.mark.integration
async def test_cooldown_plays_once_per_zone(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    config = site_config(example_config, auto_warning="always", auto_warning_cooldown_s=600)
    async with scene(own_broker, tmp_path, config) as s:
        await _breach(own_broker, 1)
        await _breach(own_broker, 2)
        await wait_for(lambda: 1.0 == s.outcome("cooldown"), what="second breach cooled down")
        assert 1.0 == s.outcome("played")


@pytest.mark.integration
async def test_no_warning_in_quiet_hours_or_outside_the_configured_zones(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    now = datetime.now(UTC)
    hours = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=1)):%H:%M}"
    config = site_config(
        example_config,
        auto_warning="always",
        quiet_hours=hours,
        timezone="UTC",
        auto_warning_zones=["z1"],
    )
    async with scene(own_broker, tmp_path, config) as s:
        await _breach(own_broker, 1, "z1")
        await wait_for(lambda: 1.0 == s.outcome("quiet_hours"), what="quiet hours respected")
        await _breach(own_broker, 2, "z2")  # not a zone of auto_warning_zones: no decision
        await _breach(own_broker, 3, "z1")
        await wait_for(lambda: 2.0 == s.outcome("quiet_hours"), what="the next z1 breach")
        assert 0.0 == s.outcome("played")
        assert [] == s.states()


@pytest.mark.integration
async def test_when_hub_unreachable_waits_for_the_hub_and_plays_only_without_it(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    config = site_config(
        example_config, auto_warning="when_hub_unreachable", auto_warning_grace_s=0.5
    )
    hub = Committer(own_broker.settings("hub"), SITE)
    async with scene(own_broker, tmp_path, config) as s:
        async with background(hub.run(commit_every_s=0.02), "test.hub"):
            await wait_for(hub.ready.is_set, what="hub subscribed")
            await _breach(own_broker, 1)
            await wait_for(lambda: 1.0 == s.outcome("hub_answered"), what="the hub answered")
        await _breach(own_broker, 2)  # the hub is gone now
        await wait_for(lambda: 1.0 == s.outcome("played"), what="the edge warned itself")
        await s.acks.wait_count(ACKS, 3)
        assert ["received", "playing", "done"] == [state for _, state, _ in s.states()]
