"""The demo's swimmer waits for someone at the console of a real hub, and for open alarms
to be acknowledged, before it comes (``simulators.console_watch``)."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from riverguard.testing import wait_for
from riverguard.wire import topics
from simulators.console_watch import ConsoleWatch
from simulators.errors import SimulatorError
from tests.hub.conftest import PASSWORDS, SITE, RunningHub, event_payload, unique_seq

pytestmark = pytest.mark.integration


def _watch(running_hub: RunningHub, username: str = "viewer") -> ConsoleWatch:
    return ConsoleWatch(running_hub.url, username, PASSWORDS[username], poll_s=0.05)


async def test_swimmer_waits_until_a_console_is_logged_in(running_hub: RunningHub) -> None:
    watch = _watch(running_hub)
    waiting = asyncio.create_task(watch.wait(asyncio.Event()), name="test.console-watch")
    try:
        await wait_for(lambda: watch.waiting_for == "console", what="the watch to wait")
        assert not waiting.done()
        async with running_hub.socket(await running_hub.token("officer-li")):
            await asyncio.wait_for(waiting, 10)
        assert watch.waiting_for is None
    finally:
        waiting.cancel()


async def test_swimmer_waits_while_an_alarm_is_unacknowledged(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    officer = await running_hub.auth("officer-li")
    async with running_hub.socket(await running_hub.token("officer-li")):
        payload = event_payload(unique_seq(), severity="critical")
        await edge.publish(topics.events(SITE), json.dumps(payload), qos=1)

        async def alarm_open() -> bool:
            response = await running_hub.http.get(
                "/api/alarms", params={"state": "open"}, headers=officer
            )
            return bool(response.json())

        await wait_for(alarm_open, what="an open alarm")
        watch = _watch(running_hub)
        waiting = asyncio.create_task(watch.wait(asyncio.Event()), name="test.console-watch")
        try:
            await wait_for(lambda: watch.waiting_for == "alarm", what="the watch to wait")
            assert not waiting.done()
            alarms = await running_hub.http.get(
                "/api/alarms", params={"state": "open"}, headers=officer
            )
            for alarm in alarms.json():
                acked = await running_hub.http.post(
                    f"/api/alarms/{alarm['id']}/ack", headers=officer
                )
                assert 200 == acked.status_code
            await asyncio.wait_for(waiting, 10)
        finally:
            waiting.cancel()


async def test_stop_ends_the_wait_with_nobody_at_the_console(running_hub: RunningHub) -> None:
    watch = _watch(running_hub)
    stop = asyncio.Event()
    waiting = asyncio.create_task(watch.wait(stop), name="test.console-watch")
    await wait_for(lambda: watch.waiting_for == "console", what="the watch to wait")
    stop.set()
    await asyncio.wait_for(waiting, 10)
    assert "console" == watch.waiting_for


async def test_a_refused_login_is_a_clear_error(running_hub: RunningHub) -> None:
    watch = ConsoleWatch(running_hub.url, "viewer", "not-the-password", poll_s=0.05)
    with pytest.raises(SimulatorError, match="refused the login viewer"):
        await asyncio.wait_for(watch.wait(asyncio.Event()), 10)
