"""Plain text only on loopback: components told otherwise refuse to start, unless allowed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from edge.settings import EdgeSettings
from hub.settings import HubSettings
from riverguard import certs
from riverguard.mqtt import BrokerSettings
from riverguard.plaintext import is_loopback

BROKER = BrokerSettings(username="hub", password=SecretStr("pw"))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("192.168.1.20", False),
        ("hub.river.example", False),
        ("localhost.evil.example", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_only_loopback_addresses_and_localhost_count_as_loopback(host: str, loopback: bool) -> None:
    assert loopback == is_loopback(host)


def hub(**values: Any) -> HubSettings:
    return HubSettings(broker=BROKER, **values)


def test_the_hub_defaults_are_all_loopback() -> None:
    settings = hub()
    assert "http://127.0.0.1:8080" == settings.base_url


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"http_host": "0.0.0.0"}, "the hub's HTTP would be plain text on '0.0.0.0'"),
        ({"http_host": "10.0.0.5"}, "set tls_cert_file and tls_key_file"),
        ({"influx_url": "http://influx.example:8086"}, "InfluxDB would be plain text"),
        (
            {"database_url": "postgresql+asyncpg://rg@db.example/riverguard"},
            "PostgreSQL would be plain text on 'db.example'",
        ),
        (
            {"database_url": "postgresql+asyncpg://rg@10.0.0.9/riverguard?sslmode=prefer"},
            "add \\?sslmode=verify-full",
        ),
    ],
)
def test_the_hub_refuses_plain_text_off_the_machine(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        hub(**values)


def test_the_hub_names_every_plain_text_link_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        hub(http_host="0.0.0.0", influx_url="http://10.0.0.7:8086")
    assert "HTTP" in str(refused.value)
    assert "InfluxDB" in str(refused.value)


def test_tls_or_an_explicit_allowance_lets_the_hub_leave_loopback(tmp_path: Path) -> None:
    certs.make_all(tmp_path, certs.plan(["hub.example"], []))
    cert, key = tmp_path / "hub-https.crt", tmp_path / "hub-https.key"
    settings = hub(
        http_host="0.0.0.0",
        tls_cert_file=cert,
        tls_key_file=key,
        influx_url="https://influx.example:8086",
        database_url="postgresql+asyncpg://rg@db.example/riverguard?sslmode=verify-full",
    )
    assert settings.base_url.startswith("https://0.0.0.0:")
    assert hub(http_host="10.0.0.5", allow_plaintext=True).http_host == "10.0.0.5"
    # The Unix socket and SQLite are on the machine.
    assert hub(database_url="postgresql+asyncpg:///riverguard?host=/run/postgresql")
    assert hub(database_url="sqlite+aiosqlite:////var/lib/riverguard/hub.db")


def test_the_edge_refuses_its_http_server_off_loopback_unless_allowed() -> None:
    with pytest.raises(ValidationError, match="the edge's health and audio HTTP"):
        EdgeSettings(site="s", broker=BROKER, metrics_port=9100, metrics_host="0.0.0.0")
    assert EdgeSettings(site="s", broker=BROKER, metrics_port=9100)
    # No HTTP server at all: nothing to refuse.
    assert EdgeSettings(site="s", broker=BROKER, metrics_host="0.0.0.0")
    allowed = EdgeSettings(
        site="s", broker=BROKER, metrics_port=9100, metrics_host="0.0.0.0", allow_plaintext=True
    )
    assert allowed.allow_plaintext


def test_the_hub_command_exits_with_a_clear_line_and_does_not_serve() -> None:
    """EX_CONFIG (78), which the systemd units do not restart on, and nothing listening."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RIVERGUARD_")}
    env |= {
        "RIVERGUARD_BROKER__USERNAME": "hub",
        "RIVERGUARD_BROKER__PASSWORD": "pw",
        "RIVERGUARD_HTTP_HOST": "0.0.0.0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "riverguard", "hub"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 78 == done.returncode
    assert "refusing to start" in done.stderr
    assert "plain text on '0.0.0.0'" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_sslmode_is_a_settings_error_not_a_silent_plain_connection() -> None:
    with pytest.raises(ValidationError, match="sslmode is one of"):
        hub(database_url="postgresql+asyncpg://rg@localhost/riverguard?sslmode=verify_full")


def test_a_broker_connection_off_the_machine_needs_tls_or_an_explicit_allowance() -> None:
    password = SecretStr("pw")
    with pytest.raises(ValidationError, match="the broker connection would be plain text"):
        BrokerSettings(host="hub.river.example", port=8883, username="edge", password=password)
    assert BrokerSettings(host="hub.river.example", username="edge", password=password, tls=True)
    assert BrokerSettings(
        host="10.0.0.5", username="edge", password=password, allow_plaintext=True
    ).allow_plaintext
    assert BrokerSettings(host="localhost", username="edge", password=password)


def test_the_edge_command_refuses_a_plain_broker_across_the_city() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RIVERGUARD_")}
    env |= {
        "RIVERGUARD_BROKER__HOST": "hub.river.example",
        "RIVERGUARD_BROKER__USERNAME": "edge-danshui-bridge",
        "RIVERGUARD_BROKER__PASSWORD": "pw",
    }
    done = subprocess.run(
        [sys.executable, "-m", "riverguard", "edge", "--site", "danshui-bridge"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 78 == done.returncode, done.stderr
    assert "broker" in done.stderr
    assert "plain text on 'hub.river.example'" in done.stderr


def test_unusable_tls_files_are_a_settings_error_naming_them(tmp_path: Path) -> None:
    """Missing, mismatched or unreadable: one line and exit status 78 at start-up, not a
    traceback from uvicorn restarted for ever."""
    certs.make_all(tmp_path, certs.plan(["hub.example"], []))
    with pytest.raises(ValidationError, match="tls_cert_file/tls_key_file cannot be used"):
        hub(tls_cert_file=tmp_path / "missing.crt", tls_key_file=tmp_path / "hub-https.key")
    with pytest.raises(ValidationError, match="tls_cert_file/tls_key_file cannot be used"):
        # The broker's key with the hub's certificate.
        hub(
            tls_cert_file=tmp_path / "hub-https.crt",
            tls_key_file=tmp_path / "broker-central.key",
        )
    with pytest.raises(ValidationError, match=r"influx_ca_file .* cannot be read"):
        hub(influx_ca_file=tmp_path / "nowhere.crt")
    with pytest.raises(ValidationError, match=r"hub_ca_file .* cannot be read"):
        EdgeSettings(site="s", broker=BROKER, hub_ca_file=tmp_path / "nowhere.crt")


def test_broker_settings_written_as_environment_are_read_back_by_the_edge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``BrokerSettings.env`` writes for a child process is what the edge reads."""
    uplink = BrokerSettings(
        host="hub.river.example",
        port=8883,
        username="edge-danshui-bridge",
        password=SecretStr("up"),
        tls=True,
        ca_file=Path("/etc/riverguard/tls/ca.crt"),
        certfile=Path("/etc/riverguard/tls/edge.crt"),
        keyfile=Path("/etc/riverguard/tls/edge.key"),
    )
    field = BrokerSettings(
        host="192.168.50.1",
        username="edge-danshui-bridge",
        password=SecretStr("site"),
        allow_plaintext=True,
    )
    for name in list(os.environ):
        if name.startswith("RIVERGUARD_"):
            monkeypatch.delenv(name)
    for name, value in {**uplink.env(), **field.env("RIVERGUARD_FIELD_BROKER")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RIVERGUARD_SITE", "danshui-bridge")

    settings = EdgeSettings()

    assert uplink == settings.broker
    assert field == settings.field_broker
