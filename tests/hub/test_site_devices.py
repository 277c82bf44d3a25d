"""Devices on demand against a real hub: ``hello`` and site items carry per-site device
counts, ``GET /api/sites/{id}/devices`` pages a site's devices (PROTOCOL 7.37)."""

from __future__ import annotations

import json

import aiomqtt
import pytest

from riverguard.wire import topics
from riverguard.wire.times import format_ts, utcnow
from tests.hub.conftest import SITE, RunningHub, ws_inbox

pytestmark = pytest.mark.integration


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
