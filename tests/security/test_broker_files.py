"""`riverguard broker-files`: a deployment's broker files, loaded by a real Mosquitto as
a production broker loads them, and kept across runs."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from riverguard import broker_acl
from riverguard.broker_files import BOUND_IDS_FILE, DYNSEC_FILE, GUARD_FILE, run
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.mqtt_client import MqttError
from riverguard.services import ManagedProcess, free_port, port_accepts
from riverguard.wire import topics
from tests.conftest import EXAMPLE_CONFIG

pytestmark = pytest.mark.integration


@pytest.fixture
def files(tmp_path: Path) -> Path:
    out = tmp_path / "broker"
    assert 0 == run(EXAMPLE_CONFIG, out)
    return out


@pytest.fixture
def production_broker(tmp_path: Path, files: Path) -> Iterator[int]:
    """Mosquitto with only the written files: the guard, then the plugin (mosquitto.conf)."""
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                "per_listener_settings false",
                "allow_anonymous false",
                f"plugin {files / GUARD_FILE}",
                f"plugin_opt_bound_ids {files / BOUND_IDS_FILE}",
                "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                f"plugin_opt_config_file {files / DYNSEC_FILE}",
                f"listener {port} 127.0.0.1",
                "persistence false",
                "log_dest stderr",
                f"user {getpass.getuser()}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    process = ManagedProcess("mosquitto", ["mosquitto", "-c", str(conf)], tmp_path / "log")
    process.start()
    process.wait_until(lambda: port_accepts(port), 15, "listening")
    yield port
    process.stop()


def _login(port: int, username: str, password: str) -> BrokerSettings:
    return BrokerSettings(port=port, username=username, password=SecretStr(password))


async def test_a_broker_with_the_written_files_enforces_the_rules(
    files: Path, production_broker: int
) -> None:
    secrets = json.loads((files / "secrets.json").read_text())["broker"]
    devices = json.loads((files / "device-logins.json").read_text())["devices"]
    port = production_broker
    hub = _login(port, "hub", secrets["hub"])
    async with make_client(hub, broker_acl.HUB_CLIENT_ID):
        sim = _login(port, "sim", secrets["sim"])
        with pytest.raises(MqttError, match="0x87"):
            async with make_client(sim, broker_acl.HUB_CLIENT_ID):
                pass
    fence = _login(port, "device-db-fence-01", devices["db-fence-01"])
    async with make_client(fence, fence.username) as device:
        await device.publish(
            topics.field_report("danshui-bridge", "fence", "db-fence-01"), b"{}", qos=1
        )
        with pytest.raises(MqttError, match="0x87"):
            await device.publish(topics.events("danshui-bridge"), b"{}", qos=1)
    for name in (DYNSEC_FILE, BOUND_IDS_FILE, "secrets.json", "device-logins.json"):
        assert 0o600 == (files / name).stat().st_mode & 0o777


def test_running_it_again_keeps_every_password(files: Path) -> None:
    before = [(files / n).read_text() for n in ("secrets.json", "device-logins.json")]
    assert 0 == run(EXAMPLE_CONFIG, files)
    assert before == [(files / n).read_text() for n in ("secrets.json", "device-logins.json")]
