"""Escalation and the deterrence loop in a real hub, driven by a manual clock (no sleeps)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from hub.clock import ManualClock
from riverguard.testing import wait_for
from riverguard.wire import topics
from tests.conftest import EXAMPLE_CONFIG
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


async def _send(running: RunningHub, edge: aiomqtt.Client, **event: Any) -> str:
    """Publish one event as the edge; return the id of the alarm of its zone once committed."""
    payload = event_payload(unique_seq(), **event)
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        await edge.publish(topics.events(SITE), json.dumps(payload).encode(), qos=1)
        await acks.wait_for(lambda m: payload["id"] in m[1]["ids"])
    return running.hub.picture.active[(SITE, payload["zone"])].id


def _level(running: RunningHub, alarm_id: str) -> int:
    alarm = next(a for a in running.hub.picture.active.values() if a.id == alarm_id)
    return alarm.escalation_level


async def test_unacknowledged_alarm_climbs_the_grid_path_is_pushed_and_audited_and_ack_stops_it(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    clock = ManualClock()
    settings = make_settings()
    async with run_hub(settings, clock) as running:
        alarm_id = await _send(running, edge)
        token = await running.token("viewer")
        async with running.socket(token) as ws, ws_inbox(ws) as console:
            await console.wait_for(lambda m: m["type"] == "hello")
            clock.advance(59)
            # Default policy: grid officer after 60 s, street 120 s later, district 300 s later.
            assert 0 == _level(running, alarm_id)
            clock.advance(1)
            pushed = await console.wait_for(
                lambda m: m["type"] == "alarm" and m["data"]["escalation_level"] == 1
            )
            clock.advance(120)
            await console.wait_for(
                lambda m: m["type"] == "alarm" and m["data"]["escalation_level"] == 2
            )

        officer = await running.auth()
        acked = await running.http.post(f"/api/alarms/{alarm_id}/ack", headers=officer)
        clock.advance(3600)
        await running.hub.desk.tick()
        audit = (
            await running.http.get(
                f"/api/audit?alarm={alarm_id}&action=escalate", headers=await running.auth("admin")
            )
        ).json()

    assert ("grid officer", alarm_id, "unacknowledged", None) == (
        pushed["data"]["escalation_name"],
        pushed["data"]["id"],
        pushed["data"]["escalation_reason"],
        pushed["data"]["escalated_by"],
    )
    assert (2, "street", None) == (
        acked.json()["escalation_level"],
        acked.json()["escalation_name"],
        acked.json()["escalate_at"],
    )
    assert [(2, "street"), (1, "grid officer")] == [
        (e["after"]["escalation_level"], e["after"]["escalation_name"]) for e in audit
    ]
    assert {"system"} == {e["username"] for e in audit}


async def test_escalation_timers_survive_a_hub_restart(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    clock = ManualClock()
    settings = make_settings()
    async with run_hub(settings, clock) as first:
        alarm_id = await _send(first, edge)
        due = first.hub.picture.active[(SITE, "z1")].escalate_at
    # The hub is down while the alarm's first level comes due.
    clock.advance(61)
    restarted = make_settings()
    async with run_hub(restarted, clock) as second:
        await wait_for(lambda: _level(second, alarm_id) == 1, what="escalation after restart")
        alarm = second.hub.picture.active[(SITE, "z1")]

    assert due is not None
    assert due < clock.now()
    # Escalated at start-up, and the next level counts from then.
    assert ("grid officer", clock.now(), clock.now() + timedelta(seconds=120)) == (
        alarm.escalation_name,
        alarm.updated_at,
        alarm.escalate_at,
    )


async def test_a_trigger_after_an_announcement_escalates_and_proposes_the_next_step(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    alarm_id = await _send(running_hub, edge, zone="z2", device="db-fence-02")
    officer = await running_hub.auth()
    await running_hub.http.post(f"/api/alarms/{alarm_id}/ack", headers=officer)
    announced = await running_hub.http.post(
        "/api/announcements", headers=officer, json={"alarm_id": alarm_id}
    )
    assert 202 == announced.status_code
    await _send(running_hub, edge, zone="z2", device="db-fence-02")
    alarm = (await running_hub.http.get(f"/api/alarms/{alarm_id}", headers=officer)).json()
    audit = (
        await running_hub.http.get(
            f"/api/audit?alarm={alarm_id}&action=escalate",
            headers=await running_hub.auth("supervisor-wang"),
        )
    ).json()

    assert (1, "repeat", None, "acknowledged", "trigger_after_announcement") == (
        alarm["escalation_level"],
        alarm["next_step"],
        alarm["suggestion"],
        alarm["state"],
        alarm["escalation_reason"],
    )
    assert ["trigger after an announcement"] == [e["detail"] for e in audit]


async def test_why_an_alarm_climbed_is_stored_and_comes_in_a_restarted_hubs_hello(
    make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    """An officer's call of the next level names them; the reason survives a restart,
    and the timer's next climb says it was not acknowledged."""
    clock = ManualClock()
    async with run_hub(make_settings(), clock) as first:
        alarm_id = await _send(first, edge)
        opened = first.hub.picture.active[(SITE, "z1")]
        called = await first.http.post(
            f"/api/alarms/{alarm_id}/next-level", headers=await first.auth()
        )
    async with run_hub(make_settings(), clock) as second:
        token = await second.token("viewer")
        async with second.socket(token) as ws, ws_inbox(ws) as console:
            hello = await console.wait_for(lambda m: m["type"] == "hello")
            clock.advance(120)
            timer = await console.wait_for(
                lambda m: m["type"] == "alarm" and m["data"]["escalation_level"] == 2
            )
        timeline = await second.http.get(
            f"/api/alarms/{alarm_id}/timeline", headers=await second.auth()
        )

    assert (0, None, None) == (
        opened.escalation_level,
        opened.escalation_reason,
        opened.escalated_by,
    )
    assert (1, "by_officer", "officer-li") == (
        called.json()["escalation_level"],
        called.json()["escalation_reason"],
        called.json()["escalated_by"],
    )
    [shown] = [a for a in hello["data"]["alarms"] if a["id"] == alarm_id]
    assert ("by_officer", "officer-li") == (shown["escalation_reason"], shown["escalated_by"])
    assert ("unacknowledged", None) == (
        timer["data"]["escalation_reason"],
        timer["data"]["escalated_by"],
    )
    # Each climb's entry in the timeline says why it climbed.
    assert [(1, "by_officer", "officer-li"), (2, "unacknowledged", None)] == [
        (e["data"]["escalation_level"], e["data"]["escalation_reason"], e["data"]["escalated_by"])
        for e in timeline.json()["entries"]
        if e["type"] == "escalate"
    ]


def _config_with(tmp_path: Path, site_line: str, extra: str) -> Path:
    """The example configuration with ``extra`` added under the line ``site_line``."""
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(site_line, f"{site_line}\n{extra}")
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_quiet_zone_after_an_announcement_proposes_persuaded_away_once_the_fence_clears(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    clock = ManualClock()
    config = _config_with(
        tmp_path,
        "correlation_window_s = 30",
        'clear_window_s = 30\n[[sites.escalation]]\nafter_s = 600\nlevel_name = "grid officer"',
    )
    settings = make_settings(config=config)
    async with run_hub(settings, clock) as running:
        alarm_id = await _send(running, edge)
        officer = await running.auth()
        await running.http.post("/api/announcements", headers=officer, json={"alarm_id": alarm_id})
        clock.advance(31)
        await running.hub.desk.tick()
        # z1 has a fence: the window alone is not enough.
        waiting = running.hub.picture.active[(SITE, "z1")]
        await _send(running, edge, kind="fence.clear", severity="info")
        await wait_for(
            lambda: running.hub.picture.active[(SITE, "z1")].suggestion == "persuaded_away",
            what="suggestion",
        )
        alarm = running.hub.picture.active[(SITE, "z1")]

    assert (None, False) == (waiting.suggestion, waiting.fence_clear)
    assert ("persuaded_away", "open", 0) == (alarm.suggestion, alarm.state, alarm.escalation_level)


async def test_auto_resolve_site_resolves_a_persuaded_alarm_by_itself(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    clock = ManualClock()
    config = _config_with(
        tmp_path,
        "correlation_window_s = 30",
        "clear_window_s = 30\nauto_resolve_persuaded = true",
    )
    settings = make_settings(config=config)
    async with run_hub(settings, clock) as running:
        alarm_id = await _send(running, edge)
        officer = await running.auth()
        await running.http.post(f"/api/alarms/{alarm_id}/ack", headers=officer)
        await running.http.post("/api/announcements", headers=officer, json={"alarm_id": alarm_id})
        await _send(running, edge, kind="fence.clear", severity="info")
        clock.advance(30)
        await wait_for(lambda: (SITE, "z1") not in running.hub.picture.active, what="resolved")
        alarm = (await running.http.get(f"/api/alarms/{alarm_id}", headers=officer)).json()
        printed = await running.printed_timelines(alarm_id, officer)

    assert ("resolved", "persuaded_away", "system") == (
        alarm["state"],
        alarm["outcome"],
        alarm["resolved_by"],
    )
    # The hub's note as a code readers say in their language (7.42); ``note`` for old ones.
    english = "no trigger for 30 s after the announcement"
    assert ("quiet_after_announcement", 30, english) == (
        alarm["note_code"],
        alarm["note_window_s"],
        alarm["note"],
    )
    assert "广播后 30 秒内无触发，系统自动处置" in printed["zh"]
    assert "no trigger" not in printed["zh"]
    assert english in printed["en"]
