"""Responders and call lists changed through the admin API: validated as the
configuration file is, audited without secrets, used by the next escalation and
kept across a restart. A real hub, a real broker, a real webhook receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import pytest

from hub.clock import ManualClock
from riverguard.rotas import WEEKDAYS
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


ROTA = "/api/rotas/grid07-team"
# Any instant serves where no escalation reads the rota.
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def _two_hours_from(responder: str, at: datetime) -> dict[str, Any]:
    """A shift of ``responder`` covering ``at`` read as wall-clock time, and its next hour."""
    return {
        "responder": responder,
        "days": [WEEKDAYS[at.weekday()]],
        "start": f"{at.hour:02d}:00",
        "end": f"{(at.hour + 2) % 24:02d}:00",
    }


async def test_the_next_escalation_calls_who_of_the_admins_rota_is_on_duty_in_the_sites_zone(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    async with http_receiver() as receiver:
        config = config_with_a_grid_officer(tmp_path, f"{receiver.url}/duty")
        clock = ManualClock()
        settings = make_settings(config=config, responder_key="responder-key-0123456789")
        async with run_hub(settings, clock) as running:
            site_zone = ZoneInfo(running.hub.config.site(SITE).timezone)
            # li on duty by the site's clock, chen by UTC's (eight hours apart, no overlap).
            shifts = [
                _two_hours_from("li", clock.now().astimezone(site_zone)),
                _two_hours_from("chen", clock.now().astimezone(UTC)),
            ]
            assert 200 == (await _put(running, "/api/responders/li", LI)).status_code
            added = await _put(running, ROTA, {"name": "网格七组", "shifts": shifts})
            assert 200 == added.status_code, added.text
            assert {"id": "grid07-team", "name": "网格七组", "shifts": shifts} == added.json()
            assert 200 == (await _put(running, CALL_LIST, {"call": ["grid07-team"]})).status_code
            await _breach_escalates(running, clock, edge)
            await wait_for(lambda: bool(receiver.received), what="the rota's call")
    [request] = receiver.received
    assert "li" == json.loads(request.body)["responder"]


async def test_rota_changes_are_audited_listed_and_found_by_their_action(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    config = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/duty")
    day = {"responder": "chen", "days": ["mon", "tue"], "start": "08:00", "end": "20:00"}
    night = {"responder": "chen", "days": ["mon"], "start": "20:00", "end": "08:00"}
    async with run_hub(make_settings(config=config)) as running:
        assert 200 == (await _put(running, ROTA, {"shifts": [day]})).status_code
        replaced = await _put(running, ROTA, {"name": "网格七组", "shifts": [day, night]})
        assert 200 == replaced.status_code, replaced.text
        listed = await running.http.get("/api/rotas", headers=await running.auth("viewer"))
        found = await running.http.get(
            "/api/audit?action=rota", headers=await running.auth("supervisor-wang")
        )
    assert 200 == listed.status_code
    assert [{"id": "grid07-team", "name": "网格七组", "shifts": [day, night]}] == listed.json()[
        "rotas"
    ]
    assert 200 == found.status_code, found.text
    newest, first = found.json()
    assert ("rota", "admin", "grid07-team") == (
        first["action"],
        first["username"],
        first["target"],
    )
    assert (None, {"id": "grid07-team", "name": "", "shifts": [day]}) == (
        first["before"],
        first["after"],
    )
    assert (first["after"], listed.json()["rotas"][0]) == (newest["before"], newest["after"])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            {
                "shifts": [
                    {"responder": "chen", "days": ["mon"], "start": "08:00", "end": "20:00"},
                    {"responder": "chen", "days": ["mon"], "start": "19:00", "end": "23:00"},
                ]
            },
            "overlap on mon at 19:00",
        ),
        (
            {
                "shifts": [
                    {"responder": "nobody", "days": ["mon"], "start": "08:00", "end": "20:00"}
                ]
            },
            "unknown responder nobody",
        ),
        ({"shifts": []}, "shifts"),
        ({"shifts": [{"responder": "chen", "days": [], "start": "08:00", "end": "20:00"}]}, "days"),
        (
            {"shifts": [{"responder": "chen", "days": ["mon"], "start": "8h", "end": "20:00"}]},
            "start",
        ),
    ],
)
async def test_a_rota_the_configuration_would_refuse_is_refused_with_its_reason(
    tmp_path: Path, make_settings: MakeSettings, body: Any, reason: str
) -> None:
    config = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/duty")
    async with run_hub(make_settings(config=config)) as running:
        refused = await _put(running, ROTA, body)
        assert 422 == refused.status_code, refused.text
        assert ("invalid_responders", True) == (
            refused.json()["error"],
            reason in refused.json()["detail"],
        ), refused.text
        # A rota may not take a responder's id either (the file's rule).
        taken = await _put(running, "/api/rotas/chen", {"shifts": [_two_hours_from("chen", NOW)]})
        assert 422 == taken.status_code, taken.text
        assert "id of a responder" in taken.json()["detail"]
        assert [] == running.hub.config.rotas
        assert [] == await running.hub.store.audit.find(action="rota")


async def test_officers_supervisors_and_viewers_may_not_change_rotas(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    async with run_hub(make_settings(config=_with_a_rota(tmp_path))) as running:
        body = {"shifts": [_two_hours_from("chen", NOW)]}
        for user in ("officer-li", "supervisor-wang", "viewer"):
            assert 403 == (await _put(running, ROTA, body, user)).status_code
            deleted = await running.http.delete(ROTA, headers=await running.auth(user))
            assert 403 == deleted.status_code
        assert 401 == (await running.http.put(ROTA, json=body)).status_code
        assert 401 == (await running.http.delete(ROTA)).status_code
        assert "li" == running.hub.config.rota_by_id["grid07-team"].shifts[0].responder
        assert [] == await running.hub.store.audit.find(action="rota")


async def test_a_rota_is_deleted_only_once_no_call_list_names_it_and_stays_deleted(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(config=_with_a_rota(tmp_path))
    async with run_hub(settings) as running:
        headers = await running.auth("admin")
        assert (
            200 == (await _put(running, CALL_LIST, {"call": ["chen", "grid07-team"]})).status_code
        )
        refused = await running.http.delete(ROTA, headers=headers)
        assert 409 == refused.status_code, refused.text
        assert ("rota_in_use", True) == (
            refused.json()["error"],
            f"{SITE} level 1" in refused.json()["detail"],
        )
        assert 200 == (await _put(running, CALL_LIST, {"call": ["chen"]})).status_code
        deleted = await running.http.delete(ROTA, headers=headers)
        assert (204, b"") == (deleted.status_code, deleted.content)
        assert 404 == (await running.http.delete(ROTA, headers=headers)).status_code
        assert 404 == (await running.http.delete("/api/rotas/nowhere", headers=headers)).status_code
        [entry] = await running.hub.store.audit.find(action="rota")
    assert ("grid07-team", None) == (entry.target, entry.after)
    assert entry.before is not None
    assert "li" == entry.before["shifts"][0]["responder"]
    async with run_hub(settings) as running:
        assert [] == running.hub.config.rotas
        # Nothing names li any more: they may go too.
        assert 204 == (await _delete(running, "li")).status_code


async def test_a_rota_changed_through_the_api_holds_its_responders(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    config = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/duty")
    async with run_hub(make_settings(config=config)) as running:
        assert 200 == (await _put(running, "/api/responders/li", LI)).status_code
        rota = {"shifts": [_two_hours_from("li", NOW)]}
        assert 200 == (await _put(running, ROTA, rota)).status_code
        refused = await _delete(running, "li")
        assert 409 == refused.status_code, refused.text
        assert ("responder_in_use", True) == (
            refused.json()["error"],
            "rota grid07-team" in refused.json()["detail"],
        )
        # Once the rota no longer names them, li goes; a rota may not name them again.
        chen_only = {"shifts": [_two_hours_from("chen", NOW)]}
        assert 200 == (await _put(running, ROTA, chen_only)).status_code
        assert 204 == (await _delete(running, "li")).status_code
        again = await _put(running, ROTA, rota)
        assert 422 == again.status_code, again.text
        assert "unknown responder li" in again.json()["detail"]
        assert "chen" == running.hub.config.rota_by_id["grid07-team"].shifts[0].responder


async def test_a_rota_changed_through_the_api_is_kept_across_a_restart_over_the_file(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    """Even when a responder it names was changed after it."""
    clock = ManualClock()
    settings = make_settings(config=_with_a_rota(tmp_path))
    li_and_chen = {"shifts": [_two_hours_from("li", NOW), _two_hours_from("chen", NOW + WEEK / 2)]}
    wang = {"name": "王网格员", "channels": [{"kind": "webhook", "webhook": "duty"}]}
    async with run_hub(settings, clock) as running:
        assert 200 == (await _put(running, "/api/responders/wang", wang)).status_code
        clock.advance(1)
        assert (
            200
            == (
                await _put(
                    running, "/api/rotas/grid08-team", {"shifts": [_two_hours_from("wang", NOW)]}
                )
            ).status_code
        )
        clock.advance(1)
        assert 200 == (await _put(running, ROTA, li_and_chen)).status_code
        clock.advance(1)
        assert 200 == (await _put(running, CALL_LIST, {"call": ["grid08-team"]})).status_code
        clock.advance(1)
        # wang's phone changes after the rota naming them was saved.
        changed = await _put(running, "/api/responders/wang", wang | {"phone": "+8613800000003"})
        assert 200 == changed.status_code
    async with run_hub(settings, clock) as running:
        rotas = running.hub.config.rota_by_id
        assert ["grid08-team"] == running.hub.config.site(SITE).escalation[0].call
        listed = (await running.http.get("/api/rotas", headers=await running.auth())).json()
    assert ["li", "chen"] == [shift.responder for shift in rotas["grid07-team"].shifts]
    assert ["wang"] == [shift.responder for shift in rotas["grid08-team"].shifts]
    assert {"grid07-team", "grid08-team"} == {rota["id"] for rota in listed["rotas"]}
