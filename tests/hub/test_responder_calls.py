"""An unacknowledged breach reaches the on-call grid officer's channel at the first
escalation: a real hub, a real broker, a real webhook receiver, a manual clock."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import aiomqtt
import pytest

from hub.clock import ManualClock
from riverguard.testing import wait_for
from riverguard.wire import topics
from tests.hub.conftest import (
    SITE,
    MakeSettings,
    event_payload,
    mqtt_inbox,
    run_hub,
    unique_seq,
    ws_inbox,
)
from tests.notify.receivers import HttpReceiver, http_receiver
from tests.notify.support import SECRET, config_with_a_grid_officer

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(both_stores: str | None) -> str | None:
    """The outbox is queued and taken on SQLite and on PostgreSQL."""
    return both_stores


async def _breach(edge: aiomqtt.Client) -> None:
    """A fence breach in z1 from the site's edge, once the hub has committed it."""
    payload = event_payload(unique_seq(), zone="z1")
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        await edge.publish(topics.events(SITE), json.dumps(payload).encode(), qos=1)
        await acks.wait_for(lambda m: payload["id"] in m[1]["ids"])


async def test_the_first_escalation_calls_the_grid_officer_on_call(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        config = config_with_a_grid_officer(tmp_path, f"{receiver.url}/duty")
        clock = ManualClock()
        settings = make_settings(config=config, responder_key="responder-key-0123456789")
        async with run_hub(settings, clock) as running:
            await _breach(edge)
            clock.advance(59)
            await running.hub.desk.tick()
            assert [] == receiver.received
            clock.advance(1)
            await wait_for(lambda: bool(receiver.received), what="the grid officer's call")
            alarm = running.hub.picture.active[(SITE, "z1")]

            async def recorded_as_sent() -> bool:
                rows = await running.hub.store.notifications.for_alarm(alarm.id)
                return ["sent"] == [row.state for row in rows]

            await wait_for(recorded_as_sent, what="the call recorded as sent")
            [row] = await running.hub.store.notifications.for_alarm(alarm.id)
    [request] = receiver.received
    timestamp = request.headers["x-riverguard-timestamp"]
    mac = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256)
    assert "sha256=" + mac.hexdigest() == request.headers["x-riverguard-signature"]
    body = json.loads(request.body)
    assert ("chen", "zh-CN") == (body["responder"], body["language"])
    assert (alarm.id, 1, "grid officer") == (
        body["alarm"]["id"],
        body["alarm"]["level"],
        body["alarm"]["level_name"],
    )
    assert "淡水大桥东岸" == body["alarm"]["site_name"]
    assert body["title"].startswith("【")
    assert body["links"]["respond"].startswith(f"{settings.base_url}/respond/d-")
    assert row.id == request.headers["x-riverguard-delivery"]


async def test_the_grid_officer_accepts_and_arrives_from_the_link_and_the_console_sees_it(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        config = config_with_a_grid_officer(tmp_path, f"{receiver.url}/duty")
        clock = ManualClock()
        settings = make_settings(config=config, responder_key="responder-key-0123456789")
        async with run_hub(settings, clock) as running:
            await _breach(edge)
            clock.advance(60)
            await wait_for(lambda: bool(receiver.received), what="the grid officer's call")
            link = json.loads(receiver.received[0].body)["links"]["respond"]
            token = link.rsplit("/", 1)[1]
            alarm = running.hub.picture.active[(SITE, "z1")]

            call = (await running.http.get(f"/api/respond/{token}")).json()
            assert ("notified", "陈网格员") == (
                call["dispatch"]["state"],
                call["responder"]["name"],
            )
            assert (alarm.id, ["fence.breach"]) == (call["alarm"]["id"], call["alarm"]["kinds"])
            assert "桥下亲水平台" == call["zone"]["name"]

            viewer = await running.token("viewer")
            async with running.socket(viewer) as ws, ws_inbox(ws) as console:
                await console.wait_for(lambda m: m["type"] == "hello")
                accepted = await running.http.post(f"/api/respond/{token}/accept")
                assert ("accepted", None) == (accepted.json()["state"], accepted.json()["note"])
                pushed = await console.wait_for(
                    lambda m: m["type"] == "dispatch" and m["data"]["state"] == "accepted"
                )
                assert ("chen", alarm.id) == (
                    pushed["data"]["responder"],
                    pushed["data"]["alarm_id"],
                )
                clock.advance(300)
                arrived = await running.http.post(f"/api/respond/{token}/arrive")
                assert "on_scene" == arrived.json()["state"]
                finished = await running.http.post(
                    f"/api/respond/{token}/finish", json={"note": "劝离一名垂钓者"}
                )
                assert ("finished", "劝离一名垂钓者") == (
                    finished.json()["state"],
                    finished.json()["note"],
                )
            again = await running.http.post(f"/api/respond/{token}/accept")
            assert (409, "invalid_transition") == (again.status_code, again.json()["error"])

            async def call_settled() -> bool:
                rows = await running.hub.store.notifications.for_alarm(alarm.id)
                return ["sent"] == [row.state for row in rows]

            await wait_for(call_settled, what="the call recorded as sent")
            officer = await running.auth()
            listed = await running.http.get(f"/api/alarms/{alarm.id}/dispatches", headers=officer)
            [dispatch] = listed.json()
            assert [{"channel": "webhook:duty", "level": 1, "state": "sent"}] == [
                {key: call[key] for key in ("channel", "level", "state")}
                for call in dispatch["calls"]
            ]
            assert ("finished", 1, "陈网格员") == (
                dispatch["state"],
                dispatch["level"],
                dispatch["responder_name"],
            )
            timeline = await running.http.get(f"/api/alarms/{alarm.id}/timeline", headers=officer)
            steps = [
                (entry["by"], entry["data"]["state"])
                for entry in timeline.json()["entries"]
                if entry["type"] == "dispatch"
            ]
            assert [
                ("system", "notified"),
                ("responder:chen", "accepted"),
                ("responder:chen", "on_scene"),
                ("responder:chen", "finished"),
            ] == steps


@pytest.mark.parametrize(
    "token",
    ["d-0123456789abcdef0123456789abcd.zzzzz.AAAAAAAAAAAAAAAAAAAAAA", "nonsense", "a" * 150],
)
async def test_a_forged_or_malformed_link_is_refused(
    make_settings: MakeSettings, token: str
) -> None:
    async with run_hub(make_settings(responder_key="responder-key-0123456789")) as running:
        read = await running.http.get(f"/api/respond/{token}")
        step = await running.http.post(f"/api/respond/{token}/accept")
    assert (403, "token_refused") == (read.status_code, read.json()["error"])
    assert (403, "token_refused") == (step.status_code, step.json()["error"])


def _two_levels(tmp_path: Path, receiver_url: str) -> Path:
    """The grid officer at level 1 (30 s to accept), the street's duty leader at 2."""
    path = config_with_a_grid_officer(tmp_path, f"{receiver_url}/grid")
    raw = json.loads(path.read_text(encoding="utf-8"))
    site = next(s for s in raw["sites"] if s["id"] == SITE)
    site["dispatch_accept_s"] = 30
    site["escalation"][1]["call"] = ["wu"]
    raw["notify"]["webhooks"].append(
        {"id": "street", "url": f"{receiver_url}/street", "secret": SECRET}
    )
    raw["responders"].append(
        {"id": "wu", "name": "吴街道值班", "channels": [{"kind": "webhook", "webhook": "street"}]}
    )
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("silence", ["no answer", "declined"])
async def test_a_grid_officer_who_does_not_accept_has_the_next_level_called_at_once(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client, silence: str
) -> None:
    async with http_receiver() as receiver:
        clock = ManualClock()
        settings = make_settings(
            config=_two_levels(tmp_path, receiver.url), responder_key="responder-key-0123456789"
        )
        async with run_hub(settings, clock) as running:
            await _breach(edge)
            clock.advance(60)
            await wait_for(lambda: len(receiver.received) == 1, what="the grid officer's call")
            if silence == "declined":
                token = json.loads(receiver.received[0].body)["links"]["respond"].rsplit("/", 1)[1]
                declined = await running.http.post(f"/api/respond/{token}/decline")
                assert "declined" == declined.json()["state"]
            else:
                clock.advance(30)
            # Level 2's own time (120 s after level 1) has not come: the call is early.
            await wait_for(lambda: len(receiver.received) == 2, what="the street's call")
            alarm = running.hub.picture.active[(SITE, "z1")]
            assert (2, "dispatch_exhausted", None) == (
                alarm.escalation_level,
                alarm.escalation_reason,
                alarm.escalated_by,
            )
            officer = await running.auth()
            listed = await running.http.get(f"/api/alarms/{alarm.id}/dispatches", headers=officer)
            states = {d["responder"]: d["state"] for d in listed.json()}
            expected = "no_answer" if silence == "no answer" else "declined"
            assert {"chen": expected, "wu": "notified"} == states
    assert ["/grid", "/street"] == [request.target for request in receiver.received]


async def test_an_officer_calls_the_next_level_now(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        settings = make_settings(
            config=_two_levels(tmp_path, receiver.url), responder_key="responder-key-0123456789"
        )
        async with run_hub(settings, ManualClock()) as running:
            await _breach(edge)
            alarm = running.hub.picture.active[(SITE, "z1")]
            viewer = await running.http.post(
                f"/api/alarms/{alarm.id}/next-level", headers=await running.auth("viewer")
            )
            assert 403 == viewer.status_code
            called = await running.http.post(
                f"/api/alarms/{alarm.id}/next-level", headers=await running.auth()
            )
            assert 1 == called.json()["escalation_level"]
            await wait_for(lambda: len(receiver.received) == 1, what="the grid officer's call")
    assert ["/grid"] == [request.target for request in receiver.received]


async def test_an_officer_calls_a_responder_off_and_their_link_moves_nothing_after(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        config = config_with_a_grid_officer(tmp_path, f"{receiver.url}/duty")
        clock = ManualClock()
        settings = make_settings(config=config, responder_key="responder-key-0123456789")
        async with run_hub(settings, clock) as running:
            await _breach(edge)
            clock.advance(60)
            await wait_for(lambda: bool(receiver.received), what="the grid officer's call")
            token = json.loads(receiver.received[0].body)["links"]["respond"].rsplit("/", 1)[1]
            alarm = running.hub.picture.active[(SITE, "z1")]
            [dispatch] = await running.hub.dispatcher.of_alarm(alarm.id)
            viewer = await running.http.post(
                f"/api/dispatches/{dispatch['id']}/cancel", headers=await running.auth("viewer")
            )
            assert 403 == viewer.status_code
            cancelled = await running.http.post(
                f"/api/dispatches/{dispatch['id']}/cancel",
                headers=await running.auth(),
                json={"note": "patrol already there"},
            )
            assert ("cancelled", "patrol already there", None) == (
                cancelled.json()["state"],
                cancelled.json()["note"],
                cancelled.json()["note_code"],
            )
            # Their call was sent: one stand-down follows on its channel, the alarm open.
            await wait_for(lambda: len(receiver.received) == 2, what="the stand-down")
            stand_down = json.loads(receiver.received[1].body)
            assert ("responder.stand_down", None) == (stand_down["type"], stand_down["resolved_at"])
            assert "值班员已取消出警" in stand_down["title"]
            late = await running.http.post(f"/api/respond/{token}/accept")
            assert (409, "invalid_transition") == (late.status_code, late.json()["error"])
            shown = (await running.http.get(f"/api/respond/{token}")).json()
            assert "cancelled" == shown["dispatch"]["state"]
            # Called off by the officer, who took over: the next level is not called.
            assert 1 == running.hub.picture.active[(SITE, "z1")].escalation_level
            missing = await running.http.post(
                "/api/dispatches/d-nonexistent/cancel", headers=await running.auth()
            )
            assert 404 == missing.status_code


async def test_an_officer_sends_a_responder_by_hand_once(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        settings = make_settings(
            config=_two_levels(tmp_path, receiver.url), responder_key="responder-key-0123456789"
        )
        async with run_hub(settings, ManualClock()) as running:
            await _breach(edge)
            alarm = running.hub.picture.active[(SITE, "z1")]
            officer = await running.auth()
            path = f"/api/alarms/{alarm.id}/dispatches"
            viewer = await running.http.post(
                path, json={"responder": "wu"}, headers=await running.auth("viewer")
            )
            assert 403 == viewer.status_code
            sent = await running.http.post(path, json={"responder": "wu"}, headers=officer)
            assert ("wu", 0, "notified") == (
                sent.json()["responder"],
                sent.json()["level"],
                sent.json()["state"],
            )
            await wait_for(lambda: len(receiver.received) == 1, what="the street's call")
            again = await running.http.post(path, json={"responder": "wu"}, headers=officer)
            assert (409, "invalid_transition") == (again.status_code, again.json()["error"])
            nobody = await running.http.post(path, json={"responder": "ghost"}, headers=officer)
            assert 404 == nobody.status_code
            # The alarm stays where it was on the grid path: nobody climbed it.
            assert 0 == running.hub.picture.active[(SITE, "z1")].escalation_level
            listing = (await running.http.get("/api/responders", headers=officer)).json()
    assert ["/street"] == [request.target for request in receiver.received]
    assert {"chen", "wu"} == {r["id"] for r in listing["responders"]}
    assert ["webhook:street"] == next(r for r in listing["responders"] if r["id"] == "wu")[
        "channels"
    ]
    assert {"1": ["chen"], "2": ["wu"], "3": []} == listing["on_call"][SITE]
    assert "secret" not in json.dumps(listing)


async def test_an_escalations_call_and_a_call_by_hand_are_in_the_timeline_and_its_export(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        clock = ManualClock()
        settings = make_settings(
            config=_two_levels(tmp_path, receiver.url), responder_key="responder-key-0123456789"
        )
        async with run_hub(settings, clock) as running:
            await _breach(edge)
            clock.advance(60)
            await wait_for(lambda: len(receiver.received) == 1, what="the grid officer's call")
            alarm = running.hub.picture.active[(SITE, "z1")]
            officer = await running.auth()
            sent = await running.http.post(
                f"/api/alarms/{alarm.id}/dispatches", json={"responder": "wu"}, headers=officer
            )
            assert 200 == sent.status_code
            await wait_for(lambda: len(receiver.received) == 2, what="the street's call")
            timeline = await running.http.get(f"/api/alarms/{alarm.id}/timeline", headers=officer)

            async def export(lang: str) -> str:
                path = f"/api/alarms/{alarm.id}/timeline?format=html&lang={lang}"
                made = await running.http.post("/api/links", headers=officer, json={"path": path})
                return (await running.http.get(str(made.json()["url"]))).text

            zh, en = await export("zh"), await export("en")
    calls = [
        (entry["by"], entry["data"]["responder"], entry["data"]["level"], entry["data"]["channels"])
        for entry in timeline.json()["entries"]
        if entry["type"] == "dispatch" and entry["data"]["state"] == "notified"
    ]
    assert [
        ("system", "chen", 1, ["webhook:duty"]),
        ("officer-li", "wu", 0, ["webhook:street"]),
    ] == calls
    # The channel's kind in the page's language, its configured name as written.
    assert "陈网格员: 已通知 · 级别 1 · 渠道: 接口推送 duty" in zh
    assert "吴街道值班: 已通知 · 值班员派遣 · 渠道: 接口推送 street" in zh
    assert "webhook" not in zh
    assert "陈网格员: called · level 1 · channels: webhook duty" in en
    assert "吴街道值班: called · sent by hand · channels: webhook street" in en


def _calls_audited(entries: list[dict[str, object]]) -> list[tuple[object, ...]]:
    """The audit log's calls to responders (dispatches made, state notified), oldest first."""
    return [
        (
            entry["username"],
            after["responder"],
            after["responder_name"],
            after["level"],
            after["channels"],
            entry["detail"],
        )
        for entry in reversed(entries)
        if entry["action"] == "dispatch"
        and isinstance(after := entry["after"], dict)
        and after["state"] == "notified"
    ]


async def test_each_call_to_a_responder_is_audited_with_its_escalation_or_its_officer(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        clock = ManualClock()
        settings = make_settings(
            config=_two_levels(tmp_path, receiver.url), responder_key="responder-key-0123456789"
        )
        async with run_hub(settings, clock) as running:
            await _breach(edge)
            alarm = running.hub.picture.active[(SITE, "z1")]
            # The timer climbs to level 1 (chen), the officer to level 2 (wu).
            clock.advance(60)
            await wait_for(lambda: len(receiver.received) == 1, what="the grid officer's call")
            officer = await running.auth()
            climbed = await running.http.post(f"/api/alarms/{alarm.id}/next-level", headers=officer)
            assert 2 == climbed.json()["escalation_level"]
            await wait_for(lambda: len(receiver.received) == 2, what="the street's call")
            supervisor = await running.auth("supervisor-wang")
            log = await running.http.get(f"/api/audit?alarm={alarm.id}", headers=supervisor)
            assert 200 == log.status_code, log.text
            only = await running.http.get(
                f"/api/audit?alarm={alarm.id}&action=dispatch", headers=supervisor
            )
            assert 200 == only.status_code, only.text
    entries = log.json()
    assert [
        ("system", "chen", "陈网格员", 1, ["webhook:duty"], "called at level 1"),
        ("officer-li", "wu", "吴街道值班", 2, ["webhook:street"], "called at level 2"),
    ] == _calls_audited(entries)
    assert _calls_audited(entries) == _calls_audited(only.json())
    # Each call is written in its escalation's transaction, right after it.
    oldest_first = [(e["action"], e["username"], e["ts"]) for e in reversed(entries)]
    escalations = [i for i, e in enumerate(oldest_first) if e[0] == "escalate"]
    assert [("dispatch", "system"), ("dispatch", "officer-li")] == [
        oldest_first[i + 1][:2] for i in escalations
    ]
    assert [oldest_first[i][2] for i in escalations] == [
        oldest_first[i + 1][2] for i in escalations
    ]


async def test_a_call_by_hand_is_audited_with_its_channels(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        settings = make_settings(
            config=_two_levels(tmp_path, receiver.url), responder_key="responder-key-0123456789"
        )
        async with run_hub(settings, ManualClock()) as running:
            await _breach(edge)
            alarm = running.hub.picture.active[(SITE, "z1")]
            sent = await running.http.post(
                f"/api/alarms/{alarm.id}/dispatches",
                json={"responder": "wu"},
                headers=await running.auth(),
            )
            assert 200 == sent.status_code
            log = await running.http.get(
                f"/api/audit?alarm={alarm.id}&action=dispatch",
                headers=await running.auth("supervisor-wang"),
            )
            assert 200 == log.status_code, log.text
    assert [("officer-li", "wu", "吴街道值班", 0, ["webhook:street"], "sent by an officer")] == (
        _calls_audited(log.json())
    )


@pytest.mark.parametrize(
    ("ending", "reason"),
    [
        ("resolve", "the alarm was resolved before this was sent"),
        ("call_off", "the responder was called off before this was sent"),
    ],
)
async def test_a_call_waiting_for_its_retry_is_withdrawn_by_a_resolve_or_a_call_off(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client, ending: str, reason: str
) -> None:
    """The receiver refuses the first attempt (503): the call waits for its retry when
    the officer resolves the alarm, or calls the grid officer off; it is never tried
    again, and no stand-down goes to someone never reached."""
    async with http_receiver(HttpReceiver(status=503)) as receiver:
        config = config_with_a_grid_officer(tmp_path, f"{receiver.url}/duty")
        clock = ManualClock()
        settings = make_settings(config=config, responder_key="responder-key-0123456789")
        async with run_hub(settings, clock) as running:
            await _breach(edge)
            clock.advance(60)
            alarm = running.hub.picture.active[(SITE, "z1")]

            async def waiting_for_its_retry() -> bool:
                rows = await running.hub.store.notifications.for_alarm(alarm.id)
                return [("queued", 1)] == [(row.state, row.attempts) for row in rows]

            await wait_for(waiting_for_its_retry, what="the refused call queued again")
            officer = await running.auth()
            if ending == "resolve":
                ended = await running.http.post(
                    f"/api/alarms/{alarm.id}/resolve", headers=officer, json={"outcome": "other"}
                )
            else:
                [dispatch] = await running.hub.dispatcher.of_alarm(alarm.id)
                ended = await running.http.post(
                    f"/api/dispatches/{dispatch['id']}/cancel", headers=officer
                )
            assert 200 == ended.status_code, ended.text
            clock.advance(3600)
            officer = await running.auth()  # the login of an hour ago has expired
            listed = await running.http.get(f"/api/alarms/{alarm.id}/dispatches", headers=officer)
            [called_off] = listed.json()
            assert [("call", "webhook:duty", "withdrawn", 1, reason)] == [
                (call["purpose"], call["channel"], call["state"], call["attempts"], call["reason"])
                for call in called_off["calls"]
            ]
            # The outbox looked again after the hour: nothing more went out.
            await running.hub.outbox.flush()
    assert 1 == len(receiver.received)


async def test_a_resolve_calls_off_the_responders_not_yet_on_scene_and_leaves_the_one_there(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    """The grid officer is on scene and the street's duty leader, sent by hand, has
    accepted when the officer resolves the alarm: the duty leader's dispatch is
    cancelled by the system (audited, in the timeline, pushed), the grid officer's
    is left for them to finish. A second resolve is refused and changes nothing."""
    async with http_receiver() as receiver:
        settings = make_settings(
            config=_two_levels(tmp_path, receiver.url), responder_key="responder-key-0123456789"
        )
        clock = ManualClock()
        async with run_hub(settings, clock) as running:
            await _breach(edge)
            alarm = running.hub.picture.active[(SITE, "z1")]
            clock.advance(60)
            await wait_for(lambda: len(receiver.received) == 1, what="the grid officer's call")
            officer = await running.auth()
            sent = await running.http.post(
                f"/api/alarms/{alarm.id}/dispatches", headers=officer, json={"responder": "wu"}
            )
            assert 200 == sent.status_code, sent.text
            await wait_for(lambda: len(receiver.received) == 2, what="the duty leader's call")
            tokens = {
                json.loads(r.body)["responder"]: json.loads(r.body)["links"]["respond"].rsplit(
                    "/", 1
                )[1]
                for r in receiver.received
            }
            arrived = await running.http.post(f"/api/respond/{tokens['chen']}/arrive")
            assert "on_scene" == arrived.json()["state"]
            accepted = await running.http.post(f"/api/respond/{tokens['wu']}/accept")
            assert "accepted" == accepted.json()["state"]

            viewer = await running.token("viewer")
            async with running.socket(viewer) as ws, ws_inbox(ws) as console:
                await console.wait_for(lambda m: m["type"] == "hello")
                resolved = await running.http.post(
                    f"/api/alarms/{alarm.id}/resolve", headers=officer, json={"outcome": "other"}
                )
                assert 200 == resolved.status_code, resolved.text
                pushed = await console.wait_for(
                    lambda m: m["type"] == "dispatch" and m["data"]["state"] == "cancelled"
                )
            again = await running.http.post(
                f"/api/alarms/{alarm.id}/resolve", headers=officer, json={"outcome": "other"}
            )
            assert 409 == again.status_code
            assert ("wu", "吴街道值班", "alarm resolved", "alarm_resolved") == (
                pushed["data"]["responder"],
                pushed["data"]["responder_name"],
                pushed["data"]["note"],
                pushed["data"]["note_code"],
            )
            late = await running.http.post(f"/api/respond/{tokens['wu']}/depart")
            assert (409, "invalid_transition") == (late.status_code, late.json()["error"])
            listed = await running.http.get(f"/api/alarms/{alarm.id}/dispatches", headers=officer)
            assert {"chen": "on_scene", "wu": "cancelled"} == {
                d["responder"]: d["state"] for d in listed.json()
            }
            finished = await running.http.post(f"/api/respond/{tokens['chen']}/finish")
            assert "finished" == finished.json()["state"]
            # The duty leader, called off, is stood down; the grid officer on scene is not.
            await wait_for(lambda: len(receiver.received) == 3, what="the stand-down")
            assert ("/street", "responder.stand_down") == (
                receiver.received[2].target,
                json.loads(receiver.received[2].body)["type"],
            )

            audit = await running.http.get(
                "/api/audit",
                headers=await running.auth("admin"),
                params={"action": "dispatch", "alarm": alarm.id},
            )
            cancels = [
                (e["username"], e["target"], e["before"]["state"], e["after"]["state"], e["detail"])
                for e in audit.json()
                if e["after"]["state"] == "cancelled"
            ]
            assert [("system", "wu", "accepted", "cancelled", "alarm resolved")] == cancels
            # Its stand-down's channels, in the entry of the cancel that queued it.
            assert [["webhook:street"]] == [
                e["after"]["stand_down"] for e in audit.json() if e["detail"] == "alarm resolved"
            ]
            timeline = await running.http.get(f"/api/alarms/{alarm.id}/timeline", headers=officer)
            steps = [
                (entry["by"], entry["data"]["responder"], entry["data"]["state"])
                for entry in timeline.json()["entries"]
                if entry["type"] == "dispatch" and entry["data"]["state"] != "notified"
            ]
            assert [
                ("responder:chen", "chen", "on_scene"),
                ("responder:wu", "wu", "accepted"),
                ("system", "wu", "cancelled"),
                ("responder:chen", "chen", "finished"),
            ] == steps
            await running.hub.outbox.flush()
    assert 3 == len(receiver.received)


@pytest.mark.parametrize("language", ["zh-CN", "en"])
async def test_a_responder_sent_a_call_gets_one_stand_down_and_one_never_reached_gets_none(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client, language: str
) -> None:
    """The grid officer's call went out; the street's duty leader, sent by hand, is
    behind a receiver that refuses (503), so nothing reached them. The resolve stands
    the grid officer down once, signed, in their language, and the duty leader not at
    all: their call is withdrawn."""
    async with (
        http_receiver() as grid,
        http_receiver(HttpReceiver(status=503)) as street,
    ):
        path = _two_levels(tmp_path, grid.url)
        raw = json.loads(path.read_text(encoding="utf-8"))
        next(r for r in raw["responders"] if r["id"] == "chen")["language"] = language
        next(w for w in raw["notify"]["webhooks"] if w["id"] == "street")["url"] = street.url
        path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
        clock = ManualClock()
        settings = make_settings(config=path, responder_key="responder-key-0123456789")
        async with run_hub(settings, clock) as running:
            await _breach(edge)
            alarm = running.hub.picture.active[(SITE, "z1")]
            notifications = running.hub.store.notifications
            clock.advance(60)
            officer = await running.auth()
            sent = await running.http.post(
                f"/api/alarms/{alarm.id}/dispatches", headers=officer, json={"responder": "wu"}
            )
            assert 200 == sent.status_code, sent.text

            async def calls_settled() -> bool:
                rows = await notifications.for_alarm(alarm.id)
                return {("chen", "sent", 1), ("wu", "queued", 1)} == {
                    (row.call.responder_id, row.state, row.attempts) for row in rows
                }

            await wait_for(calls_settled, what="chen's call sent, wu's refused and queued")
            resolved = await running.http.post(
                f"/api/alarms/{alarm.id}/resolve", headers=officer, json={"outcome": "other"}
            )
            assert 200 == resolved.status_code, resolved.text
            await wait_for(lambda: len(grid.received) == 2, what="chen's stand-down")

            async def stand_down_sent() -> bool:
                rows = await notifications.for_alarm(alarm.id)
                return "sent" in {row.state for row in rows if row.call.purpose == "stand_down"}

            await wait_for(stand_down_sent, what="the stand-down recorded as sent")
            # An hour later, after more passes of the outbox: nothing more to anyone.
            clock.advance(3600)
            await running.hub.outbox.flush()
            rows = await notifications.for_alarm(alarm.id)
            [stand_down] = [row for row in rows if row.call.purpose == "stand_down"]
            officer = await running.auth()
            listed = await running.http.get(f"/api/alarms/{alarm.id}/dispatches", headers=officer)
            calls = {
                d["responder"]: [(c["purpose"], c["state"]) for c in d["calls"]]
                for d in listed.json()
            }
    assert {
        "chen": [("call", "sent"), ("stand_down", "sent")],
        "wu": [("call", "withdrawn")],
    } == calls
    assert ("chen", 0) == (stand_down.call.responder_id, stand_down.call.channel_index)
    assert 1 == len(street.received)
    call, told = grid.received
    assert "responder.call" == json.loads(call.body)["type"]
    timestamp = told.headers["x-riverguard-timestamp"]
    mac = hmac.new(SECRET.encode(), timestamp.encode() + b"." + told.body, hashlib.sha256)
    assert "sha256=" + mac.hexdigest() == told.headers["x-riverguard-signature"]
    assert stand_down.id == told.headers["x-riverguard-delivery"]
    body = json.loads(told.body)
    assert ("responder.stand_down", "chen", language, alarm.id) == (
        body["type"],
        body["responder"],
        body["language"],
        body["alarm"]["id"],
    )
    # Every field of a call, so a receiver that reads each body as one still can.
    assert set(json.loads(call.body)) <= set(body)
    assert body["links"]["respond"].startswith("http")
    assert body["resolved_at"] is not None
    if language == "zh-CN":
        assert body["title"].startswith("【解除】淡水大桥东岸")
        assert "无需前往" in body["text"]
    else:
        assert body["title"].startswith("[STAND DOWN] Danshui Bridge, east bank")
        assert "need not go" in body["text"]
