"""A new intrusion re-raises its alarm in a real hub (PROTOCOL 7.36): pushed to the
consoles, audited, in the timeline with the repeated detections folded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiomqtt
import pytest

from hub.clock import ManualClock
from hub.intrusions import REARM_S
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.times import format_ts
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
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def hub(make_settings: MakeSettings, clock: ManualClock) -> AsyncIterator[RunningHub]:
    async with run_hub(make_settings(), clock) as running:
        yield running


async def _send(edge: aiomqtt.Client, clock: ManualClock, *events: dict[str, Any]) -> None:
    """Publish ``events`` (dated by the hub's clock) and wait until they are committed."""
    for event in events:
        event.update(ts=format_ts(clock.now()), edge_ts=format_ts(clock.now()))
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        for event in events:
            await edge.publish(topics.events(SITE), json.dumps(event).encode(), qos=1)
        await wait_for(
            lambda: {e["id"] for e in events} <= {i for m in acks.items for i in m[1]["ids"]},
            what="events committed",
        )


def _camera() -> dict[str, Any]:
    return event_payload(
        unique_seq(), device="db-cam-01", kind="camera.water_entry", severity="critical"
    )


async def test_a_second_person_after_the_first_left_reraises_the_acknowledged_alarm(
    hub: RunningHub, edge: aiomqtt.Client, clock: ManualClock
) -> None:
    await _send(edge, clock, event_payload(unique_seq()))
    alarm_id = hub.hub.picture.active[(SITE, "z1")].id
    for _ in range(6):  # the first swimmer, seen every 5 s
        clock.advance(5)
        await _send(edge, clock, _camera())
    officer = await hub.auth()
    assert 200 == (await hub.http.post(f"/api/alarms/{alarm_id}/ack", headers=officer)).status_code
    clock.advance(5)
    await _send(edge, clock, event_payload(unique_seq(), kind="fence.clear", severity="info"))

    clock.advance(REARM_S)
    async with hub.socket(await hub.token("viewer")) as ws, ws_inbox(ws) as inbox:
        await inbox.wait_for(lambda m: m["type"] == "hello")
        second = event_payload(unique_seq())
        await _send(edge, clock, second)
        pushed = await inbox.wait_for(
            lambda m: m["type"] == "alarm" and m["data"]["intrusion_count"] == 2
        )
    alarm = pushed["data"]
    assert (alarm_id, "open", None) == (alarm["id"], alarm["state"], alarm["acked_by"])
    first, new = alarm["intrusions"]
    assert (7, "after_gone", second["id"]) == (first["count"], new["cause"], new["event_id"])
    assert format_ts(clock.now()) == new["raised_at"]

    viewer = await hub.auth("viewer")
    timeline = (await hub.http.get(f"/api/alarms/{alarm_id}/timeline", headers=viewer)).json()
    types = [(e["type"], e.get("count", 1)) for e in timeline["entries"]]
    # The six detections are one entry; the ack and the re-raise stand out between them.
    assert [
        ("opened", 1),
        ("event", 1),
        ("event", 6),
        ("ack", 1),
        ("event", 1),
        ("event", 1),
        ("intrusion", 1),
    ] == types, types
    raised = timeline["entries"][-1]
    assert ("system", "after_gone", "db-fence-01") == (
        raised["by"],
        raised["data"]["cause"],
        raised["data"]["device"],
    )
    assert 9 == len(timeline["events"])
    supervisor = await hub.auth("supervisor-wang")
    audit = (await hub.http.get("/api/audit?action=intrusion", headers=supervisor)).json()
    assert [alarm_id] == [entry["alarm_id"] for entry in audit]
    pages = await hub.printed_timelines(alarm_id, viewer)
    assert "New intrusion" in pages["en"]
    assert "×6" in pages["en"]
    assert "db-fence-01 · after the zone was clear" in pages["en"]
    # The Chinese page says why it is new in Chinese, not the audit's English detail.
    assert "db-fence-01 · 区域清空后再次进入" in pages["zh"]
    assert "new intrusion after" not in pages["zh"]


async def test_a_person_seen_again_and_again_never_reraises(
    hub: RunningHub, edge: aiomqtt.Client, clock: ManualClock
) -> None:
    await _send(edge, clock, event_payload(unique_seq()))
    alarm_id = hub.hub.picture.active[(SITE, "z1")].id
    officer = await hub.auth()
    await hub.http.post(f"/api/alarms/{alarm_id}/ack", headers=officer)
    for _ in range(40):  # over three minutes in the water
        clock.advance(5)
        await _send(edge, clock, _camera())
    alarm = hub.hub.picture.active[(SITE, "z1")]
    assert ("acknowledged", 1, 41) == (
        alarm.state,
        alarm.intrusion_count,
        alarm.intrusions[0].count,
    )
    assert timedelta(seconds=200) == alarm.intrusions[0].last_ts - alarm.intrusions[0].first_ts


async def test_a_flood_of_forged_clears_and_breaches_reraises_once_per_rearm_time(
    hub: RunningHub, edge: aiomqtt.Client, clock: ManualClock
) -> None:
    """Breach and clear by turns, dated hours apart in the past and ahead: each pair
    would be a new intrusion by its dates, but the hub's time decides how often."""
    await _send(edge, clock, event_payload(unique_seq()))
    alarm_id = hub.hub.picture.active[(SITE, "z1")].id
    for round_ in range(3):
        clock.advance(REARM_S)
        flood = []
        for n in range(20):
            dated = clock.now() + timedelta(hours=(n - 10) * 2)
            kind = ("fence.clear", "info") if n % 2 else ("fence.breach", "warning")
            event = event_payload(unique_seq(), kind=kind[0], severity=kind[1])
            flood.append((event, dated))
        async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
            for event, dated in flood:
                event.update(ts=format_ts(dated), edge_ts=format_ts(clock.now()))
                # One message each: one ingest batch would re-raise once by itself.
                await edge.publish(topics.events(SITE), json.dumps(event).encode(), qos=1)
            sent = {e["id"] for e, _ in flood}

            def committed(sent: set[str] = sent) -> bool:
                return sent <= {i for m in acks.items for i in m[1]["ids"]}

            await wait_for(committed, what="the flood committed")
        alarm = hub.hub.picture.active[(SITE, "z1")]
        # Every report taken (none refused), and one new intrusion per round.
        assert (alarm_id, 1 + 20 * (round_ + 1), round_ + 2) == (
            alarm.id,
            alarm.event_count,
            alarm.intrusion_count,
        )
