"""A console's ``hello`` carries the dispatches of the active alarms, kept current by
``dispatch`` messages, so that every alarm card shows who was called without a
request per card (docs/protocol.md 7.38): a real hub, broker and webhook receiver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from hub.clock import ManualClock
from riverguard.testing import wait_for
from riverguard.wire import topics
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
from tests.notify.receivers import http_receiver
from tests.notify.support import config_with_a_grid_officer

pytestmark = pytest.mark.integration

KEY = "responder-key-0123456789"


async def _hello(running: RunningHub) -> dict[str, Any]:
    async with running.socket(await running.token("viewer")) as ws, ws_inbox(ws) as console:
        message = await console.wait_for(lambda m: m["type"] == "hello")
    data: dict[str, Any] = message["data"]
    return data


async def _breach(edge: aiomqtt.Client) -> None:
    payload = event_payload(unique_seq(), zone="z1")
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        await edge.publish(topics.events(SITE), json.dumps(payload).encode(), qos=1)
        await acks.wait_for(lambda m: payload["id"] in m[1]["ids"])


async def test_an_escalations_call_is_pushed_and_in_every_later_hello(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        config = config_with_a_grid_officer(tmp_path, f"{receiver.url}/duty")
        clock = ManualClock()
        settings = make_settings(config=config, responder_key=KEY)
        async with run_hub(settings, clock) as running:
            await _breach(edge)
            alarm = running.hub.picture.active[(SITE, "z1")]
            hello = await _hello(running)
            assert [] == hello["dispatches"]
            # The site's dispatch timers, which the console counts down.
            site = next(s for s in hello["sites"] if s["id"] == SITE)
            assert {"accept_s": 120.0, "arrive_s": 900.0} == site["dispatch"]
            viewer = await running.token("viewer")
            async with running.socket(viewer) as ws, ws_inbox(ws) as console:
                await console.wait_for(lambda m: m["type"] == "hello")
                clock.advance(60)
                called = await console.wait_for(lambda m: m["type"] == "dispatch")
            assert ("chen", "陈网格员", "notified", 1, alarm.id) == (
                called["data"]["responder"],
                called["data"]["responder_name"],
                called["data"]["state"],
                called["data"]["level"],
                called["data"]["alarm_id"],
            )
            await wait_for(lambda: bool(receiver.received), what="the grid officer's call")
            token = json.loads(receiver.received[0].body)["links"]["respond"].rsplit("/", 1)[1]
            [shown] = (await _hello(running))["dispatches"]
            assert called["data"] == shown

            clock.advance(15)
            accepted = await running.http.post(f"/api/respond/{token}/accept")
            [shown] = (await _hello(running))["dispatches"]
            assert accepted.json() | {"responder_name": "陈网格员"} == shown
            assert ("accepted", shown["accepted_at"]) == (
                shown["state"],
                accepted.json()["accepted_at"],
            )

            resolved = await running.http.post(
                f"/api/alarms/{alarm.id}/resolve",
                json={"outcome": "false_alarm"},
                headers=await running.auth(),
            )
            assert 200 == resolved.status_code
            # Resolved, the alarm has no card: its responders leave the hello with it.
            assert [] == (await _hello(running))["dispatches"]


async def test_a_restarted_hub_says_in_hello_who_was_sent_to_its_active_alarms(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        config = config_with_a_grid_officer(tmp_path, f"{receiver.url}/duty")
        settings = make_settings(config=config, responder_key=KEY)
        async with run_hub(settings, ManualClock()) as running:
            await _breach(edge)
            alarm = running.hub.picture.active[(SITE, "z1")]
            sent = await running.http.post(
                f"/api/alarms/{alarm.id}/dispatches",
                json={"responder": "chen"},
                headers=await running.auth(),
            )
            assert 200 == sent.status_code, sent.text
            before = (await _hello(running))["dispatches"]
        async with run_hub(settings, ManualClock()) as running:
            after = (await _hello(running))["dispatches"]
    assert [("chen", 0, "notified", alarm.id)] == [
        (d["responder"], d["level"], d["state"], d["alarm_id"]) for d in after
    ]
    assert before == after


async def test_a_responder_renamed_by_an_admin_is_renamed_on_every_console_at_once(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    """A console connected when an admin renames a responder sent to an active alarm
    gets the new name at once, as a ``people`` message (7.43) and that responder's
    dispatch again; a later hello says it too. A change that renames nobody sends no
    ``people`` message."""
    config = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/duty")
    clock = ManualClock()
    async with run_hub(make_settings(config=config, responder_key=KEY), clock) as running:
        await _breach(edge)
        viewer = await running.token("viewer")
        async with running.socket(viewer) as ws, ws_inbox(ws) as console:
            await console.wait_for(lambda m: m["type"] == "hello")
            clock.advance(60)
            called = await console.wait_for(lambda m: m["type"] == "dispatch")
            assert "陈网格员" == called["data"]["responder_name"]

            same_name = {
                "name": "陈网格员",
                "language": "en",
                "channels": [{"kind": "webhook", "webhook": "duty"}],
            }
            changed = await running.http.put(
                "/api/responders/chen", json=same_name, headers=await running.auth("admin")
            )
            assert 200 == changed.status_code, changed.text
            renamed = {**same_name, "name": "陈建国"}
            changed = await running.http.put(
                "/api/responders/chen", json=renamed, headers=await running.auth("admin")
            )
            assert 200 == changed.status_code, changed.text
            named = await console.wait_for(lambda m: m["type"] == "people")
            again = await console.wait_for(
                lambda m: m["type"] == "dispatch" and m["seq"] > called["seq"]
            )
        assert "陈建国" == named["data"]["responder:chen"]
        assert "李值班员" == named["data"]["officer-li"]
        # The language change came first and renamed nobody: its people message would
        # have come before this one.
        assert [named["seq"]] == [m["seq"] for m in console.items if m["type"] == "people"]
        assert called["data"] | {"responder_name": "陈建国"} == again["data"]
        hello = await _hello(running)
        assert "陈建国" == hello["people"]["responder:chen"]
        assert ["陈建国"] == [d["responder_name"] for d in hello["dispatches"]]
