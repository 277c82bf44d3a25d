"""Fixtures of the edge tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from riverguard.services import free_port
from riverguard.testing import wait_for
from simulators.http_speaker import HttpSpeakerSim
from tests.edge.support import AudioServer, background

HTTP_SPEAKER = "db-spk-http"


@pytest.fixture
def audio_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[AudioServer]:
    """A real HTTP server serving announcement audio, as the hub does.

    Edges built during the test take it as their hub (``RIVERGUARD_HUB_URL``).
    """
    with AudioServer().running() as server:
        monkeypatch.setenv("RIVERGUARD_HUB_URL", server.hub_url)
        yield server


@pytest.fixture
async def http_speaker() -> AsyncIterator[HttpSpeakerSim]:
    """The simulated network speaker (``HTTP_SPEAKER``), playing in real time."""
    sim = HttpSpeakerSim(HTTP_SPEAKER, "127.0.0.1", free_port(), speed=1.0)
    async with background(sim.run(), "test.http-speaker") as task:
        await wait_for(lambda: sim.started, what="http speaker serving")
        yield sim
        sim.stop()
        await asyncio.wait_for(task, 10)
