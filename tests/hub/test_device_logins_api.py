"""The device login routes when provisioning cannot happen: not configured (503), the
broker unreachable (502, nothing recorded, nothing audited). The working path, against
a real stack, is in tests/security/test_up.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from riverguard.mqtt import BrokerSettings
from riverguard.provisioning import DeviceLoginStore
from riverguard.services import free_port
from tests.hub.conftest import MakeSettings, RunningHub, run_hub

pytestmark = pytest.mark.integration


async def test_without_provisioning_settings_the_routes_answer_503(
    running_hub: RunningHub,
) -> None:
    admin = await running_hub.auth("admin")
    officer = await running_hub.auth("officer-li")
    assert 403 == (await running_hub.http.get("/api/device-logins", headers=officer)).status_code
    for method, url in (
        ("GET", "/api/device-logins"),
        ("POST", "/api/device-logins/db-fence-01/rotate"),
        ("DELETE", "/api/device-logins/db-fence-01"),
    ):
        response = await running_hub.http.request(method, url, headers=admin)
        assert 503 == response.status_code, (method, url)
        assert "not_configured" == response.json()["error"]


async def test_an_unreachable_broker_is_a_502_and_nothing_is_recorded(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    store = DeviceLoginStore(tmp_path / "device-logins.json")
    with store.locked():
        logins = store.read()
        logins.devices["db-fence-01"] = "the-old-password"
        store.write(logins)
    nobody = BrokerSettings(port=free_port(), username="broker-admin", password=SecretStr("x"))
    settings = make_settings(broker_admin=nobody, device_logins_file=store.path)
    async with run_hub(settings) as running_hub:
        admin = await running_hub.auth("admin")
        for method, url in (
            ("POST", "/api/device-logins/db-fence-01/rotate"),
            ("DELETE", "/api/device-logins/db-fence-01"),
        ):
            response = await running_hub.http.request(method, url, headers=admin)
            assert 502 == response.status_code, response.text
            assert "broker_refused" == response.json()["error"]
        assert "the-old-password" == store.read().devices["db-fence-01"]
        audit = await running_hub.http.get(
            "/api/audit", params={"action": "device_login"}, headers=admin
        )
        assert [] == audit.json()
