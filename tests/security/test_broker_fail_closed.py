"""An empty or broken access configuration fails closed: the broker refuses to start,
or starts and lets nobody in or do anything; never open."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from riverguard import broker_acl
from riverguard.config import Config, ConfigError
from riverguard.mqtt import make_client
from riverguard.mqtt_client import MqttError, Subscription
from riverguard.services import Mosquitto, ServiceError, free_port, port_accepts
from riverguard.wire import topics
from tests.conftest import Broker, broker_access

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path, example_config: Config) -> Iterator[Mosquitto]:
    """A broker whose files the test damages between writing and starting."""
    mosquitto = Mosquitto(tmp_path / "mosquitto", free_port(), broker_access(example_config))
    mosquitto.directory.mkdir(parents=True)
    mosquitto.write_config()
    yield mosquitto
    mosquitto.stop()


def _start_as_written(server: Mosquitto) -> None:
    server.process.start()
    server.process.wait_until(lambda: port_accepts(server.port), 15, "listening")


@pytest.mark.parametrize(
    "damage",
    ["", "{", '{"clients": "none"}', "{}", "\x00\x01garbage"],
    ids=["empty", "truncated", "wrong-shape", "no-clients", "binary"],
)
async def test_a_broken_plugin_file_lets_nobody_in(server: Mosquitto, damage: str) -> None:
    server.dynsec_path.write_text(damage, encoding="utf-8")
    _start_as_written(server)
    broker = Broker(server)
    for login in ("hub", "sim", "edge-danshui-bridge", broker_acl.device_username("db-fence-01")):
        with pytest.raises(MqttError, match="refused"):
            async with make_client(broker.settings(login)):
                pass


async def test_empty_access_lists_deny_everything(server: Mosquitto) -> None:
    config = json.loads(server.dynsec_path.read_text(encoding="utf-8"))
    for role in config["roles"]:
        role["acls"] = []
    server.dynsec_path.write_text(json.dumps(config), encoding="utf-8")
    _start_as_written(server)
    broker = Broker(server)
    async with make_client(broker.settings("hub")) as hub:
        with pytest.raises(MqttError, match="0x87"):
            await hub.publish(topics.committed("danshui-bridge"), b'{"ids": []}', qos=1)
        with pytest.raises(MqttError, match="0x87"):
            await hub.subscribe([Subscription(topics.events("+"))])
    async with make_client(broker.settings("sim")) as sim:
        with pytest.raises(MqttError, match="0x87"):
            await sim.publish(topics.field_report("danshui-bridge", "fence", "x"), b"{}", qos=1)


@pytest.mark.parametrize("damage", [None, "riverguard-hub\n", "a b c\n"], ids=str)
def test_a_missing_or_malformed_guard_file_stops_the_broker_from_starting(
    server: Mosquitto, damage: str | None
) -> None:
    if damage is None:
        server.bound_ids_path.unlink()
    else:
        server.bound_ids_path.write_text(damage, encoding="utf-8")
    with pytest.raises(ServiceError, match="exited before listening"):
        _start_as_written(server)
    assert "clientid_guard" in server.process.log_tail()


def test_a_login_without_a_password_is_refused_before_the_broker_starts(
    example_config: Config, tmp_path: Path
) -> None:
    access = broker_access(example_config)
    del access.passwords["hub"]
    with pytest.raises(ConfigError, match="without a password"):
        access.write(tmp_path / "dynsec.json", tmp_path / "bound")
    assert not (tmp_path / "dynsec.json").exists()
