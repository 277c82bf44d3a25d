"""Fixtures of the simulator tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.edge.support import AudioServer


@pytest.fixture
def audio_server() -> Iterator[AudioServer]:
    """A real HTTP server serving announcement audio, as the hub does."""
    with AudioServer().running() as server:
        yield server
