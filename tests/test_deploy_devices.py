"""``riverguard devices`` against a deployment's broker: deploy/mosquitto/central.conf
as shipped, its logins from ``riverguard broker-logins``, the administration login
over the TLS listener with a client certificate of ``riverguard certs``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from riverguard import broker_logins, certs
from riverguard.broker_acl import device_username
from riverguard.cli import main
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.mqtt_client import Client, MqttError
from riverguard.provisioning import DeviceLoginStore
from riverguard.settings import REPO_ROOT
from tests.deployment import MOSQUITTO, CentralBroker

pytestmark = pytest.mark.integration

CONFIG = REPO_ROOT / "examples" / "danshui.toml"
SITE = "danshui-bridge"
FENCE = "db-fence-01"
OTHER = "db-fence-02"


def _device(port: int, tls: Path, username: str, password: str) -> BrokerSettings:
    cert = tls / f"device-{SITE}-{FENCE}"
    return BrokerSettings(
        host="localhost",
        port=port,
        username=username,
        password=SecretStr(password),
        tls=True,
        ca_file=tls / "ca.crt",
        certfile=cert.with_suffix(".crt"),
        keyfile=cert.with_suffix(".key"),
    )


async def _disconnected(client: Client) -> str:
    """Wait (with a deadline) until the broker closes the connection; its reason."""
    async with asyncio.timeout(10):
        while True:
            try:
                await client.next_batch(10)
            except MqttError as exc:
                return str(exc)


def _dynsec_users(access: Path) -> set[str]:
    dynsec = json.loads((access / broker_logins.DYNSEC).read_text(encoding="utf-8"))
    return {client["username"] for client in dynsec["clients"]}


async def test_devices_are_revoked_added_and_rotated_on_a_deployment_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    tls, access = tmp_path / "tls", tmp_path / "access"
    certs.make_all(
        tls,
        certs.plan(
            ["localhost", "127.0.0.1"],
            [(SITE, [])],
            devices=[(SITE, FENCE)],
            clients=["broker-admin"],
        ),
    )
    # A logins.json written before the device store: its device password moves over once.
    access.mkdir()
    (access / broker_logins.LOGINS).write_text(
        json.dumps({device_username(FENCE): "an-earlier-password"}), encoding="utf-8"
    )
    broker_logins.write(CONFIG, access, devices=True)
    store = DeviceLoginStore(access / broker_logins.DEVICE_LOGINS)
    assert "an-earlier-password" == store.read().devices[FENCE]
    logins = json.loads((access / broker_logins.LOGINS).read_text(encoding="utf-8"))
    assert not [name for name in logins if name.startswith("device-")]
    broker = CentralBroker(tmp_path / "broker", tls, access)
    broker.start()
    try:
        port = broker.tls_port

        def devices(*argv: str, admin_cert: bool = True) -> int:
            tls_args = ["--ca-file", str(tls / "ca.crt")]
            if admin_cert:
                tls_args += ["--cert", str(tls / "broker-admin.crt")]
                tls_args += ["--key", str(tls / "broker-admin.key")]
            return main(
                [
                    *("devices", *argv, "--config", str(CONFIG)),
                    *("--broker-logins", str(access), "--broker", f"localhost:{port}"),
                    *tls_args,
                ]
            )

        # The broker's TLS listener wants a client certificate, the admin's too.
        assert 1 == await asyncio.to_thread(devices, "revoke", FENCE, admin_cert=False)
        assert "control topic" in capsys.readouterr().err
        assert "active" == store.read().state(FENCE)

        old = _device(port, tls, device_username(FENCE), "an-earlier-password")
        async with make_client(old) as device:
            assert 0 == await asyncio.to_thread(devices, "revoke", FENCE)
            # 0x98: "administrative action", the plugin deleting the login.
            assert "0x98" in await _disconnected(device)
        assert f"revoked the login of {FENCE}\n" == capsys.readouterr().out
        with pytest.raises(MqttError, match="refused"):
            async with make_client(old):
                pass

        # Written again, the revoked device stays without a login.
        broker_logins.write(CONFIG, access, devices=True)
        assert "revoked" == store.read().state(FENCE)
        assert device_username(FENCE) not in _dynsec_users(access)
        assert device_username(OTHER) in _dynsec_users(access)
        assert 0 == await asyncio.to_thread(devices, "list")
        assert f"{device_username(FENCE):<30} revoked" in capsys.readouterr().out

        # Added again: the printed settings connect.
        assert 0 == await asyncio.to_thread(devices, "add", FENCE)
        added = json.loads(capsys.readouterr().out)
        assert ("localhost", port) == (added["host"], added["port"])
        async with make_client(_device(port, tls, added["username"], added["password"])) as d:
            assert d.connected
            # Rotated: the connection with the old password is closed, the new one works.
            assert 0 == await asyncio.to_thread(devices, "rotate", FENCE)
            assert "0x98" in await _disconnected(d)
        rotated = json.loads(capsys.readouterr().out)
        assert rotated["password"] != added["password"]
        assert rotated["password"] == store.read().devices[FENCE]
        async with make_client(_device(port, tls, rotated["username"], rotated["password"])) as d:
            assert d.connected
        # The next run of broker-logins writes the rotated password for the broker.
        broker_logins.write(CONFIG, access, devices=True)
        assert rotated["password"] == store.read().devices[FENCE]
        assert device_username(FENCE) in _dynsec_users(access)
    finally:
        broker.stop()
