"""REST API against a real hub: auth, alarms, events from InfluxDB, announcements, health."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt
import pytest

from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import Announce
from riverguard.wire.times import format_ts, utcnow
from tests.hub.conftest import (
    SITE,
    RunningHub,
    event_payload,
    mqtt_inbox,
    unique_seq,
    ws_inbox,
)

pytestmark = pytest.mark.integration


async def _raise_alarm(running: RunningHub, edge: aiomqtt.Client, **event: Any) -> dict[str, Any]:
    """Publish one event as the edge and return the alarm it opened or joined."""
    payload = event_payload(unique_seq(), **event)
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        await edge.publish(topics.events(SITE), json.dumps(payload).encode(), qos=1)
        await acks.wait_for(lambda m: payload["id"] in m[1]["ids"])
    alarms = (await running.http.get("/api/alarms", headers=await running.auth())).json()
    return next(a for a in alarms if payload["id"] in a["event_ids"])


async def test_login_gives_a_bearer_token_for_me(running_hub: RunningHub) -> None:
    response = await running_hub.http.post(
        "/api/auth/token", data={"username": "officer-li", "password": "officer-pw"}
    )
    body = response.json()
    assert ("bearer", running_hub.settings.token_ttl_s) == (body["token_type"], body["expires_in"])
    me = await running_hub.http.get(
        "/api/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert {"username": "officer-li", "name": "李值班员", "role": "officer"} == me.json()


@pytest.mark.parametrize(
    ("username", "password"), [("officer-li", "wrong"), ("nobody", "x"), ("", "")]
)
async def test_wrong_credentials_are_401_json(
    running_hub: RunningHub, username: str, password: str
) -> None:
    response = await running_hub.http.post(
        "/api/auth/token", data={"username": username, "password": password}
    )
    assert response.status_code in (401, 422)
    assert {"error", "detail"} == set(response.json())


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic abc"])
async def test_missing_or_bad_token_is_401_json(
    running_hub: RunningHub, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await running_hub.http.get("/api/alarms", headers=headers)
    assert (401, "unauthorized") == (response.status_code, response.json()["error"])
    assert "Bearer" == response.headers["www-authenticate"]


async def test_viewer_reads_but_may_not_act(running_hub: RunningHub, edge: aiomqtt.Client) -> None:
    alarm = await _raise_alarm(running_hub, edge)
    viewer = await running_hub.auth("viewer")
    assert (
        200
        == (await running_hub.http.get(f"/api/alarms/{alarm['id']}", headers=viewer)).status_code
    )
    for path, body in (
        (f"/api/alarms/{alarm['id']}/ack", None),
        (f"/api/alarms/{alarm['id']}/resolve", {"outcome": "other"}),
        ("/api/announcements", {"alarm_id": alarm["id"]}),
    ):
        response = await running_hub.http.post(path, headers=viewer, json=body)
        assert (403, "forbidden") == (response.status_code, response.json()["error"])


async def test_unknown_ids_and_bad_parameters_are_json_errors(running_hub: RunningHub) -> None:
    headers = await running_hub.auth()
    for path in ("/api/alarms/alm-nope", "/api/announcements/ann-nope", "/api/nothing-here"):
        response = await running_hub.http.get(path, headers=headers)
        assert (404, "not_found") == (response.status_code, response.json()["error"]), path
    bad = await running_hub.http.get("/api/alarms?state=sleeping", headers=headers)
    assert (422, "invalid_request") == (bad.status_code, bad.json()["error"])
    resolve = await running_hub.http.post(
        "/api/alarms/alm-nope/resolve", headers=headers, json={"outcome": "won"}
    )
    assert (422, "invalid_request") == (resolve.status_code, resolve.json()["error"])


async def test_ack_and_resolve_reach_the_console_and_wrong_transitions_are_409(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    alarm = await _raise_alarm(running_hub, edge, zone="z2", device="db-fence-02")
    headers = await running_hub.auth()
    token = await running_hub.token("viewer")
    async with running_hub.socket(token) as ws, ws_inbox(ws) as console:
        hello = await console.wait_for(lambda m: m["type"] == "hello")
        assert [alarm["id"]] == [a["id"] for a in hello["data"]["alarms"]]
        assert "orange" == next(s for s in hello["data"]["sites"] if s["id"] == SITE)["risk"]

        acked = await running_hub.http.post(f"/api/alarms/{alarm['id']}/ack", headers=headers)
        assert ("acknowledged", "officer-li") == (acked.json()["state"], acked.json()["acked_by"])
        pushed = await console.wait_for(
            lambda m: m["type"] == "alarm" and m["data"]["state"] == "acknowledged"
        )
        assert acked.json() == pushed["data"]

        again = await running_hub.http.post(f"/api/alarms/{alarm['id']}/ack", headers=headers)
        assert (409, "invalid_transition") == (again.status_code, again.json()["error"])

        resolved = await running_hub.http.post(
            f"/api/alarms/{alarm['id']}/resolve",
            headers=headers,
            json={"outcome": "persuaded_away", "note": "left after the warning"},
        )
        assert "resolved" == resolved.json()["state"]
        await console.wait_for(lambda m: m["type"] == "alarm" and m["data"]["state"] == "resolved")
        site = await console.wait_for(lambda m: m["type"] == "site")
        assert ("blue", SITE) == (site["data"]["risk"], site["data"]["id"])

    twice = await running_hub.http.post(
        f"/api/alarms/{alarm['id']}/resolve", headers=headers, json={"outcome": "other"}
    )
    assert 409 == twice.status_code
    listed = await running_hub.http.get("/api/alarms?state=resolved", headers=headers)
    assert [alarm["id"]] == [a["id"] for a in listed.json()]
    assert [] == (await running_hub.http.get("/api/alarms?state=open", headers=headers)).json()


async def test_events_are_read_back_from_influx_newest_first_with_filters(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    sent = [event_payload(unique_seq()) for _ in range(3)]
    sent.append(
        event_payload(
            unique_seq(),
            device="db-cam-01",
            kind="camera.intrusion",
            confidence=0.75,
            object="person",
        )
    )
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        for event in sent:
            await edge.publish(topics.events(SITE), json.dumps(event).encode(), qos=1)
        await wait_for(lambda: sum(len(m[1]["ids"]) for m in acks.items) >= 4, what="acks")
    await running_hub.wait_metric("riverguard_hub_influx_written_total", 4)
    headers = await running_hub.auth("viewer")

    everything = (await running_hub.http.get(f"/api/events?site={SITE}", headers=headers)).json()
    camera = (
        await running_hub.http.get("/api/events?kind=camera.intrusion", headers=headers)
    ).json()
    limited = (
        await running_hub.http.get("/api/events?device=db-fence-01&limit=2", headers=headers)
    ).json()
    window = (
        await running_hub.http.get(
            "/api/events",
            params={"from": "2000-01-01T00:00:00Z", "to": "2000-01-02T00:00:00Z"},
            headers=headers,
        )
    ).json()

    assert {e["id"] for e in sent} == {e["id"] for e in everything}
    times = [e["ts"] for e in everything]
    assert sorted(times, reverse=True) == times
    assert [sent[3]] == camera
    assert 2 == len(limited)
    assert [] == window


@pytest.mark.parametrize(
    "query",
    [
        "site=x' OR 1=1 --",
        'device=a"b',
        "kind=fence.breach' OR '1'='1",
        "from=yesterday",
        "limit=0",
        "limit=100000",
    ],
)
async def test_event_filters_are_validated_so_nothing_reaches_influxql(
    running_hub: RunningHub, query: str
) -> None:
    response = await running_hub.http.get(f"/api/events?{query}", headers=await running_hub.auth())
    assert (422, "invalid_request") == (response.status_code, response.json()["error"])


async def test_announcement_reaches_the_speakers_topic_and_acks_update_it(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    alarm = await _raise_alarm(running_hub, edge)
    headers = await running_hub.auth()
    token = await running_hub.token("viewer")
    async with (
        running_hub.socket(token) as ws,
        ws_inbox(ws) as console,
        mqtt_inbox(edge, topics.announce(SITE, "+")) as speakers,
    ):
        await console.wait_for(lambda m: m["type"] == "hello")
        response = await running_hub.http.post(
            "/api/announcements", headers=headers, json={"alarm_id": alarm["id"]}
        )
        assert 202 == response.status_code
        announcement = response.json()
        topic, body = await speakers.wait_for(lambda m: True)
        announce = Announce.model_validate(body)

        await edge.publish(
            topics.speaker_ack(SITE, "db-spk-01"),
            json.dumps(
                {"id": announcement["id"], "state": "playing", "ts": format_ts(utcnow())}
            ).encode(),
            qos=1,
        )
        pushed = await console.wait_for(
            lambda m: (
                m["type"] == "announcement" and m["data"]["speakers"] == {"db-spk-01": "playing"}
            )
        )
        updated_alarm = await console.wait_for(lambda m: m["type"] == "alarm")

    assert topics.announce(SITE, "db-spk-01") == topic
    assert (announcement["id"], alarm["id"], "officer-li", 8) == (
        announce.id,
        announce.alarm_id,
        announce.requested_by,
        announce.priority,
    )
    assert {"db-spk-01": "pending"} == announcement["speakers"]
    assert {
        "id",
        "alarm_id",
        "site",
        "requested_by",
        "created_at",
        "clip",
        "priority",
        "repeat",
        "volume",
        "expires_at",
        "speakers",
        "history",
    } == set(announcement)
    assert ["pending", "playing"] == [h["state"] for h in pushed["data"]["history"]]
    assert [announcement["id"]] == updated_alarm["data"]["announcements"]
    assert announce.audio.url == f"{running_hub.url}/api/audio/{announce.audio.sha256}.wav"
    audio = await running_hub.http.get(announce.audio.url)
    assert ("audio/wav", b"RIFF") == (audio.headers["content-type"], audio.content[:4])
    fetched = await running_hub.http.get(
        f"/api/announcements/{announcement['id']}", headers=headers
    )
    assert pushed["data"] == fetched.json()


async def test_announcement_text_without_a_voice_is_refused(running_hub: RunningHub) -> None:
    response = await running_hub.http.post(
        "/api/announcements",
        headers=await running_hub.auth(),
        json={"site": SITE, "text": "请离开"},
    )
    assert (422, "invalid_request") == (response.status_code, response.json()["error"])


async def test_ack_of_an_unknown_announcement_is_rejected_and_counted(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    ack = {"id": "ann-unknown", "state": "done", "ts": format_ts(utcnow())}
    await edge.publish(topics.speaker_ack(SITE, "db-spk-01"), json.dumps(ack).encode(), qos=1)
    await running_hub.wait_metric(
        "riverguard_hub_rejected_total", 1, 'reason="unknown_announcement"'
    )


async def test_sites_devices_clips_health_and_metrics(running_hub: RunningHub) -> None:
    headers = await running_hub.auth("viewer")
    sites = (await running_hub.http.get("/api/sites", headers=headers)).json()
    devices = (await running_hub.http.get("/api/devices", headers=headers)).json()
    clips = (await running_hub.http.get("/api/clips", headers=headers)).json()
    health = await running_hub.http.get("/healthz")
    metrics = await running_hub.http.get("/metrics")

    assert ["danshui-bridge", "xiyong-wharf"] == [s["id"] for s in sites]
    zone = sites[0]["zones"][0]
    assert ("z1", "桥下亲水平台", "Under-bridge waterside deck") == (
        zone["id"],
        zone["name"],
        zone["name_en"],
    )
    # Map geometry comes from the configuration, for the console's schematic.
    assert [60.0, 250.0] == zone["area"][0]
    assert {"width", "height", "bank", "water"} == set(sites[0]["map"])
    assert "blue" == sites[0]["risk"]
    assert 10 == len(devices)
    # The sites' default warnings, and the built-in ones in three languages
    # (tests/hub/test_clips.py).
    assert {
        "warning-danshui-bridge",
        "warning-xiyong-wharf",
        "warning-cmn",
        "warning-yue",
        "warning-en",
    } == {c["id"] for c in clips}
    assert (200, {"status": "ok", "broker": True, "influx": True, "store": True}) == (
        health.status_code,
        health.json(),
    )
    assert "riverguard_hub_ingest_commit_seconds_bucket" in metrics.text
    openapi = await running_hub.http.get("/api/openapi.json", headers=headers)
    assert "/api/alarms/{alarm_id}/resolve" in openapi.json()["paths"]


async def test_audio_names_are_checked(running_hub: RunningHub) -> None:
    for name in ("../hub.db", "abc.wav", "0" * 64 + ".wav"):
        response = await running_hub.http.get(f"/api/audio/{name}")
        assert 404 == response.status_code
        assert "not_found" == response.json()["error"]


async def test_console_is_served_at_the_root_behind_the_api(running_hub: RunningHub) -> None:
    page = await running_hub.http.get("/")
    assert (200, "text/html; charset=utf-8") == (page.status_code, page.headers["content-type"])
    assert "<title>console</title>" in page.text
    missing = await running_hub.http.get("/api/not-a-route")
    assert (404, "not_found") == (missing.status_code, missing.json()["error"])


async def test_an_idle_connection_outlives_an_http_clients_own_keep_alive(
    running_hub: RunningHub,
) -> None:
    # httpx reuses an idle connection for 5 s; were the hub to close it at the same moment,
    # a request could be sent into a closing connection and fail.
    reader, writer = await asyncio.open_connection("127.0.0.1", running_hub.settings.http_port)

    async def answered() -> bool:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 10)
        headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = next(
            int(line.split(b":")[1])
            for line in headers.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        return status.startswith(b"HTTP/1.1 ")

    try:
        assert await answered()
        await asyncio.sleep(6)  # idle is the condition under test: longer than httpx's 5 s
        assert not reader.at_eof()
        assert await answered()
    finally:
        writer.close()
