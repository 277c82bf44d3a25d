"""Responders and call lists changed through the admin API: validated as the
configuration file is, audited without secrets, used by the next escalation and
kept across a restart. A real hub, a real broker, a real webhook receiver."""

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
)
from tests.notify.receivers import http_receiver
from tests.notify.support import config_with_a_grid_officer

pytestmark = pytest.mark.integration

# A second grid officer, on the deployment's signed webhook.
LI: dict[str, Any] = {
    "name": "李网格员",
    "phone": "+8613800000002",
    "language": "en",
    "channels": [{"kind": "webhook", "webhook": "duty"}],
}
CALL_LIST = f"/api/sites/{SITE}/escalation/1/call"


@pytest.fixture
def database_url(both_stores: str | None) -> str | None:
    """The changes are kept on SQLite and on PostgreSQL."""
    return both_stores


async def _put(running: RunningHub, path: str, body: Any, user: str = "admin") -> Any:
    return await running.http.put(path, json=body, headers=await running.auth(user))


async def test_an_admin_replaces_a_responder_and_the_audit_keeps_before_and_after_without_urls(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    config = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/duty")
    async with run_hub(make_settings(config=config)) as running:
        body = {
            "name": "陈网格员",
            "email": "chen@example.cn",
            "language": "en",
            "channels": [
                {"kind": "webhook", "webhook": "duty"},
                {"kind": "apprise", "url": "ntfy://ntfy.example.cn/chen-secret-topic"},
            ],
        }
        answer = await _put(running, "/api/responders/chen", body)
        assert 200 == answer.status_code, answer.text
        assert ["webhook:duty", "ntfy"] == answer.json()["channels"]
        listed = await running.http.get("/api/responders", headers=await running.auth())
        [chen] = listed.json()["responders"]
        assert ("chen", "en") == (chen["id"], chen["language"])
        [entry] = await running.hub.store.audit.find(action="responder")
    assert ("admin", "chen") == (entry.username, entry.target)
    assert entry.before is not None
    assert entry.after is not None
    assert ("zh-CN", None) == (entry.before["language"], entry.before["email"])
    assert ("en", "chen@example.cn") == (entry.after["language"], entry.after["email"])
    assert "chen-secret-topic" not in json.dumps([entry.before, entry.after])


async def test_officers_and_viewers_may_not_change_responders_or_call_lists(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    config = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/duty")
    async with run_hub(make_settings(config=config)) as running:
        for user in ("officer-li", "supervisor-wang", "viewer"):
            refused = await _put(running, "/api/responders/li", LI, user)
            assert 403 == refused.status_code
            refused = await _put(running, CALL_LIST, {"call": ["chen"]}, user)
            assert 403 == refused.status_code
        assert 401 == (await running.http.put("/api/responders/li", json=LI)).status_code
        assert "li" not in running.hub.config.responder_by_id
        assert [] == await running.hub.store.audit.find(action="responder")
        assert [] == await running.hub.store.audit.find(action="call_list")


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        # An email channel needs the responder's address (the file's own rule).
        ("/api/responders/li", LI | {"channels": [{"kind": "email"}]}, "no email"),
        (
            "/api/responders/li",
            LI | {"channels": [{"kind": "webhook", "webhook": "nowhere"}]},
            "unknown webhook nowhere",
        ),
        ("/api/responders/li", LI | {"phone": "call me"}, "phone"),
        ("/api/responders/li", LI | {"channels": []}, "channels"),
        ("/api/responders/li", LI | {"role": "admin"}, "role"),
        ("/api/responders/li", LI | {"channels": [{"kind": "apprise", "url": "x"}]}, "Apprise"),
        (CALL_LIST, {"call": ["nobody"]}, "unknown responders or rotas"),
        (CALL_LIST, {"call": ["chen", "chen"]}, "chen"),
    ],
)
async def test_input_the_configuration_would_refuse_is_refused_with_its_reason(
    tmp_path: Path, make_settings: MakeSettings, path: str, body: Any, reason: str
) -> None:
    config = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/duty")
    async with run_hub(make_settings(config=config)) as running:
        refused = await _put(running, path, body)
        assert 422 == refused.status_code, refused.text
        assert reason in refused.json()["detail"]
        assert ["chen"] == running.hub.config.site(SITE).escalation[0].call
        assert "li" not in running.hub.config.responder_by_id
        assert [] == await running.hub.store.audit.find(action="responder")
        assert [] == await running.hub.store.audit.find(action="call_list")


async def test_an_unknown_site_or_level_is_not_found(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    config = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/duty")
    async with run_hub(make_settings(config=config)) as running:
        for path in (
            "/api/sites/nowhere/escalation/1/call",
            f"/api/sites/{SITE}/escalation/9/call",
        ):
            missing = await _put(running, path, {"call": ["chen"]})
            assert 404 == missing.status_code, missing.text


async def _breach_escalates(running: RunningHub, clock: ManualClock, edge: aiomqtt.Client) -> None:
    payload = event_payload(unique_seq(), zone="z1")
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        await edge.publish(topics.events(SITE), json.dumps(payload).encode(), qos=1)
        await acks.wait_for(lambda m: payload["id"] in m[1]["ids"])
    clock.advance(60)
    await running.hub.desk.tick()


async def test_the_next_escalation_calls_the_responder_the_admin_put_on_the_call_list(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        config = config_with_a_grid_officer(tmp_path, f"{receiver.url}/duty")
        clock = ManualClock()
        settings = make_settings(config=config, responder_key="responder-key-0123456789")
        async with run_hub(settings, clock) as running:
            assert 200 == (await _put(running, "/api/responders/li", LI)).status_code
            changed = await _put(running, CALL_LIST, {"call": ["li"]})
            assert 200 == changed.status_code, changed.text
            assert ["li"] == changed.json()["call"]
            await _breach_escalates(running, clock, edge)
            await wait_for(lambda: bool(receiver.received), what="the new grid officer's call")
            [entry] = await running.hub.store.audit.find(action="call_list")
    [request] = receiver.received
    message = json.loads(request.body)
    assert ("li", "en") == (message["responder"], message["language"])
    assert ("admin", f"{SITE}/1") == (entry.username, entry.target)
    assert {"site": SITE, "level": 1, "call": ["chen"]} == entry.before
    assert {"site": SITE, "level": 1, "call": ["li"]} == entry.after


async def test_changes_are_kept_across_a_restart_over_the_file(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    config = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/duty")
    async with run_hub(make_settings(config=config)) as running:
        assert 200 == (await _put(running, "/api/responders/li", LI)).status_code
        assert 200 == (await _put(running, CALL_LIST, {"call": ["li", "chen"]})).status_code
    async with run_hub(make_settings(config=config)) as running:
        assert ["li", "chen"] == running.hub.config.site(SITE).escalation[0].call
        listed = (await running.http.get("/api/responders", headers=await running.auth())).json()
    assert {"chen", "li"} == {r["id"] for r in listed["responders"]}
    assert ["li", "chen"] == listed["on_call"][SITE]["1"]


async def _delete(running: RunningHub, responder: str, user: str = "admin") -> Any:
    return await running.http.delete(
        f"/api/responders/{responder}", headers=await running.auth(user)
    )


async def test_an_admin_deletes_a_responder_audited_and_gone_after_a_restart(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    config = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/duty")
    async with run_hub(make_settings(config=config)) as running:
        assert 200 == (await _put(running, "/api/responders/li", LI)).status_code
        for user in ("officer-li", "supervisor-wang", "viewer"):
            assert 403 == (await _delete(running, "li", user)).status_code
        assert 401 == (await running.http.delete("/api/responders/li")).status_code
        deleted = await _delete(running, "li")
        assert (204, b"") == (deleted.status_code, deleted.content)
        assert 404 == (await _delete(running, "li")).status_code
        assert "li" not in running.hub.config.responder_by_id
        # The file's own responder, once no call list names them.
        assert 200 == (await _put(running, CALL_LIST, {"call": []})).status_code
        assert 204 == (await _delete(running, "chen")).status_code
        entries = await running.hub.store.audit.find(action="responder", oldest_first=True)
    assert [("li", "admin"), ("li", "admin"), ("chen", "admin")] == [
        (entry.target, entry.username) for entry in entries
    ]
    put, removed, chen = entries
    assert (None, put.after) == (put.before, removed.before)
    assert (None, "陈网格员", None) == (removed.after, chen.before["name"], chen.after)  # type: ignore[index]
    async with run_hub(make_settings(config=config)) as running:
        listed = (await running.http.get("/api/responders", headers=await running.auth())).json()
    assert [] == listed["responders"]
    assert [] == listed["on_call"][SITE]["1"]


def _with_a_rota(tmp_path: Path) -> Path:
    """chen on the file's call list, li in a rota (called by nobody)."""
    path = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/duty")
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["responders"].append({"id": "li", **LI})
    shift = {"responder": "li", "days": ["mon"], "start": "08:00", "end": "20:00"}
    raw["rotas"] = [{"id": "grid07-team", "shifts": [shift]}]
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("responder", "named"), [("chen", f"{SITE} level 1"), ("li", "rota grid07-team")]
)
async def test_a_responder_named_by_a_call_list_or_a_rota_is_not_deleted(
    tmp_path: Path, make_settings: MakeSettings, responder: str, named: str
) -> None:
    async with run_hub(make_settings(config=_with_a_rota(tmp_path))) as running:
        refused = await _delete(running, responder)
        assert 409 == refused.status_code, refused.text
        assert "responder_in_use" == refused.json()["error"]
        assert named in refused.json()["detail"]
        assert responder in running.hub.config.responder_by_id
        assert [] == await running.hub.store.audit.find(action="responder")


async def test_a_responder_sent_to_an_active_alarm_is_deleted_only_once_called_off(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        config = config_with_a_grid_officer(tmp_path, f"{receiver.url}/duty")
        clock = ManualClock()
        settings = make_settings(config=config, responder_key="responder-key-0123456789")
        async with run_hub(settings, clock) as running:
            await _breach_escalates(running, clock, edge)
            assert 200 == (await _put(running, CALL_LIST, {"call": []})).status_code
            refused = await _delete(running, "chen")
            assert 409 == refused.status_code, refused.text
            assert "responder_dispatched" == refused.json()["error"]
            alarm = running.hub.picture.active[(SITE, "z1")]
            assert alarm.id in refused.json()["detail"]
            [dispatch] = await running.hub.dispatcher.of_alarm(alarm.id)
            cancelled = await running.http.post(
                f"/api/dispatches/{dispatch['id']}/cancel", headers=await running.auth()
            )
            assert 200 == cancelled.status_code
            assert 204 == (await _delete(running, "chen")).status_code
            assert "chen" not in running.hub.config.responder_by_id
