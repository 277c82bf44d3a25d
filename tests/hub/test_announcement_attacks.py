"""Announcements attacked: priorities beyond policy, forged and repeated speaker acks.

A real hub and broker; the test publishes what an attacker holding a login
that reaches the hub's topics would (hub/announcer.py, riverguard/policy.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import aiomqtt

from hub.clock import ManualClock
from riverguard.testing import wait_for
from riverguard.wire.times import utcnow
from tests.hub.conftest import MakeSettings, ws_inbox
from tests.hub.test_api_audio import (
    QUIET_NIGHT,
    ack,
    as_edge,
    hub_with_speakers,
    post,
    raise_alarm,
)


async def test_priority_10_without_an_alarm_is_routine_capped_and_rate_limited(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    """Volume 100, repeat 10, priority 10 and no alarm: played as routine, not as asked."""
    clock = ManualClock(QUIET_NIGHT)
    loud = {"speakers": ["db-spk-01"], "volume": 100, "repeat": 10, "priority": 10}
    settings = {"quiet_volume_cap": 35, "routine_limit": 1}
    async with hub_with_speakers(make_settings, tmp_path, clock, **settings) as hub:
        alarm_id = await raise_alarm(hub, edge)
        async with as_edge(edge) as inbox:
            status, created = await post(hub, loud)
            sent = await inbox.wait_for(lambda m: m[1].get("id") == created["id"])
            again = await post(hub, loud)
            urgent_status, urgent = await post(hub, {**loud, "alarm_id": alarm_id})
            urgent_sent = await inbox.wait_for(lambda m: m[1].get("id") == urgent["id"])

    assert 202 == status
    assert (7, 5, 35) == (sent[1]["priority"], sent[1]["repeat"], sent[1]["volume"])
    assert (
        "priority capped 10 -> 7 (no open alarm); repeat capped 10 -> 5 (routine); "
        "volume capped 100 -> 35 (quiet hours)"
    ) == created["history"][0]["detail"]
    assert (429, "rate_limited") == (again[0], again[1]["error"])
    # An alarm's answer is life-safety: as asked, and not limited.
    assert 202 == urgent_status
    assert (10, 10, 100) == (
        urgent_sent[1]["priority"],
        urgent_sent[1]["repeat"],
        urgent_sent[1]["volume"],
    )


async def test_a_resolved_alarm_gives_no_life_safety_priority(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    """Naming a resolved alarm does not lift an announcement above routine."""
    clock = ManualClock(QUIET_NIGHT)
    settings = {"quiet_volume_cap": 35, "routine_limit": 5}
    async with hub_with_speakers(make_settings, tmp_path, clock, **settings) as hub:
        alarm_id = await raise_alarm(hub, edge)
        resolved = await hub.http.post(
            f"/api/alarms/{alarm_id}/resolve",
            headers=await hub.auth(),
            json={"outcome": "other"},
        )
        assert 200 == resolved.status_code
        loud = {"alarm_id": alarm_id, "volume": 100, "repeat": 10, "priority": 10}
        async with as_edge(edge) as inbox:
            status, created = await post(hub, loud)
            sent = await inbox.wait_for(lambda m: m[1].get("id") == created["id"])

    assert 202 == status
    assert (7, 5, 35) == (sent[1]["priority"], sent[1]["repeat"], sent[1]["volume"])
    assert created["history"][0]["detail"].startswith("priority capped 10 -> 7 (no open alarm)")


async def test_forged_and_repeated_acks_neither_overwrite_a_final_state_nor_grow_hello(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    """A real ``failed`` stands against a forged ``done``; 150 more acks leave no trace."""
    forged = 150
    async with hub_with_speakers(make_settings, tmp_path) as hub, as_edge(edge) as inbox:
        _, created = await post(hub, {"speakers": ["db-spk-02"]})
        await inbox.wait_for(lambda m: m[1].get("id") == created["id"])
        await ack(edge, "db-spk-02", created["id"], "received")
        await ack(edge, "db-spk-02", created["id"], "failed", "player exited 1")

        async def failed() -> bool:
            found = await hub.hub.announcer.get(created["id"])
            return found is not None and found["speakers"]["db-spk-02"] == "failed"

        await wait_for(failed, what="the real failure recorded")
        token = await hub.token("viewer")
        async with hub.socket(token) as ws, ws_inbox(ws) as console:
            before = await console.wait_for(lambda m: m["type"] == "hello")
        detail = "x" * 8000
        for index in range(forged):
            state = ("done", "playing", "received", "failed")[index % 4]
            await ack(edge, "db-spk-02", created["id"], state, detail)
        await hub.wait_metric("riverguard_hub_rejected_total", forged, 'reason="stale_state"')
        async with hub.socket(token) as ws, ws_inbox(ws) as console:
            after = await console.wait_for(lambda m: m["type"] == "hello")
        found = await hub.hub.announcer.get(created["id"])

    print(  # the figures docs/security.md quotes
        f"\nhello before {len(json.dumps(before))} bytes, after {forged} forged acks"
        f" of 8 KB {len(json.dumps(after))} bytes"
    )
    assert found is not None
    assert {"db-spk-02": "failed"} == found["speakers"]
    assert ["pending", "received", "failed"] == [step["state"] for step in found["history"]]
    assert "player exited 1" == found["history"][-1]["detail"]
    [announced] = [a for a in after["data"]["announcements"] if a["id"] == created["id"]]
    assert found["history"] == announced["history"]
    assert len(json.dumps(after)) - len(json.dumps(before)) < 200


async def test_acks_from_speakers_outside_an_announcement_are_refused(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    """Neither the hub's announcement nor the edge's own warning takes other speakers' acks."""
    ms = int(utcnow().timestamp() * 1000)
    auto_z1 = f"edge-auto-z1-{ms}"
    async with hub_with_speakers(make_settings, tmp_path) as hub, as_edge(edge) as inbox:
        _, created = await post(hub, {"speakers": ["db-spk-02"]})
        await inbox.wait_for(lambda m: m[1].get("id") == created["id"])
        # db-spk-03 covers z2 only: the edge never plays z1's warning on it.
        await ack(edge, "db-spk-03", f"edge-auto-z1-{ms + 1}", "received", "edge-auto")
        await ack(edge, "db-spk-01", auto_z1, "received", "edge-auto")
        await ack(edge, "db-spk-03", auto_z1, "done")
        await ack(edge, "db-spk-01", created["id"], "done")
        await hub.wait_metric("riverguard_hub_rejected_total", 3, 'reason="unknown_speaker"')
        auto = await hub.hub.announcer.get(auto_z1)
        other = await hub.hub.announcer.get(f"edge-auto-z1-{ms + 1}")
        mine = await hub.hub.announcer.get(created["id"])

    assert other is None
    assert auto is not None
    assert {"db-spk-01": "received"} == auto["speakers"]
    assert mine is not None
    assert {"db-spk-02": "pending"} == mine["speakers"]


async def test_forged_warnings_of_the_edges_own_make_one_record_per_zone_and_cooldown(
    make_settings: MakeSettings, tmp_path: Path, edge: aiomqtt.Client
) -> None:
    """Every new ``edge-auto-…`` id made a record (and grew ``hello``): the edge warns a
    zone once per cooldown (60 s by default), so more are not its own."""
    clock = ManualClock()
    ms = int(clock.now().timestamp() * 1000)
    forged = [f"edge-auto-z2-{ms + n}" for n in range(40)]
    async with hub_with_speakers(make_settings, tmp_path, clock) as hub:
        for auto_id in forged:
            await ack(edge, "db-spk-03", auto_id, "received", "edge-auto")
        await hub.wait_metric(
            "riverguard_hub_rejected_total", len(forged) - 1, 'reason="edge_auto_too_often"'
        )
        clock.advance(61)
        later = f"edge-auto-z2-{ms + 61_000}"
        await ack(edge, "db-spk-03", later, "received", "edge-auto")

        async def recorded(auto_id: str) -> bool:
            return await hub.hub.announcer.get(auto_id) is not None

        await wait_for(lambda: recorded(later), what="a warning after the cooldown recorded")
        kept = [auto_id for auto_id in forged if await recorded(auto_id)]

    assert [forged[0]] == kept
