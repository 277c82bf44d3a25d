"""Announcements end to end on a real hub and broker, the test acting as the edge.

The configuration adds two speakers to danshui-bridge: db-spk-01 covers z1 and
z2, db-spk-02 only z1, db-spk-03 only z2.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import pytest

from hub.clock import ManualClock
from hub.schedules import ScheduleIn, next_occurrence
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import Announce
from riverguard.wire.times import format_ts, utcnow
from tests.conftest import EXAMPLE_CONFIG
from tests.hub.conftest import (
    SITE,
    Inbox,
    MakeSettings,
    RunningHub,
    event_payload,
    mqtt_inbox,
    run_hub,
    unique_seq,
    ws_inbox,
)

EXTRA_SPEAKERS = """
[[devices]]
id = "db-spk-02"
site = "danshui-bridge"
type = "speaker"
driver = "mqtt"
zones = ["z1"]

[[devices]]
id = "db-spk-03"
site = "danshui-bridge"
type = "speaker"
driver = "http"
url = "http://127.0.0.1:9/audio"
zones = ["z2"]
"""

# 23:00 in Shanghai: inside quiet hours 22:00-06:00.
QUIET_NIGHT = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)
# 15:59:30 in Shanghai on a Wednesday in July.
BEFORE_FOUR_PM = datetime(2026, 7, 1, 7, 59, 30, tzinfo=UTC)


def config_file(tmp_path: Path) -> Path:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    site_line = 'id = "danshui-bridge"\n'
    site_policy = 'quiet_hours = "22:00-06:00"\nroutine_window_s = 300\n'
    text = text.replace(site_line, site_line + site_policy, 1)
    path = tmp_path / "riverguard.toml"
    path.write_text(text + EXTRA_SPEAKERS, encoding="utf-8")
    return path


@asynccontextmanager
async def hub_with_speakers(
    make_settings: MakeSettings, tmp_path: Path, clock: ManualClock | None = None, **settings: Any
) -> AsyncIterator[RunningHub]:
    async with run_hub(make_settings(config=config_file(tmp_path), **settings), clock) as hub:
        yield hub


@asynccontextmanager
async def as_edge(edge: aiomqtt.Client) -> AsyncIterator[Inbox]:
    """Announce and stop messages the hub sends to danshui-bridge's speakers."""
    async with mqtt_inbox(edge, topics.announce(SITE, "+"), topics.stop(SITE, "+")) as inbox:
        yield inbox


async def ack(
    edge: aiomqtt.Client, speaker: str, ann_id: str, state: str, detail: str = ""
) -> None:
    body = {"id": ann_id, "state": state, "ts": format_ts(utcnow()), "detail": detail}
    await edge.publish(topics.speaker_ack(SITE, speaker), json.dumps(body).encode(), qos=1)


def speaker_of(topic: str) -> str:
    return topic.split("/")[-2]


async def raise_alarm(hub: RunningHub, edge: aiomqtt.Client, zone: str = "z1") -> str:
    """A breach in ``zone`` as the edge sends it; the id of the alarm it opened or joined."""
    breach = event_payload(unique_seq(), zone=zone)
    async with mqtt_inbox(edge, topics.committed(SITE)) as commits:
        await edge.publish(topics.events(SITE), json.dumps(breach).encode(), qos=1)
        await commits.wait_for(lambda m: breach["id"] in m[1]["ids"])
    return hub.hub.picture.active[(SITE, zone)].id


async def post(hub: RunningHub, body: dict[str, Any], user: str = "officer-li") -> Any:
    response = await hub.http.post("/api/announcements", headers=await hub.auth(user), json=body)
    return response.status_code, response.json()


async def test_zone_announcement_reaches_exactly_the_covering_speakers_and_each_reports_done(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    async with (
        hub_with_speakers(make_settings, tmp_path) as hub,
        as_edge(edge) as inbox,
    ):
        token = await hub.token("viewer")
        async with hub.socket(token) as ws, ws_inbox(ws) as console:
            await console.wait_for(lambda m: m["type"] == "hello")
            status, created = await post(
                hub, {"site": SITE, "zone": "z2", "clip_id": "warning-cmn", "reason": "drill"}
            )
            first = await inbox.wait_for(lambda m: created["id"] in json.dumps(m[1]))
            second = await inbox.wait_for(
                lambda m: created["id"] in json.dumps(m[1]) and m[0] != first[0]
            )
            for topic, _ in (first, second):
                for state in ("received", "playing", "done"):
                    await ack(edge, speaker_of(topic), created["id"], state)
            done = await console.wait_for(
                lambda m: (
                    m["type"] == "announcement"
                    and m["data"]["id"] == created["id"]
                    and set(m["data"]["speakers"].values()) == {"done"}
                )
            )
        audit = await hub.http.get(
            "/api/audit?action=announce", headers=await hub.auth("supervisor-wang")
        )

    sent = {speaker_of(topic): Announce.model_validate(body) for topic, body in (first, second)}
    assert 202 == status
    assert {"db-spk-01": "done", "db-spk-03": "done"} == done["data"]["speakers"]
    assert ["db-spk-01", "db-spk-03"] == sorted(
        speaker_of(t) for t, b in inbox.items if b.get("id") == created["id"]
    )
    # The http speaker gets G.711 µ-law, the mqtt one 16 kHz WAV, of the same clip.
    assert ("wav", "ulaw") == (sent["db-spk-01"].audio.format, sent["db-spk-03"].audio.format)
    entry = audit.json()[0]
    assert ("officer-li", "drill", created["id"]) == (
        entry["username"],
        entry["detail"],
        entry["target"],
    )


async def test_text_announcement_is_spoken_in_the_chosen_voice(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    async with hub_with_speakers(make_settings, tmp_path) as hub, as_edge(edge) as inbox:
        status, created = await post(
            hub, {"speakers": ["db-spk-02"], "text": "请不要在这里钓鱼", "voice": "cmn"}
        )
        _, body = await inbox.wait_for(lambda m: m[1].get("id") == created["id"])
        audio = await hub.http.get(body["audio"]["url"])
        clips = (await hub.http.get("/api/clips", headers=await hub.auth())).json()

    assert 202 == status
    assert (200, b"RIFF") == (audio.status_code, audio.content[:4])
    assert created["clip"]["id"] in {c["id"] for c in clips if c["source"] == "tts"}


async def test_grid_announcement_reaches_every_site_under_it(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    async with hub_with_speakers(make_settings, tmp_path) as hub:
        status, created = await post(hub, {"grid": "huizhou/huiyang/danshui"})
        other = await hub.http.get(
            f"/api/announcements/{created['group'][1]}", headers=await hub.auth()
        )
        nothing = await post(hub, {"grid": "huizhou/elsewhere"})

    assert 202 == status
    assert {"db-spk-01": "pending", "db-spk-02": "pending", "db-spk-03": "pending"} == (
        created["speakers"]
    )
    assert ("xiyong-wharf", {"xy-spk-01": "pending"}) == (
        other.json()["site"],
        other.json()["speakers"],
    )
    assert (422, "no_speakers") == (nothing[0], nothing[1]["error"])


async def test_life_safety_preempts_a_routine_announcement(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    async with hub_with_speakers(make_settings, tmp_path) as hub:
        alarm_id = await raise_alarm(hub, edge)
        async with as_edge(edge) as inbox:
            _, routine = await post(hub, {"speakers": ["db-spk-02"], "priority": 3})
            await inbox.wait_for(lambda m: m[1].get("id") == routine["id"])
            await ack(edge, "db-spk-02", routine["id"], "playing")

            async def playing() -> bool:
                found = await hub.hub.announcer.get(routine["id"])
                return found is not None and found["speakers"]["db-spk-02"] == "playing"

            await wait_for(playing, what="routine announcement playing")
            urgent_body = {"speakers": ["db-spk-02"], "priority": 9, "alarm_id": alarm_id}
            _, urgent = await post(hub, urgent_body)
            stop = await inbox.wait_for(lambda m: m[0] == topics.stop(SITE, "db-spk-02"))
            await inbox.wait_for(lambda m: m[1].get("id") == urgent["id"])
            fetched = await hub.http.get(
                f"/api/announcements/{routine['id']}", headers=await hub.auth()
            )
            _, lower = await post(hub, {"speakers": ["db-spk-02"], "priority": 2})

    assert {"id": routine["id"]} == stop[1]
    assert {"db-spk-02": "failed"} == fetched.json()["speakers"]
    assert f"preempted by {urgent['id']}" == fetched.json()["history"][-1]["detail"]
    # A lower priority does not stop the higher one.
    assert 1 == sum(1 for t, _ in inbox.items if t == topics.stop(SITE, "db-spk-02"))
    assert "pending" == lower["speakers"]["db-spk-02"]


async def test_quiet_hours_cap_routine_volume_but_not_life_safety(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    clock = ManualClock(QUIET_NIGHT)
    async with hub_with_speakers(make_settings, tmp_path, clock, quiet_volume_cap=35) as hub:
        alarm_id = await raise_alarm(hub, edge)
        async with as_edge(edge) as inbox:
            body = {"speakers": ["db-spk-01"], "volume": 90, "priority": 4}
            _, routine = await post(hub, body)
            _, urgent = await post(hub, {**body, "priority": 9, "alarm_id": alarm_id})
            routine_sent = await inbox.wait_for(lambda m: m[1].get("id") == routine["id"])
            urgent_sent = await inbox.wait_for(lambda m: m[1].get("id") == urgent["id"])
            clock.advance(8 * 3600)  # 07:00 local: quiet hours are over.
            _, morning = await post(hub, body)

    assert (35, 90, 90) == (routine_sent[1]["volume"], urgent_sent[1]["volume"], morning["volume"])
    assert "volume capped 90 -> 35 (quiet hours)" == routine["history"][0]["detail"]


async def test_routine_messages_are_rate_limited_per_site_life_safety_is_not(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    clock = ManualClock(BEFORE_FOUR_PM)
    async with hub_with_speakers(make_settings, tmp_path, clock, routine_limit=2) as hub:
        alarm_id = await raise_alarm(hub, edge)
        results = [await post(hub, {"site": SITE, "priority": 3}) for _ in range(3)]
        other_site = await post(hub, {"site": "xiyong-wharf", "priority": 3})
        urgent = await post(hub, {"site": SITE, "priority": 9, "alarm_id": alarm_id})
        # The site's own window is 300 s (the hub's default is 600 s).
        clock.advance(301)
        later = await post(hub, {"site": SITE, "priority": 3})

    assert [202, 202, 429] == [status for status, _ in results]
    assert "rate_limited" == results[2][1]["error"]
    assert "300 s" in results[2][1]["detail"]
    assert (202, 202, 202) == (other_site[0], urgent[0], later[0])


async def test_a_hub_restart_does_not_reset_the_routine_limit(
    make_settings: MakeSettings, tmp_path: Path, both_stores: str | None
) -> None:
    clock = ManualClock(BEFORE_FOUR_PM)
    settings = {"routine_limit": 2, "database_url": both_stores}
    async with hub_with_speakers(make_settings, tmp_path, clock, **settings) as hub:
        before = [await post(hub, {"site": SITE, "priority": 3}) for _ in range(2)]
    clock.advance(60)
    async with hub_with_speakers(make_settings, tmp_path, clock, **settings) as hub:
        after_restart = await post(hub, {"site": SITE, "priority": 3})
        # The site's window is 300 s: the first two have left it.
        clock.advance(241)
        later = await post(hub, {"site": SITE, "priority": 3})

    assert [202, 202] == [status for status, _ in before]
    assert (429, "rate_limited") == (after_restart[0], after_restart[1]["error"])
    assert 202 == later[0]


async def test_the_edges_own_warning_is_recorded_as_an_edge_auto_play_of_the_zones_alarm(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    """Local deterrence (PROTOCOL 7.10) reaches the hub only as acks: none is refused."""
    async with hub_with_speakers(make_settings, tmp_path) as hub:
        breach = event_payload(unique_seq(), zone="z1")
        async with mqtt_inbox(edge, topics.committed(SITE)) as commits:
            await edge.publish(topics.events(SITE), json.dumps(breach).encode(), qos=1)
            await commits.wait_for(lambda m: breach["id"] in m[1]["ids"])
        alarm_id = hub.hub.picture.active[(SITE, "z1")].id
        auto_id = f"edge-auto-z1-{int(utcnow().timestamp() * 1000)}"
        elsewhere = f"edge-auto-nowhere-{int(utcnow().timestamp() * 1000)}"
        async with hub.socket(await hub.token("viewer")) as ws, ws_inbox(ws) as console:
            await console.wait_for(lambda m: m["type"] == "hello")
            # The edge plays on both speakers covering z1, under one id.
            for speaker in ("db-spk-01", "db-spk-02"):
                await ack(edge, speaker, auto_id, "received", "edge-auto")
            for speaker in ("db-spk-01", "db-spk-02"):
                await ack(edge, speaker, auto_id, "done")
            await ack(edge, "db-spk-01", elsewhere, "received", "edge-auto")
            done = await console.wait_for(
                lambda m: (
                    m["type"] == "announcement"
                    and m["data"]["id"] == auto_id
                    and set(m["data"]["speakers"].values()) == {"done"}
                )
            )
            stray = await console.wait_for(
                lambda m: m["type"] == "announcement" and m["data"]["id"] == elsewhere
            )
        headers = await hub.auth("supervisor-wang")
        timeline = (await hub.http.get(f"/api/alarms/{alarm_id}/timeline", headers=headers)).json()
        audit = (await hub.http.get(f"/api/audit?alarm={alarm_id}", headers=headers)).json()
        refused = [
            await hub.metric("riverguard_hub_rejected_total", f'reason="{reason}"')
            for reason in ("unknown_announcement", "unknown_speaker")
        ]

    assert [0.0, 0.0] == refused
    assert ("edge-auto", alarm_id, 3) == (
        done["data"]["requested_by"],
        done["data"]["alarm_id"],
        done["data"]["priority"],
    )
    assert {"db-spk-01": "done", "db-spk-02": "done"} == done["data"]["speakers"]
    # A zone the site does not have: recorded all the same, with no alarm.
    assert (None, {"db-spk-01": "received"}) == (
        stray["data"]["alarm_id"],
        stray["data"]["speakers"],
    )
    [announced] = [e for e in timeline["entries"] if e["type"] == "announcement"]
    assert ("edge-auto", auto_id) == (announced["by"], announced["data"]["id"])
    steps = [
        (e["data"]["speaker"], e["data"]["state"])
        for e in timeline["entries"]
        if e["type"] == "speaker"
    ]
    assert [
        ("db-spk-01", "received"),
        ("db-spk-02", "received"),
        ("db-spk-01", "done"),
        ("db-spk-02", "done"),
    ] == steps
    assert [("edge-auto", auto_id)] == [
        (a["username"], a["target"]) for a in audit if a["action"] == "announce"
    ]


async def test_an_edge_auto_warning_that_never_ends_is_failed_after_its_expiry(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    clock = ManualClock()
    auto_id = f"edge-auto-z2-{int(clock.now().timestamp() * 1000)}"
    async with hub_with_speakers(make_settings, tmp_path, clock) as hub:
        body = {"id": auto_id, "state": "received", "ts": format_ts(clock.now())}
        await edge.publish(topics.speaker_ack(SITE, "db-spk-03"), json.dumps(body), qos=1)

        async def state() -> str | None:
            found = await hub.hub.announcer.get(auto_id)
            return found["speakers"]["db-spk-03"] if found is not None else None

        await wait_for(lambda: _is(state, "received"), what="edge auto warning recorded")
        # Its 60 s expiry and the 10 s acknowledgement timeout.
        clock.advance(71)
        await wait_for(lambda: _is(state, "failed"), what="never-ending warning failed")
        found = await hub.hub.announcer.get(auto_id)

    assert found is not None
    assert "no_ack: no final state" == found["history"][-1]["detail"]


async def _is(state: Callable[[], Awaitable[str | None]], expected: str) -> bool:
    return expected == await state()


async def test_unacknowledged_speakers_fail_with_no_ack_and_expiry_is_sent(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    clock = ManualClock(datetime(2026, 7, 1, 3, 0, tzinfo=UTC))
    async with (
        hub_with_speakers(make_settings, tmp_path, clock, announce_ack_timeout_s=10) as hub,
        as_edge(edge) as inbox,
    ):
        token = await hub.token("viewer")
        async with hub.socket(token) as ws, ws_inbox(ws) as console:
            await console.wait_for(lambda m: m["type"] == "hello")
            _, created = await post(hub, {"site": SITE, "zone": "z1", "expires_in_s": 30})
            sent = await inbox.wait_for(lambda m: m[1].get("id") == created["id"])
            await ack(edge, "db-spk-01", created["id"], "received")
            await console.wait_for(
                lambda m: (
                    m["type"] == "announcement" and "received" in m["data"]["speakers"].values()
                )
            )
            clock.advance(11)
            failed = await console.wait_for(
                lambda m: m["type"] == "announcement" and "failed" in m["data"]["speakers"].values()
            )

            # Received but never finished: failed once expiry, playing time and timeout pass.
            clip_s = created["clip"]["duration_ms"] * created["repeat"] / 1000
            clock.advance(30 + clip_s)
            stuck = await console.wait_for(
                lambda m: (
                    m["type"] == "announcement"
                    and set(m["data"]["speakers"].values()) == {"failed"}
                )
            )

    assert {"db-spk-01": "received", "db-spk-02": "failed"} == failed["data"]["speakers"]
    assert "no_ack" == failed["data"]["history"][-1]["detail"]
    assert "2026-07-01T03:00:30.000Z" == sent[1]["expires_at"]
    assert ("db-spk-01", "no_ack: no final state") == (
        stuck["data"]["history"][-1]["speaker"],
        stuck["data"]["history"][-1]["detail"],
    )


async def test_scheduled_announcement_fires_on_the_injected_clock(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    clock = ManualClock(BEFORE_FOUR_PM)
    async with hub_with_speakers(make_settings, tmp_path, clock) as hub, as_edge(edge) as inbox:
        headers = await hub.auth("supervisor-wang")
        response = await hub.http.post(
            "/api/schedules",
            headers=headers,
            json={
                "site": SITE,
                "title": "Summer evenings",
                "text": "夏季傍晚，请勿下水游泳",
                "voice": "cmn",
                "zone": "z1",
                "start": "16:00",
                "end": "20:00",
                "every_min": 30,
                "months": [6, 7, 8],
            },
        )
        schedule = response.json()
        clock.advance(31)
        _, fired = await inbox.wait_for(lambda m: m[0].endswith("/announce"))

        async def counted() -> bool:
            found = hub.hub.schedules.get(schedule["id"])
            return found is not None and found.item.fired_count == 1

        await wait_for(counted, what="the schedule's first firing recorded")
        listed = await hub.http.get("/api/schedules", headers=headers)
        paused = await hub.http.patch(
            f"/api/schedules/{schedule['id']}", headers=headers, json={"paused": True}
        )

    assert 201 == response.status_code, schedule
    assert "2026-07-01T08:00:00.000Z" == schedule["next_fire"]
    assert ("scheduler", 3) == (fired["requested_by"], fired["priority"])
    item = listed.json()[0]
    assert (1, "2026-07-01T08:30:00.000Z") == (item["fired_count"], item["next_fire"])
    assert item["last_result"].startswith("sent ann-")
    assert (True, None) == (paused.json()["paused"], paused.json()["next_fire"])


@pytest.mark.parametrize(
    "body",
    [
        {"site": SITE, "title": "x", "start": "16:00", "end": "20:00", "every_min": 30},
        {"site": SITE, "title": "x", "clip_id": "warning-en", "start": "25:00", "end": "20:00",
         "every_min": 30},
        {"site": SITE, "title": "x", "text": "hi", "start": "16:00", "end": "20:00",
         "every_min": 30},
        {"site": SITE, "title": "x", "clip_id": "warning-en", "start": "16:00", "end": "20:00",
         "every_min": 30, "priority": 9},
    ],
)  # fmt: skip
async def test_bad_schedules_are_refused(running_hub: RunningHub, body: dict[str, Any]) -> None:
    response = await running_hub.http.post(
        "/api/schedules", headers=await running_hub.auth("supervisor-wang"), json=body
    )
    assert (422, "invalid_request") == (response.status_code, response.json()["error"])


async def test_announcement_history_is_listed_newest_first_and_filtered(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    async with hub_with_speakers(make_settings, tmp_path) as hub:
        _, first = await post(hub, {"site": SITE})
        _, second = await post(hub, {"site": "xiyong-wharf"})
        headers = await hub.auth("viewer")
        everything = (await hub.http.get("/api/announcements", headers=headers)).json()
        one_site = (await hub.http.get(f"/api/announcements?site={SITE}", headers=headers)).json()
        bad = await hub.http.get("/api/announcements?since=yesterday", headers=headers)

    assert [second["id"], first["id"]] == [a["id"] for a in everything]
    assert [first["id"]] == [a["id"] for a in one_site]
    assert (422, "invalid_request") == (bad.status_code, bad.json()["error"])


async def test_http_speakers_get_wav_when_ulaw_is_switched_off_for_old_edges(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    async with (
        hub_with_speakers(make_settings, tmp_path, ulaw_for_http_speakers=False) as hub,
        as_edge(edge) as inbox,
    ):
        _, created = await post(hub, {"speakers": ["db-spk-03"], "clip_id": "warning-yue"})
        _, body = await inbox.wait_for(lambda m: m[1].get("id") == created["id"])
    assert "wav" == body["audio"]["format"]


SHANGHAI = ZoneInfo("Asia/Shanghai")


def spec(**changes: Any) -> ScheduleIn:
    values: dict[str, Any] = {
        "site": SITE,
        "title": "t",
        "clip_id": "warning-cmn",
        "start": "16:00",
        "end": "20:00",
        "every_min": 30,
    }
    return ScheduleIn.model_validate({**values, **changes})


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 7, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.mark.parametrize(
    ("changes", "after", "expected"),
    [
        ({}, local(1, 15, 0), local(1, 16, 0)),
        ({}, local(1, 16, 0), local(1, 16, 30)),
        # 20:00 is the end, not an occurrence: next is tomorrow at 16:00.
        ({}, local(1, 19, 30), local(2, 16, 0)),
        # 2026-07-01 is a Wednesday (3); weekends only: Saturday the 4th.
        ({"days": [6, 7]}, local(1, 12, 0), local(4, 16, 0)),
        # Past midnight: 22:00-02:00 every hour; 02:00 is the end, so after 01:30 comes 22:00.
        ({"start": "22:00", "end": "02:00", "every_min": 60}, local(2, 0, 30), local(2, 1, 0)),
        ({"start": "22:00", "end": "02:00", "every_min": 60}, local(2, 1, 30), local(2, 22, 0)),
        # Summer only, asked in September: next June 1st.
        (
            {"months": [6, 7, 8]},
            datetime(2026, 9, 1, tzinfo=UTC),
            datetime(2027, 6, 1, 16, tzinfo=SHANGHAI).astimezone(UTC),
        ),
    ],
)
def test_next_occurrence_follows_days_months_and_windows(
    changes: dict[str, Any], after: datetime, expected: datetime
) -> None:
    assert expected == next_occurrence(spec(**changes), SHANGHAI, after)


async def test_schedules_are_kept_across_a_restart(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    clock = ManualClock(BEFORE_FOUR_PM)
    async with hub_with_speakers(make_settings, tmp_path, clock) as hub:
        created = await hub.http.post(
            "/api/schedules",
            headers=await hub.auth("supervisor-wang"),
            json=spec().model_dump(),
        )
    async with hub_with_speakers(make_settings, tmp_path, clock) as hub:
        listed = (await hub.http.get("/api/schedules", headers=await hub.auth())).json()
        deleted = await hub.http.delete(
            f"/api/schedules/{created.json()['id']}", headers=await hub.auth("supervisor-wang")
        )
        after = (await hub.http.get("/api/schedules", headers=await hub.auth())).json()
        audit = (
            await hub.http.get("/api/audit?action=schedule", headers=await hub.auth("admin"))
        ).json()
    assert [created.json()] == listed
    assert (204, []) == (deleted.status_code, after)
    assert [("supervisor-wang", "delete"), ("supervisor-wang", "create")] == [
        (entry["username"], entry["detail"]) for entry in audit
    ]


async def test_a_failing_schedule_is_recorded_and_others_still_fire(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    clock = ManualClock(BEFORE_FOUR_PM)
    async with hub_with_speakers(make_settings, tmp_path, clock) as hub, as_edge(edge) as inbox:
        headers = await hub.auth("supervisor-wang")
        broken = await hub.http.post(
            "/api/schedules", headers=headers, json=spec(clip_id="no-such-clip").model_dump()
        )
        good = await hub.http.post("/api/schedules", headers=headers, json=spec().model_dump())
        clock.advance(31)
        await inbox.wait_for(lambda m: m[0].endswith("/announce"))

        async def both_fired() -> bool:
            return all(
                (found := hub.hub.schedules.get(r.json()["id"])) is not None
                and found.item.fired_count == 1
                for r in (broken, good)
            )

        await wait_for(both_fired, what="both schedules fired")
        listed = {
            s["id"]: s for s in (await hub.http.get("/api/schedules", headers=headers)).json()
        }

    assert listed[broken.json()["id"]]["last_result"].startswith("failed: no clip")
    assert listed[good.json()["id"]]["last_result"].startswith("sent ann-")
