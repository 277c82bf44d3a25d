"""Devices on demand against a real hub: ``hello`` and site items carry per-site device
counts, ``GET /api/sites/{id}/devices`` pages a site's devices (PROTOCOL 7.37)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiomqtt
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from riverguard.wire import topics
from riverguard.wire.times import format_ts, utcnow
from tests.aiomqtt_client import aiomqtt_client
from tests.conftest import Broker
from tests.hub.conftest import SITE, RunningHub, ws_inbox

pytestmark = pytest.mark.integration

OTHER = "xiyong-wharf"
ROUNDS = 20


async def test_hello_carries_counts_not_devices(running_hub: RunningHub) -> None:
    headers = await running_hub.auth("viewer")
    async with running_hub.socket(await running_hub.token("viewer")) as ws, ws_inbox(ws) as inbox:
        hello = await inbox.wait_for(lambda m: m["type"] == "hello")
    assert "devices" not in hello["data"]
    site = next(s for s in hello["data"]["sites"] if s["id"] == SITE)
    listed = (await running_hub.http.get(f"/api/sites/{SITE}/devices", headers=headers)).json()
    totals = {kind: count["total"] for kind, count in site["devices"].items()}
    by_type: dict[str, int] = {}
    for device in listed["devices"]:
        by_type[device["type"]] = by_type.get(device["type"], 0) + 1
    assert {"fence": 2, "camera": 2, "speaker": 1} == totals == by_type
    for count in site["devices"].values():
        assert count["total"] == count["online"] + count["offline"] + count["unknown"]


async def test_pages_cover_the_site_once_in_order(running_hub: RunningHub) -> None:
    headers = await running_hub.auth("viewer")
    whole = (await running_hub.http.get(f"/api/sites/{SITE}/devices", headers=headers)).json()
    pages = []
    for offset in (0, 2, 4, 6):
        page = (
            await running_hub.http.get(
                f"/api/sites/{SITE}/devices?offset={offset}&limit=2", headers=headers
            )
        ).json()
        assert (SITE, 5, offset, 2) == (
            page["site"],
            page["total"],
            page["offset"],
            page["limit"],
        )
        pages.append([d["id"] for d in page["devices"]])
    assert [2, 2, 1, 0] == [len(p) for p in pages]
    assert [d["id"] for d in whole["devices"]] == [i for p in pages for i in p]
    assert {SITE} == {d["site"] for d in whole["devices"]}


async def test_only_a_logged_in_user_lists_devices(running_hub: RunningHub) -> None:
    for headers in ({}, {"Authorization": "Bearer nonsense"}):
        response = await running_hub.http.get(f"/api/sites/{SITE}/devices", headers=headers)
        assert (401, "unauthorized") == (response.status_code, response.json()["error"])


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/sites/no-such-site/devices", 404),
        ("/api/sites/Bad.Site/devices", 422),
        (f"/api/sites/{'x' * 80}/devices", 422),
        (f"/api/sites/{SITE}/devices?offset=-1", 422),
        (f"/api/sites/{SITE}/devices?limit=0", 422),
        (f"/api/sites/{SITE}/devices?limit=1001", 422),
        (f"/api/sites/{SITE}/devices?limit=ten", 422),
        ("/api/devices?online=perhaps", 422),
    ],
)
async def test_bad_input_is_a_clear_error(running_hub: RunningHub, path: str, status: int) -> None:
    response = await running_hub.http.get(path, headers=await running_hub.auth("viewer"))
    assert status == response.status_code
    assert {"error", "detail"} <= set(response.json())


async def test_a_speaker_going_offline_moves_its_sites_counts(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    headers = await running_hub.auth("viewer")

    def speakers(message: dict[str, object], offline: int) -> bool:
        data = message["data"]
        assert isinstance(data, dict)
        return (
            message["type"] == "site"
            and data["id"] == SITE
            and data["devices"]["speaker"]["offline"] == offline
        )

    async with running_hub.socket(await running_hub.token("viewer")) as ws, ws_inbox(ws) as inbox:
        await inbox.wait_for(lambda m: m["type"] == "hello")
        # A speaker covers no zone's guard: only the counts change, and still a site is pushed.
        status = {"online": False, "ts": format_ts(utcnow())}
        await edge.publish(
            topics.device_status(SITE, "db-spk-01"), json.dumps(status).encode(), qos=1
        )
        await inbox.wait_for(lambda m: speakers(m, 1))
        offline = (await running_hub.http.get("/api/devices?online=false", headers=headers)).json()
        assert "db-spk-01" in {d["id"] for d in offline}
        assert all(d["online"] is False for d in offline)
        status = {"online": True, "ts": format_ts(utcnow())}
        await edge.publish(
            topics.device_status(SITE, "db-spk-01"), json.dumps(status).encode(), qos=1
        )
        await inbox.wait_for(lambda m: speakers(m, 0))


async def _read_until_closed(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


def _status(site: str, ts: str) -> Callable[[Any], bool]:
    """A ``device`` message of ``site`` with the status of time ``ts``."""

    def match(message: Any) -> bool:
        return bool(
            message["type"] == "device"
            and message["data"]["site"] == site
            and message["data"]["last_seen"] == ts
        )

    return match


async def test_a_console_takes_device_messages_of_the_sites_it_subscribed_to(
    running_hub: RunningHub, edge: aiomqtt.Client, broker: Broker
) -> None:
    token = await running_hub.token("viewer")
    async with (
        aiomqtt_client(broker.settings(f"edge-{OTHER}")) as other_edge,
        running_hub.socket(token) as chosen_ws,
        ws_inbox(chosen_ws) as chosen,
        running_hub.socket(token) as every_ws,
        ws_inbox(every_ws) as every,
    ):
        await chosen.wait_for(lambda m: m["type"] == "hello")
        await every.wait_for(lambda m: m["type"] == "hello")
        await chosen_ws.send(json.dumps({"op": "subscribe", "events": [], "devices": [OTHER]}))
        # The hub applies the subscription when it reads it, with no answer: publish rounds
        # of both sites until one shows it (once applied it holds for every later round).
        for _ in range(ROUNDS):
            now = format_ts(utcnow())
            status = json.dumps({"online": True, "ts": now, "battery": 0.5}).encode()
            await edge.publish(topics.device_status(SITE, "db-fence-01"), status, qos=1)
            await other_edge.publish(topics.device_status(OTHER, "xy-fence-01"), status, qos=1)

            await every.wait_for(_status(SITE, now))
            await every.wait_for(_status(OTHER, now))
            await chosen.wait_for(_status(OTHER, now))
            # In seq order: this round's status of the unchosen site came before, if sent.
            if not [item for item in chosen.items if _status(SITE, now)(item)]:
                break
        else:
            pytest.fail("the device subscription never kept the other site's devices out")


@pytest.mark.parametrize(
    "op",
    [
        {"op": "subscribe", "events": [], "devices": ["Bad Site"]},
        {"op": "subscribe", "events": [], "devices": "xiyong-wharf"},
        {"op": "subscribe", "events": [], "devices": ["x"] * 10_001},
    ],
)
async def test_a_malformed_device_subscription_is_closed_with_4400(
    running_hub: RunningHub, op: dict[str, object]
) -> None:
    async with running_hub.socket(await running_hub.token("viewer")) as ws:
        await ws.recv()
        await ws.send(json.dumps(op))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await _read_until_closed(ws)
    assert closed.value.rcvd is not None
    assert 4400 == closed.value.rcvd.code
