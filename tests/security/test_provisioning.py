"""Device logins added, rotated and revoked on a running broker, through its control
topic: a revoked or rotated-away login is disconnected at once and refused after."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from riverguard import broker_acl
from riverguard.config import Config
from riverguard.devices import run
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.mqtt_client import Client, MqttError
from riverguard.provisioning import DeviceLoginStore, Provisioner, ProvisioningError
from riverguard.services import Mosquitto, free_port
from riverguard.stack import Stack
from riverguard.testing import fence_report
from riverguard.wire import topics
from tests.conftest import EXAMPLE_CONFIG, Broker

pytestmark = pytest.mark.integration

NEW_DEVICE = "xy-fence-02"  # configured, but without a login when the broker starts
FENCE = "db-fence-01"


@pytest.fixture
def deployment(tmp_path: Path, example_config: Config) -> Iterator[tuple[Broker, Provisioner]]:
    """A broker started as `riverguard up` starts it, from a device login store in which
    one device has no login yet."""
    store = DeviceLoginStore(tmp_path / "device-logins.json")
    with store.locked():
        logins = store.read()
        logins.devices = {
            d.id: secrets.token_urlsafe(12) for d in example_config.devices if d.id != NEW_DEVICE
        }
        store.write(logins)
    services = [i.username for i in broker_acl.identities(example_config, devices=())]
    passwords = {name: secrets.token_urlsafe(12) for name in services}
    passwords |= {broker_acl.device_username(d): p for d, p in logins.devices.items()}
    access = broker_acl.broker_access(example_config, passwords, devices=list(logins.devices))
    server = Mosquitto(tmp_path / "mosquitto", free_port(), access)
    server.start()
    broker = Broker(server)
    provisioner = Provisioner(example_config, store, broker.settings(broker_acl.ADMIN))
    yield broker, provisioner
    server.stop()


def _settings(broker: Broker, username: str, password: str) -> BrokerSettings:
    return BrokerSettings(
        host="127.0.0.1", port=broker.port, username=username, password=SecretStr(password)
    )


async def _disconnected(client: Client) -> str:
    """Wait (with a deadline) until the broker closes the connection; its reason."""
    async with asyncio.timeout(5):
        while True:
            try:
                await client.next_batch(10)
            except MqttError as exc:
                return str(exc)


async def test_revoking_disconnects_a_connected_device_at_once(
    deployment: tuple[Broker, Provisioner],
) -> None:
    broker, provisioner = deployment
    old = broker.device(FENCE)
    report = topics.field_report("danshui-bridge", "fence", FENCE)
    async with make_client(old) as device:
        await device.publish(report, json.dumps(fence_report(1, "z1")), qos=1)
        await provisioner.revoke(FENCE)
        reason = await _disconnected(device)
    # 0x98: "administrative action", the plugin deleting the login.
    assert "0x98" in reason
    with pytest.raises(MqttError, match="refused"):
        async with make_client(old):
            pass
    assert "revoked" == provisioner.store.read().state(FENCE)
    with pytest.raises(ProvisioningError, match="no login to revoke"):
        await provisioner.revoke(FENCE)
    # Added again, it has a new login and the same rights.
    login = await provisioner.add(FENCE)
    settings = login.connection_settings()
    assert old.password.get_secret_value() != settings["password"]
    async with make_client(_settings(broker, settings["username"], settings["password"])) as d:
        await d.publish(report, json.dumps(fence_report(2, "z1")), qos=1)


async def test_rotating_closes_the_old_connection_and_refuses_the_old_password(
    deployment: tuple[Broker, Provisioner],
) -> None:
    broker, provisioner = deployment
    old = broker.device(FENCE)
    async with make_client(old) as device:
        login = await provisioner.rotate(FENCE)
        assert "0x98" in await _disconnected(device)
    with pytest.raises(MqttError, match="refused"):
        async with make_client(old):
            pass
    new = _settings(broker, login.identity.username, login.password)
    async with make_client(new, login.identity.client_id) as device:
        report = topics.field_report("danshui-bridge", "fence", FENCE)
        await device.publish(report, b"{}", qos=1)
    assert login.password == provisioner.store.read().devices[FENCE]


async def test_an_added_login_connects_with_the_printed_settings_and_no_more_rights(
    deployment: tuple[Broker, Provisioner],
) -> None:
    broker, provisioner = deployment
    assert "none" == provisioner.store.read().state(NEW_DEVICE)
    with pytest.raises(ProvisioningError, match="has no login"):
        await provisioner.rotate(NEW_DEVICE)
    login = await provisioner.add(NEW_DEVICE)
    settings = login.connection_settings()
    assert {
        "device": NEW_DEVICE,
        "site": "xiyong-wharf",
        "type": "fence",
        "port": broker.port,
        "username": "device-xy-fence-02",
        "client_id": "device-xy-fence-02",
        "publish": [
            "field/xiyong-wharf/fence/xy-fence-02",
            "field/xiyong-wharf/fence/xy-fence-02/status",
        ],
        "subscribe": [],
    }.items() <= settings.items()
    connect = _settings(broker, settings["username"], settings["password"])
    async with make_client(connect, settings["client_id"]) as device:
        for topic in settings["publish"]:
            await device.publish(topic, b"{}", qos=1)
        with pytest.raises(MqttError, match="0x87"):
            await device.publish(
                topics.field_report("xiyong-wharf", "fence", "xy-fence-01"), b"{}", qos=1
            )
    with pytest.raises(ProvisioningError, match="has a login already"):
        await provisioner.add(NEW_DEVICE)
    with pytest.raises(ProvisioningError, match="no device"):
        await provisioner.add("no-such-device")


async def test_a_change_the_broker_refuses_is_not_recorded(
    deployment: tuple[Broker, Provisioner],
) -> None:
    """The admin login's rights are the control topic: with a wrong password the change
    fails as a whole and the store keeps the old login."""
    broker, provisioner = deployment
    before = provisioner.store.read().devices[FENCE]
    wrong = _settings(broker, broker_acl.ADMIN, "not-the-password")
    refused = Provisioner(provisioner.config, provisioner.store, wrong)
    with pytest.raises(ProvisioningError, match="cannot reach"):
        await refused.rotate(FENCE)
    assert before == provisioner.store.read().devices[FENCE]
    async with make_client(broker.device(FENCE)):
        pass


def test_an_offline_revocation_is_kept_by_the_next_start(tmp_path: Path) -> None:
    """`riverguard devices revoke --offline` with the stack stopped: the next `riverguard up`
    builds the broker without that device's login (and keeps the others')."""
    first = Stack(data_dir=tmp_path, config_path=EXAMPLE_CONFIG, simulators=(), ports=None)
    password = first.device_logins.devices["db-cam-01"]
    assert 0 == run("revoke", FENCE, tmp_path, EXAMPLE_CONFIG, offline=True)
    assert 1 == run("revoke", FENCE, tmp_path, EXAMPLE_CONFIG, offline=True)
    again = Stack(data_dir=tmp_path, config_path=EXAMPLE_CONFIG, simulators=(), ports=None)
    usernames = {identity.username for identity in again.mosquitto.access.identities}
    assert broker_acl.device_username(FENCE) not in usernames
    assert broker_acl.device_username("db-cam-01") in usernames
    assert password == again.mosquitto.logins[broker_acl.device_username("db-cam-01")]
    # Its client id stays bound to it: nobody else may use it meanwhile.
    bound = {identity.client_id for identity in again.mosquitto.access.bound}
    assert broker_acl.device_username(FENCE) in bound
    assert 0 == run("add", FENCE, tmp_path, EXAMPLE_CONFIG, offline=True)
    third = Stack(data_dir=tmp_path, config_path=EXAMPLE_CONFIG, simulators=(), ports=None)
    assert broker_acl.device_username(FENCE) in third.mosquitto.logins


async def test_concurrent_changes_in_one_process_both_land(
    deployment: tuple[Broker, Provisioner],
) -> None:
    """Two admins rotating at once through the hub: the second waits for the first's
    lock without holding up the event loop the first needs, and both are recorded."""
    _, provisioner = deployment
    first, second = await asyncio.gather(provisioner.rotate(FENCE), provisioner.rotate("db-cam-01"))
    stored = provisioner.store.read().devices
    assert (first.password, second.password) == (stored[FENCE], stored["db-cam-01"])
