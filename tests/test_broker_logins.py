"""``riverguard broker-logins``: a deployment's logins and access lists, kept across runs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from riverguard import broker_logins
from riverguard.broker_acl import device_username
from riverguard.cli import main
from riverguard.provisioning import DeviceLoginStore
from riverguard.settings import DEFAULT_CONFIG


def test_every_login_of_the_configuration_is_written_with_its_access_list(
    tmp_path: Path,
) -> None:
    written = broker_logins.write(DEFAULT_CONFIG, tmp_path, devices=True)
    logins = json.loads((tmp_path / broker_logins.LOGINS).read_text(encoding="utf-8"))
    # The devices' passwords are in the device login store, which `riverguard devices` changes.
    store = DeviceLoginStore(tmp_path / broker_logins.DEVICE_LOGINS).read()
    logins |= {device_username(d): password for d, password in store.devices.items()}
    assert sorted(written.made) == sorted(logins)
    assert {"hub", "edge-danshui-bridge", "device-db-fence-01"} <= set(logins)
    dynsec = json.loads((tmp_path / broker_logins.DYNSEC).read_text(encoding="utf-8"))
    assert sorted(logins) == sorted(client["username"] for client in dynsec["clients"])
    # Hashed there: no password in the broker's file.
    assert not any(password in json.dumps(dynsec) for password in logins.values())
    assert "riverguard-hub hub\n" in (tmp_path / broker_logins.BOUND_IDS).read_text()
    names = (broker_logins.LOGINS, broker_logins.DEVICE_LOGINS, broker_logins.DYNSEC)
    for name in (*names, broker_logins.BOUND_IDS):
        assert 0o600 == stat.S_IMODE((tmp_path / name).stat().st_mode), name


def test_running_again_keeps_every_password_and_adds_only_new_logins(tmp_path: Path) -> None:
    broker_logins.write(DEFAULT_CONFIG, tmp_path, devices=False)
    before = json.loads((tmp_path / broker_logins.LOGINS).read_text(encoding="utf-8"))
    written = broker_logins.write(DEFAULT_CONFIG, tmp_path, devices=True)
    after = json.loads((tmp_path / broker_logins.LOGINS).read_text(encoding="utf-8"))
    assert before == after
    assert sorted(written.kept) == sorted(before)
    assert written.made
    assert all(name.startswith("device-") for name in written.made)
    devices = DeviceLoginStore(tmp_path / broker_logins.DEVICE_LOGINS).read().devices
    again = broker_logins.write(DEFAULT_CONFIG, tmp_path, devices=True)
    assert [] == again.made
    assert devices == DeviceLoginStore(tmp_path / broker_logins.DEVICE_LOGINS).read().devices


def test_the_command_says_what_it_made_and_refuses_a_bad_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["broker-logins", "--config", str(DEFAULT_CONFIG), "--dir", str(tmp_path / "a")]
    assert 0 == main(argv)
    assert "made edge-danshui-bridge" in capsys.readouterr().out
    broken = tmp_path / "broken.toml"
    broken.write_text("[[sites]]\nid = 3\n", encoding="utf-8")
    argv = ["broker-logins", "--config", str(broken), "--dir", str(tmp_path / "b")]
    assert 1 == main(argv)
    assert "riverguard broker-logins:" in capsys.readouterr().err
