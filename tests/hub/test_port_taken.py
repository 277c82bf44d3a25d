"""A hub whose HTTP port is taken fails its own start, and says so."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.hub.conftest import MakeSettings, run_hub

pytestmark = pytest.mark.integration


async def test_a_hub_whose_port_is_taken_fails_its_start_and_the_event_loop_goes_on(
    make_settings: MakeSettings,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = make_settings(http_port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="exited with code"):
            async with run_hub(settings):
                pass
    # The loop was not stopped under the test: it still runs a task to its end.
    assert 1 == await asyncio.create_task(asyncio.sleep(0, result=1))
