"""The whole alarm path through real processes: device -> edge -> hub -> console -> speaker.

A raw fence breach published on the broker reaches a console WebSocket as an
alarm, is stored in InfluxDB, its acknowledgement over REST reaches the
WebSocket, and an announcement for it ends with the simulated speaker's
``done`` reaching the WebSocket.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import httpx
import pytest
import websockets

from edge.event_ids import EventIds
from riverguard.hub_session import HubSession
from riverguard.mqtt import BrokerSettings
from riverguard.stack import Stack
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.socket_auth import subprotocols
from tests.aiomqtt_client import aiomqtt_client
from tests.conftest import stack_logs

pytestmark = pytest.mark.integration

SITE = "danshui-bridge"
FENCE = "db-fence-01"
SPEAKER = "db-spk-01"


class Console:
    """A console's WebSocket: collects every message, lets a test await one."""

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection
        self.messages: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()

    async def pump(self) -> None:
        async for raw in self.connection:
            async with self._arrived:
                self.messages.append(json.loads(raw))
                self._arrived.notify_all()

    async def expect(
        self, kind: str, match: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        async def found() -> dict[str, Any]:
            async with self._arrived:
                while True:
                    for message in self.messages:
                        data: dict[str, Any] = message["data"]
                        if message["type"] == kind and match(data):
                            return data
                    await self._arrived.wait()

        try:
            return await asyncio.wait_for(found(), timeout)
        except TimeoutError:
            seen = [(m["type"], m["data"].get("id")) for m in self.messages]
            raise AssertionError(f"no matching {kind!r} within {timeout}s; saw {seen}") from None


@pytest.fixture
async def officer(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    password = stack.secrets.users["officer-li"]
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=10) as client:
        client.headers.update(
            (await HubSession.login_async(client, "officer-li", password)).headers
        )
        yield client


@pytest.fixture
async def console(stack: Stack, officer: httpx.AsyncClient) -> AsyncIterator[Console]:
    token = officer.headers["Authorization"].removeprefix("Bearer ")
    url = stack.hub_url.replace("http://", "ws://") + "/api/ws"
    async with websockets.connect(url, subprotocols=subprotocols(token)) as connection:
        client = Console(connection)
        pump = asyncio.create_task(client.pump(), name="test.console.pump")
        try:
            await client.expect("hello", lambda data: True)
            await connection.send(json.dumps({"op": "subscribe", "events": ["*"]}))
            yield client
        finally:
            pump.cancel()


async def test_fence_breach_becomes_alarm_acked_and_answered_by_speaker(
    stack: Stack, officer: httpx.AsyncClient, console: Console
) -> None:
    seq = int(time.time() * 1000) % 1_000_000_000  # unique across runs of one stack
    # The id the site's edge gives it, with the key it made at its start (7.10).
    event_id = EventIds.load_or_create(stack.data_dir / f"edge-{SITE}").mint(f"{FENCE}:{seq}")
    sim = BrokerSettings(
        host="127.0.0.1",
        port=stack.broker_port,
        username="sim",
        password=stack.secrets.broker["sim"],
    )
    async with aiomqtt_client(sim) as device:
        await device.publish(
            topics.field_report(SITE, "fence", FENCE),
            json.dumps(fence_report(seq, "z1", "breach")),
            qos=1,
        )

    try:
        alarm = await console.expect("alarm", lambda a: event_id in a["event_ids"])
        await console.expect("event", lambda e: e["id"] == event_id)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack_logs(stack)}") from None
    assert ("open", SITE, "z1") == (alarm["state"], alarm["site"], alarm["zone"])

    async def stored_in_influx() -> bool:
        response = await officer.get("/api/events", params={"site": SITE, "device": FENCE})
        assert 200 == response.status_code, response.text
        return event_id in [event["id"] for event in response.json()]

    await wait_for(stored_in_influx, timeout=10, what=f"{event_id} in GET /api/events")

    response = await officer.post(f"/api/alarms/{alarm['id']}/ack")
    assert 200 == response.status_code, response.text
    acked = await console.expect(
        "alarm", lambda a: a["id"] == alarm["id"] and a["state"] == "acknowledged"
    )
    assert "officer-li" == acked["acked_by"]

    response = await officer.post("/api/announcements", json={"alarm_id": alarm["id"]})
    assert 202 == response.status_code, response.text
    announcement_id = response.json()["id"]
    assert SPEAKER in response.json()["speakers"]
    # The simulated speaker fetches the audio, plays it (10x speed) and reports done.
    done = await console.expect(
        "announcement",
        lambda a: a["id"] == announcement_id and a["speakers"].get(SPEAKER) == "done",
        timeout=20,
    )
    states = [h["state"] for h in done["history"] if h["speaker"] == SPEAKER]
    assert ["received", "playing", "done"] == [s for s in states if s != "pending"]
    await console.expect(
        "alarm", lambda a: a["id"] == alarm["id"] and announcement_id in a["announcements"]
    )


async def test_broker_refuses_the_simulator_login_with_a_wrong_password(stack: Stack) -> None:
    wrong = BrokerSettings(
        host="127.0.0.1",
        port=stack.broker_port,
        username="sim",
        password="not-the-password",
    )
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt_client(wrong):
            pass
