"""Roles on every route and the audit log, against a real hub and real SQLite."""

from __future__ import annotations

import json
from typing import Any

import aiomqtt
import pytest

from hub.clock import ManualClock
from riverguard.wire import topics
from tests.hub.conftest import (
    SITE,
    MakeSettings,
    RunningHub,
    event_payload,
    mqtt_inbox,
    run_hub,
    unique_seq,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(both_stores: str | None) -> str | None:
    """These tests run on SQLite and on PostgreSQL."""
    return both_stores


async def raise_alarm(running: RunningHub, edge: aiomqtt.Client, **event: Any) -> dict[str, Any]:
    """Publish one event as the edge and return the alarm it opened or joined."""
    payload = event_payload(unique_seq(), **event)
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        await edge.publish(topics.events(SITE), json.dumps(payload).encode(), qos=1)
        await acks.wait_for(lambda m: payload["id"] in m[1]["ids"])
    alarm = running.hub.picture.active[(SITE, payload["zone"])]
    return alarm.model_dump(mode="json")


async def test_officer_calling_an_admin_or_supervisor_route_gets_403(
    running_hub: RunningHub,
) -> None:
    officer = await running_hub.auth("officer-li")
    for path in ("/api/users", "/api/audit"):
        response = await running_hub.http.get(path, headers=officer)
        assert (403, "forbidden") == (response.status_code, response.json()["error"]), path


@pytest.mark.parametrize(
    ("username", "audit", "users"),
    [
        ("viewer", 403, 403),
        ("officer-li", 403, 403),
        ("supervisor-wang", 200, 403),
        ("admin", 200, 200),
    ],
)
async def test_each_role_reaches_the_routes_of_its_rank(
    running_hub: RunningHub, username: str, audit: int, users: int
) -> None:
    headers = await running_hub.auth(username)
    assert audit == (await running_hub.http.get("/api/audit", headers=headers)).status_code
    assert users == (await running_hub.http.get("/api/users", headers=headers)).status_code
    assert 200 == (await running_hub.http.get("/api/alarms", headers=headers)).status_code


async def test_every_api_route_requires_a_login_except_login_and_audio(
    running_hub: RunningHub,
) -> None:
    """No route is left open by mistake: each declares the bearer login (OpenAPI
    ``security``), except these (the refresh route takes a refresh token, a
    responder's routes the token of their link: docs/protocol.md 7.35)."""
    schema = (
        await running_hub.http.get("/api/openapi.json", headers=await running_hub.auth())
    ).json()
    open_routes = {
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if path.startswith("/api/") and not operation.get("security")
    }
    assert {
        "POST /api/auth/token",
        "POST /api/auth/refresh",
        "GET /api/audio/{name}",
        "GET /api/respond/{token}",
        "POST /api/respond/{token}/{action}",
    } == open_routes


async def test_logins_are_audited_whether_they_succeed_or_fail(running_hub: RunningHub) -> None:
    await running_hub.token("officer-li")
    await running_hub.http.post(
        "/api/auth/token", data={"username": "officer-li", "password": "wrong"}
    )
    await running_hub.http.post("/api/auth/token", data={"username": "nobody", "password": "x"})
    headers = await running_hub.auth("supervisor-wang")

    ok = (
        await running_hub.http.get("/api/audit?action=login&user=officer-li", headers=headers)
    ).json()
    failed = (await running_hub.http.get("/api/audit?action=login_failed", headers=headers)).json()

    assert 1 == len(ok)
    assert ("officer-li", "officer") == (ok[0]["target"], ok[0]["after"]["role"])
    assert [("nobody", "unknown user"), ("officer-li", "wrong password")] == [
        (e["username"], e["detail"]) for e in failed
    ]


async def test_ack_resolve_and_announcement_are_audited_with_before_and_after(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    alarm = await raise_alarm(running_hub, edge)
    officer = await running_hub.auth("officer-li")
    announced = await running_hub.http.post(
        "/api/announcements", headers=officer, json={"alarm_id": alarm["id"]}
    )
    await running_hub.http.post(f"/api/alarms/{alarm['id']}/ack", headers=officer)
    await running_hub.http.post(
        f"/api/alarms/{alarm['id']}/resolve",
        headers=officer,
        json={"outcome": "false_alarm", "note": "a fisherman"},
    )
    headers = await running_hub.auth("admin")

    entries = (
        await running_hub.http.get(f"/api/audit?alarm={alarm['id']}", headers=headers)
    ).json()

    # Newest first.
    assert ["resolve", "ack", "announce"] == [e["action"] for e in entries]
    assert {"officer-li"} == {e["username"] for e in entries}
    resolve, ack, announce = entries
    assert ("acknowledged", "resolved", "false_alarm") == (
        resolve["before"]["state"],
        resolve["after"]["state"],
        resolve["after"]["outcome"],
    )
    assert ("open", "acknowledged") == (ack["before"]["state"], ack["after"]["state"])
    assert (announced.json()["id"], ["db-spk-01"]) == (
        announce["target"],
        announce["after"]["speakers"],
    )


async def test_audit_filters_page_and_refuse_bad_values(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    for _ in range(3):
        await running_hub.token("viewer")
    headers = await running_hub.auth("admin")
    get = running_hub.http.get

    first = (await get("/api/audit?user=viewer&limit=2", headers=headers)).json()
    rest = (
        await get(f"/api/audit?user=viewer&limit=2&before={first[-1]['id']}", headers=headers)
    ).json()
    future = (await get("/api/audit?from=2999-01-01T00:00:00Z", headers=headers)).json()
    past = (await get("/api/audit?to=2000-01-01T00:00:00Z", headers=headers)).json()
    bad_action = await get("/api/audit?action=delete", headers=headers)
    bad_time = await get("/api/audit?from=yesterday", headers=headers)

    assert (2, 1) == (len(first), len(rest))
    assert first[0]["id"] > first[1]["id"] > rest[0]["id"]
    assert ([], []) == (future, past)
    assert (422, 422) == (bad_action.status_code, bad_time.status_code)


async def test_tokens_expire_after_their_time_to_live(make_settings: MakeSettings) -> None:
    clock = ManualClock()
    async with run_hub(make_settings(token_ttl_s=600), clock) as running:
        headers = await running.auth("officer-li")
        clock.advance(599)
        fresh = await running.http.get("/api/me", headers=headers)
        clock.advance(1)
        expired = await running.http.get("/api/me", headers=headers)
    assert (200, 401) == (fresh.status_code, expired.status_code)
