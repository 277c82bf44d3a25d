"""The broker attacks against a real `riverguard up` stack with the login it hands out
(`stack.json`'s `sim`), its device logins, and their provisioning from the command line
and the admin API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from riverguard.broker_acl import HUB_CLIENT_ID
from riverguard.hub_session import HubSession
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.mqtt_client import MqttError, Subscription
from riverguard.stack import Stack
from riverguard.testing import fence_report
from riverguard.wire import topics
from tests.conftest import EXAMPLE_CONFIG
from tests.security.support import refused_publish
from tests.security.test_broker_attacks import forged_event

pytestmark = pytest.mark.integration

SITE = "danshui-bridge"
SPEAKER = "db-spk-01"


def _info(stack: Stack) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((stack.data_dir / "stack.json").read_text())
    return info


def _login(info: dict[str, Any], username: str, password: str) -> BrokerSettings:
    broker = info["broker"]
    return BrokerSettings(
        host=broker["host"], port=broker["port"], username=username, password=SecretStr(password)
    )


def _sim(info: dict[str, Any]) -> BrokerSettings:
    return _login(info, info["broker"]["username"], info["broker"]["password"])


async def _auth(http: httpx.AsyncClient, stack: Stack, role: str) -> dict[str, str]:
    user = next(u for u in _info(stack)["logins"].values() if u["role"] == role)
    return (await HubSession.login_async(http, user["username"], user["password"])).headers


async def test_every_broker_attack_fails_against_up_with_its_sim_login(stack: Stack) -> None:
    info = _info(stack)
    sim = _sim(info)
    assert "sim" == sim.username
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=30) as http:
        headers = await _auth(http, stack, "admin")
        alarms_before = (await http.get("/api/alarms", headers=headers)).json()
    forged: list[tuple[str, bytes]] = [
        (topics.events(SITE), json.dumps(forged_event()).encode()),
        (topics.event_batch(SITE), json.dumps([forged_event(f"db-cam-01:{9003}")]).encode()),
        (topics.announce(SITE, SPEAKER), b'{"id": "ann-evil", "volume": 100}'),
        (topics.stop(SITE, SPEAKER), b'{"id": "ann-real"}'),
        (topics.speaker_play(SITE, SPEAKER), b'{"id": "x", "url": "http://evil.example/"}'),
        (topics.speaker_stop(SITE, SPEAKER), b'{"id": "x"}'),
        (topics.speaker_ack(SITE, SPEAKER), b'{"id": "ann-real", "state": "done"}'),
        (topics.committed(SITE), b'{"ids": ["db-fence-01:50001"]}'),
        (topics.device_status(SITE, "db-cam-01"), b'{"online": false}'),
        (topics.edge_status(SITE), b'{"online": false, "state": "stopped"}'),
        (topics.hub_status(), b'{"online": false, "state": "stopped"}'),
    ]
    async with make_client(sim) as attacker:
        refused = [await refused_publish(attacker, topic, payload) for topic, payload in forged]
        for topic_filter in ("#", "$SYS/#", "riverguard/#", topics.events("+")):
            with pytest.raises(MqttError, match="0x87"):
                await attacker.subscribe([Subscription(topic_filter)])
    assert [True] * len(forged) == refused
    with pytest.raises(MqttError, match="0x87"):
        async with make_client(sim, HUB_CLIENT_ID):
            pass
    # The hub kept its session and its view: online, and no alarm from the forgeries.
    assert stack.hub_healthy()
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=30) as http:
        alarms_after = (await http.get("/api/alarms", headers=headers)).json()
    assert alarms_before == alarms_after
    observer = _login(info, info["observer"]["username"], info["observer"]["password"])
    statuses = [topics.edge_status(SITE), topics.hub_status()]
    async with make_client(observer) as view:
        await view.subscribe([Subscription(topic) for topic in statuses])
        retained: dict[str, Any] = {}
        async with asyncio.timeout(10):
            while set(retained) != set(statuses):
                for message in await view.next_batch(10):
                    retained[message.topic] = json.loads(message.payload)
    assert all(status["state"] == "online" for status in retained.values()), retained


async def test_every_configured_device_has_its_own_login_in_stack_json(stack: Stack) -> None:
    info = _info(stack)
    logins = info["device_logins"]
    assert {d.id for d in stack.config.devices} == set(logins)
    fence = stack.config.device_by_id["xy-fence-01"]
    settings = _login(info, **logins[fence.id])
    async with make_client(settings, settings.username) as device:
        await device.publish(
            topics.field_report(fence.site, "fence", fence.id),
            json.dumps(fence_report(1, "z1", "clear")),
            qos=1,
        )
        with pytest.raises(MqttError, match="0x87"):
            await device.publish(
                topics.field_report(fence.site, "fence", "xy-fence-02"), b"{}", qos=1
            )
    assert {"username", "password"} == set(info["observer"])


def _devices(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "riverguard",
            "devices",
            *args,
            "--data-dir",
            str(stack.data_dir),
            "--config",
            str(EXAMPLE_CONFIG),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _kicked(settings: BrokerSettings, action: Callable[[], Awaitable[object]]) -> str:
    """Connect with ``settings``, run ``action``, and return why the broker closed the
    connection (waited for with a deadline)."""
    async with make_client(settings, settings.username) as device:
        await action()
        async with asyncio.timeout(10):
            while True:
                try:
                    await device.next_batch(10)
                except MqttError as exc:
                    return str(exc)


async def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_devices, stack, *args)


async def test_the_command_line_rotates_revokes_and_adds_a_devices_login(stack: Stack) -> None:
    device = "xy-fence-02"
    info = _info(stack)
    old = _login(info, **info["device_logins"][device])
    rotated: list[subprocess.CompletedProcess[str]] = []

    async def rotate() -> None:
        rotated.append(await _cli(stack, "rotate", device))

    reason = await _kicked(old, rotate)
    assert 0 == rotated[0].returncode, rotated[0].stderr
    assert "0x98" in reason
    printed = json.loads(rotated[0].stdout)
    assert {"device": device, "username": "device-xy-fence-02", "port": old.port}.items() <= (
        printed.items()
    )
    new = _login(info, printed["username"], printed["password"])
    assert printed["password"] == _info(stack)["device_logins"][device]["password"]
    with pytest.raises(MqttError, match="refused"):
        async with make_client(old, old.username):
            pass
    revoked: list[subprocess.CompletedProcess[str]] = []

    async def revoke() -> None:
        revoked.append(await _cli(stack, "revoke", device))

    assert "0x98" in await _kicked(new, revoke)
    assert 0 == revoked[0].returncode, revoked[0].stderr
    assert device not in _info(stack)["device_logins"]
    listed = await _cli(stack, "list")
    assert any(
        line.split()[0] == device and line.split()[-1] == "revoked"
        for line in listed.stdout.splitlines()
    )
    again = await _cli(stack, "revoke", device)
    assert 1 == again.returncode
    assert "no login to revoke" in again.stderr
    added = await _cli(stack, "add", device)
    assert 0 == added.returncode, added.stderr
    settings = json.loads(added.stdout)
    async with make_client(_login(info, settings["username"], settings["password"])):
        pass


async def test_the_admin_api_rotates_and_revokes_device_logins_audited(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=30) as http:
        await _admin_api(stack, http)


async def _admin_api(stack: Stack, http: httpx.AsyncClient) -> None:
    device = "xy-cam-02"
    url = f"/api/device-logins/{device}"
    admin = await _auth(http, stack, "admin")
    for role in ("officer", "supervisor", "viewer"):
        headers = await _auth(http, stack, role)
        assert 403 == (await http.post(f"{url}/rotate", headers=headers)).status_code
        assert 403 == (await http.delete(url, headers=headers)).status_code
        assert 403 == (await http.get("/api/device-logins", headers=headers)).status_code
    assert 401 == (await http.delete(url)).status_code
    listed = (await http.get("/api/device-logins", headers=admin)).json()
    row = next(row for row in listed if row["device"] == device)
    assert {"device": device, "state": "active"}.items() <= row.items()
    info = _info(stack)
    old = _login(info, **info["device_logins"][device])
    responses: list[httpx.Response] = []

    async def rotate() -> None:
        responses.append(await http.post(f"{url}/rotate", headers=admin))

    assert "0x98" in await _kicked(old, rotate)
    assert 200 == responses[0].status_code, responses[0].text
    body = responses[0].json()
    new = _login(info, body["username"], body["password"])
    async with make_client(new, body["client_id"]) as camera:
        await camera.publish(topics.field_report("xiyong-wharf", "camera", device), b"{}", qos=1)

    async def revoke() -> None:
        responses.append(await http.delete(url, headers=admin))

    assert "0x98" in await _kicked(new, revoke)
    assert 204 == responses[-1].status_code
    assert 409 == (await http.delete(url, headers=admin)).status_code
    assert 404 == (await http.delete("/api/device-logins/no-such", headers=admin)).status_code
    assert 200 == (await http.post(url, headers=admin)).status_code
    audit = (await http.get("/api/audit", params={"action": "device_login"}, headers=admin)).json()
    mine = [(entry["target"], entry["detail"]) for entry in audit if entry["target"] == device]
    assert [(device, "add"), (device, "revoke"), (device, "rotate")] == mine[:3]
    assert all("password" not in json.dumps(entry) for entry in audit)
