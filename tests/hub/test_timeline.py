"""Incident timelines as JSON and printable HTML, against a real hub."""

from __future__ import annotations

import json
import re
from zoneinfo import ZoneInfo

import aiomqtt
import pytest

from hub.clock import ManualClock
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.times import format_ts, parse_ts, utcnow
from tests.hub.conftest import (
    SITE,
    MakeSettings,
    RunningHub,
    event_payload,
    mqtt_inbox,
    run_hub,
    unique_seq,
    ws_inbox,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(both_stores: str | None) -> str | None:
    """These tests run on SQLite and on PostgreSQL."""
    return both_stores


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


async def _incident(running: RunningHub, edge: aiomqtt.Client) -> str:
    """A fence breach and a camera intrusion with a snapshot, announced, acked, resolved."""
    fence = event_payload(unique_seq())
    camera = event_payload(
        unique_seq(),
        device="db-cam-01",
        kind="camera.intrusion",
        confidence=0.9,
        object="person",
        snapshot=True,
    )
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        for event in (fence, camera):
            await edge.publish(topics.events(SITE), json.dumps(event).encode(), qos=1)
        await edge.publish(topics.snapshot(SITE, camera["id"]), JPEG, qos=1)
        await wait_for(
            lambda: {fence["id"], camera["id"]} <= {i for m in acks.items for i in m[1]["ids"]},
            what="both events committed",
        )
    alarm_id = running.hub.picture.active[(SITE, "z1")].id
    officer = await running.auth()
    announced = (
        await running.http.post("/api/announcements", headers=officer, json={"alarm_id": alarm_id})
    ).json()
    ack = {"id": announced["id"], "state": "done", "ts": format_ts(utcnow())}
    await edge.publish(topics.speaker_ack(SITE, "db-spk-01"), json.dumps(ack).encode(), qos=1)

    async def speaker_done() -> bool:
        got = await running.hub.store.announcements.get(announced["id"])
        return got is not None and got.speakers == {"db-spk-01": "done"}

    await wait_for(speaker_done, what="speaker done")
    await running.http.post(f"/api/alarms/{alarm_id}/ack", headers=officer)
    await running.http.post(
        f"/api/alarms/{alarm_id}/resolve",
        headers=officer,
        json={"outcome": "persuaded_away", "note": "left after the warning"},
    )
    return alarm_id


async def test_timeline_tells_the_incident_in_order_with_snapshots_and_outcome(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    alarm_id = await _incident(running_hub, edge)
    headers = await running_hub.auth("viewer")

    timeline = (
        await running_hub.http.get(f"/api/alarms/{alarm_id}/timeline", headers=headers)
    ).json()

    assert [
        "opened",
        "event",
        "event",
        "announcement",
        "speaker",
        "ack",
        "resolve",
    ] == [e["type"] for e in timeline["entries"]]
    # A fence and a camera in one alarm corroborate each other.
    assert ("critical", ["camera", "fence"]) == (
        timeline["alarm"]["severity"],
        timeline["alarm"]["sources"],
    )
    fence, camera = timeline["events"]
    assert (None, f"/api/events/{camera['id']}/snapshot") == (
        fence["snapshot_url"],
        camera["snapshot_url"],
    )
    picture = await running_hub.http.get(camera["snapshot_url"], headers=headers)
    assert JPEG == picture.content
    assert {"db-spk-01": "done"} == timeline["announcements"][0]["speakers"]
    assert {
        "outcome": "persuaded_away",
        "note": "left after the warning",
        "resolved_by": "officer-li",
    }.items() <= timeline["outcome"].items()
    assert ("danshui-bridge", "z1", "桥下亲水平台") == (
        timeline["site"]["id"],
        timeline["zone"]["id"],
        timeline["zone"]["name"],
    )


async def test_a_late_snapshot_shows_in_the_timeline_and_is_pushed_to_consoles(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    """A Frigate picture that came after its event (sent with ``snapshot: false``)."""
    camera = event_payload(
        unique_seq(), device="db-cam-01", kind="camera.intrusion", object="person"
    )
    headers = await running_hub.auth("viewer")
    async with running_hub.socket(await running_hub.token("viewer")) as ws, ws_inbox(ws) as console:
        await console.wait_for(lambda m: m["type"] == "hello")
        async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
            await edge.publish(topics.events(SITE), json.dumps(camera).encode(), qos=1)
            await acks.wait_for(lambda m: camera["id"] in m[1]["ids"])
        alarm_id = running_hub.hub.picture.active[(SITE, "z1")].id
        url = f"/api/alarms/{alarm_id}/timeline"
        before = (await running_hub.http.get(url, headers=headers)).json()
        await edge.publish(topics.snapshot(SITE, camera["id"]), JPEG, qos=1)
        pushed = await console.wait_for(lambda m: m["type"] == "snapshot")
    after = (await running_hub.http.get(url, headers=headers)).json()

    snapshot_url = f"/api/events/{camera['id']}/snapshot"
    assert [None] == [e["snapshot_url"] for e in before["events"]]
    assert {"event_id": camera["id"], "site": SITE, "snapshot_url": snapshot_url}.items() <= (
        pushed["data"].items()
    )
    [event] = after["events"]
    assert (False, snapshot_url) == (event["snapshot"], event["snapshot_url"])
    [entry] = [e for e in after["entries"] if e["type"] == "event"]
    assert snapshot_url == entry["data"]["snapshot_url"]
    picture = await running_hub.http.get(snapshot_url, headers=headers)
    assert JPEG == picture.content


async def test_timeline_prints_as_html_in_chinese_or_english_by_a_signed_link(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    alarm_id = await _incident(running_hub, edge)
    headers = await running_hub.auth("viewer")

    async def link(path: str) -> str:
        made = await running_hub.http.post("/api/links", headers=headers, json={"path": path})
        return str(made.json()["url"])

    zh = await running_hub.http.get(await link(f"/api/alarms/{alarm_id}/timeline.html"))
    en = await running_hub.http.get(
        await link(f"/api/alarms/{alarm_id}/timeline?format=html&lang=en")
    )
    anonymous = await running_hub.http.get(f"/api/alarms/{alarm_id}/timeline.html")

    assert ("text/html; charset=utf-8", 200) == (zh.headers["content-type"], zh.status_code)
    chinese = ("事件时间线", "桥下亲水平台", "处置完成", "已劝离", "李值班员", "已播完")
    for text in (*chinese, alarm_id):
        assert text in zh.text, text
    for text in (
        "Incident timeline",
        "Under-bridge waterside deck",
        "Resolved",
        "snapshot",
        "Persuaded away",
        "Intrusion",
        "Critical",
    ):
        assert text in en.text, text
    # The wire's words and instants are not the reader's.
    for page in (zh.text, en.text):
        for raw in ("persuaded_away", "camera.intrusion", "officer-li"):
            assert raw not in page, raw
        assert re.search(r"\d\d:\d\d:\d\d(\.\d+)?Z", page) is None
    assert ": done" not in zh.text
    # Times on the site's clock (Asia/Shanghai), said so on the page.
    built = (await running_hub.http.get(f"/api/alarms/{alarm_id}/timeline", headers=headers)).json()
    resolved = parse_ts(built["outcome"]["resolved_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert resolved.strftime("%Y-%m-%d %H:%M:%S") in zh.text
    assert "Asia/Shanghai" in en.text
    assert "<script" not in zh.text
    assert 401 == anonymous.status_code


async def test_timeline_of_an_unknown_alarm_is_404(running_hub: RunningHub) -> None:
    response = await running_hub.http.get(
        "/api/alarms/alm-nope/timeline", headers=await running_hub.auth()
    )
    assert (404, "not_found") == (response.status_code, response.json()["error"])


async def test_the_printed_timeline_says_why_each_climb_happened_in_the_pages_language(
    make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    """An officer calls the next level, the timer climbs the next, a trigger after an
    announcement the last: the Chinese page gives each reason and names the officer,
    with none of the audit's English detail or the wire's codes."""
    clock = ManualClock()
    async with run_hub(make_settings(), clock) as running:
        fence = event_payload(unique_seq())
        async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
            await edge.publish(topics.events(SITE), json.dumps(fence).encode(), qos=1)
            await acks.wait_for(lambda m: fence["id"] in m[1]["ids"])
        alarm_id = running.hub.picture.active[(SITE, "z1")].id
        officer = await running.auth()
        called = await running.http.post(f"/api/alarms/{alarm_id}/next-level", headers=officer)
        assert 200 == called.status_code
        clock.advance(120)
        await wait_for(
            lambda: running.hub.picture.active[(SITE, "z1")].escalation_level == 2,
            what="the timer's climb",
        )
        announced = await running.http.post(
            "/api/announcements", headers=officer, json={"alarm_id": alarm_id}
        )
        assert 202 == announced.status_code
        again = event_payload(unique_seq())
        async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
            await edge.publish(topics.events(SITE), json.dumps(again).encode(), qos=1)
            await acks.wait_for(lambda m: again["id"] in m[1]["ids"])
        pages = await running.printed_timelines(alarm_id, officer)

    assert "级别 1 (网格员) · 升级原因：李值班员 立即通知下一级" in pages["zh"]
    assert "级别 2 (街道) · 升级原因：未及时确认" in pages["zh"]
    assert "级别 3 (区级) · 升级原因：警告后再次触发" in pages["zh"]
    for english in (
        "called by an officer",
        "trigger after an announcement",
        "grid officer",
        "by_officer",
        "unacknowledged",
        "trigger_after_announcement",
        "officer-li",
        f"warning-{SITE}",
    ):
        assert english not in pages["zh"], english
    assert "站点默认警告" in pages["zh"]
    assert "level 1 (grid officer) · why: 李值班员 called the next level" in pages["en"]
    assert "level 2 (street) · why: not acknowledged in time" in pages["en"]
    assert "level 3 (district) · why: triggered again after a warning" in pages["en"]
    assert "called by an officer" not in pages["en"]
