"""Fixtures that start the real services: Mosquitto, influxd and PostgreSQL, on free ports in
temp dirs."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from riverguard import broker_acl
from riverguard.broker_acl import BrokerAccess
from riverguard.config import Config, load_config
from riverguard.hub_session import HubSession
from riverguard.mqtt import BrokerSettings
from riverguard.services import Influxd, Mosquitto, ServiceError, free_port
from riverguard.stack import Stack
from simulators.load import HOP_TREE
from tests.postgres import PostgresServer

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "examples" / "danshui.toml"

# Fixtures that start a real service or reach one: every test that uses one, directly or
# through another fixture, is marked ``integration`` at collection, so that a new test cannot
# forget its marker. A new fixture that starts a service belongs in this list.
SERVICE_FIXTURES = frozenset(
    {
        # Here: Mosquitto, influxd, PostgreSQL, the whole stack.
        *("broker", "own_broker", "influxd", "postgres", "stack"),
        # tests/browser/ and tests/faults/: Chromium, the console over HTTP, a supervised stack.
        *("chromium", "static_console", "supervised"),
        # tests/edge/ and tests/simulators/: HTTP servers of announcement audio, an HTTP speaker.
        *("audio_server", "http_speaker"),
    }
)
# Markers of a kind of service; each implies ``integration``.
SERVICE_MARKERS = ("browser", "postgresql", "netns")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``integration`` every test that needs a service (``pyproject.toml`` lists the
    markers); ``pytest -m "not integration"`` then runs with no service at all."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "postgres" in fixtures:
            item.add_marker(pytest.mark.postgresql)
        uses_service = not SERVICE_FIXTURES.isdisjoint(fixtures)
        if uses_service or any(item.get_closest_marker(name) for name in SERVICE_MARKERS):
            item.add_marker(pytest.mark.integration)


@dataclass
class Broker:
    server: Mosquitto

    @property
    def port(self) -> int:
        return self.server.port

    def settings(self, username: str) -> BrokerSettings:
        """Broker settings for one of the logins of riverguard/broker_acl.py: hub, sim,
        observer, broker-admin, edge-<site>, nvr-<site>, device-<device id>."""
        return BrokerSettings(
            host="127.0.0.1",
            port=self.server.port,
            username=username,
            password=self.server.logins[username],
        )

    def device(self, device_id: str) -> BrokerSettings:
        """The login of one configured device (its client id is the same as its username)."""
        return self.settings(broker_acl.device_username(device_id))


def broker_access(config: Config) -> BrokerAccess:
    """Every login of ``config`` with the production access lists, fresh passwords."""
    names = [identity.username for identity in broker_acl.identities(config)]
    return broker_acl.broker_access(config, {name: secrets.token_urlsafe(12) for name in names})


@pytest.fixture(scope="session")
def example_config() -> Config:
    return load_config(EXAMPLE_CONFIG)


def _start_broker(directory: Path, config: Config) -> Mosquitto:
    server = Mosquitto(directory, free_port(), broker_access(config))
    server.start()
    return server


@contextlib.contextmanager
def broker_for(directory: Path, config: Config) -> Iterator[Broker]:
    """A real Mosquitto whose logins and access lists are those of ``config`` (for a
    test with a configuration of its own: the broker's rules follow the sites)."""
    server = _start_broker(directory, config)
    try:
        yield Broker(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory, example_config: Config) -> Iterator[Broker]:
    """One real Mosquitto for the session, with our mosquitto.conf."""
    server = _start_broker(tmp_path_factory.mktemp("mosquitto"), example_config)
    yield Broker(server)
    server.stop()


@pytest.fixture
def own_broker(tmp_path: Path, example_config: Config) -> Iterator[Broker]:
    """A real Mosquitto for one test, which may stop, kill or restart it."""
    server = _start_broker(tmp_path / "mosquitto", example_config)
    yield Broker(server)
    server.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """One real influxd for the session."""
    server = Influxd(tmp_path_factory.mktemp("influxd"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influx_database(influxd: Influxd) -> Iterator[str]:
    """A fresh InfluxDB database for one test, dropped afterwards."""
    name = f"test_{secrets.token_hex(4)}"
    httpx.post(f"{influxd.url}/query", data={"q": f'CREATE DATABASE "{name}"'}).raise_for_status()
    yield name
    httpx.post(f"{influxd.url}/query", data={"q": f'DROP DATABASE "{name}"'}).raise_for_status()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session; tests take a fresh database of it."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack as `riverguard up` runs it, with simulated speakers only.

    Speakers play ten times faster than real time so announcements end quickly.
    """
    running = Stack(
        data_dir=tmp_path_factory.mktemp("stack"),
        config_path=EXAMPLE_CONFIG,
        simulators=("speakers",),
        ports=None,
        speaker_speed=10.0,
        # The bare broker hop of tests/e2e/test_load.py publishes under its own tree.
        sandboxes=(HOP_TREE,),
    )
    try:
        running.start()
    except ServiceError:
        running.stop()
        raise
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def quiet_stack(request: pytest.FixtureRequest) -> None:
    """A test on the shared stack starts with no active alarm. Its tests clean up what
    they open, but not every file does (a scenario's swimmer, an end-to-end breach), and
    which files ran before in the same pytest-xdist worker is not fixed."""
    if "stack" not in request.fixturenames:
        return
    running: Stack = request.getfixturevalue("stack")
    officer = "officer-li"
    session = HubSession.login(running.hub_url, officer, running.secrets.users[officer])
    with httpx.Client(base_url=running.hub_url, headers=session.headers, timeout=10) as http:
        for state in ("open", "acknowledged"):
            for alarm in http.get("/api/alarms", params={"state": state}).raise_for_status().json():
                resolved = http.post(
                    f"/api/alarms/{alarm['id']}/resolve", json={"outcome": "false_alarm"}
                )
                # 409: resolved meanwhile (the hub's own quiet-zone resolve).
                if resolved.status_code != 409:
                    resolved.raise_for_status()


def stack_logs(stack: Stack) -> str:
    """Every component's log tail, for a failing test's message."""
    return "\n".join(
        f"--- {name}\n{component.process.log_tail(40)}"
        for name, component in stack.components.items()
    )
