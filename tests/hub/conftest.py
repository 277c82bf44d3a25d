"""Hub fixtures: a real hub (uvicorn) on a free port, against the real broker and influxd."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import aiomqtt
import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from hub.clock import Clock
from hub.main import HubServer
from hub.resources import RESOURCES, HubResources
from hub.settings import HubSettings
from riverguard.config import Site, load_config
from riverguard.hub_session import HubSession
from riverguard.mqtt import BrokerSettings
from riverguard.services import Influxd, free_port
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import Event
from riverguard.wire.socket_auth import subprotocols
from riverguard.wire.times import format_ts, utcnow
from tests.aiomqtt_client import aiomqtt_client
from tests.conftest import EXAMPLE_CONFIG, Broker
from tests.postgres import PostgresServer, fresh_database

PASSWORDS = {
    "admin": "admin-pw",
    "officer-li": "officer-pw",
    "supervisor-wang": "supervisor-pw",
    "viewer": "viewer-pw",
}
SITE = "danshui-bridge"


def hub_settings(
    tmp_path: Path, broker: BrokerSettings, influx_url: str, database: str, **overrides: Any
) -> HubSettings:
    console = tmp_path / "console"
    console.mkdir(exist_ok=True)
    (console / "index.html").write_text("<!doctype html><title>console</title>", encoding="utf-8")
    users_file = tmp_path / "users.json"
    users_file.write_text(json.dumps(PASSWORDS), encoding="utf-8")
    values: dict[str, Any] = {
        "config": EXAMPLE_CONFIG,
        "broker": broker,
        "data_dir": tmp_path / "hub",
        "http_port": free_port(),
        "influx_url": influx_url,
        "influx_database": database,
        "users_file": users_file,
        # Each test hub has its own persistent session: no messages left by another test.
        "mqtt_client_id": f"hub-test-{secrets.token_hex(4)}",
        "influx_retry_cap_s": 0.3,
        # The tests read counters; tests of the setting itself set it (test_security.py).
        "metrics_access": "open",
        # Cheap hashes: every test starts a hub and logs in; production keeps the defaults.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "console_dir": console,
    }
    values.update(overrides)
    return HubSettings(**values)


@dataclass
class RunningHub:
    settings: HubSettings
    server: HubServer
    http: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.settings.base_url

    @property
    def hub(self) -> HubResources:
        """The live resources, for assertions on what the network does not show."""
        return cast(HubResources, self.server.lifespan.state[RESOURCES])

    async def token(self, username: str = "officer-li") -> str:
        session = await HubSession.login_async(self.http, username, PASSWORDS[username])
        return session.access_token

    async def auth(self, username: str = "officer-li") -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(username)}"}

    async def printed_timelines(self, alarm_id: str, headers: dict[str, str]) -> dict[str, str]:
        """The alarm's printable timeline (``format=html``) in each language, by language."""
        return {
            lang: (
                await self.http.get(
                    f"/api/alarms/{alarm_id}/timeline?format=html&lang={lang}", headers=headers
                )
            ).text
            for lang in ("zh", "en")
        }

    async def metric(self, name: str, labels: str = "") -> float:
        """One sample of /metrics: ``metric("riverguard_hub_rejected_total", 'reason="x"')``."""
        text = (await self.http.get("/metrics")).text
        key = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return 0.0

    async def wait_metric(self, name: str, at_least: float, labels: str = "") -> None:
        async def reached() -> bool:
            return await self.metric(name, labels) >= at_least

        await wait_for(reached, what=f"{name}{{{labels}}} >= {at_least}")

    @asynccontextmanager
    async def socket(self, token: str, query: str = "") -> AsyncIterator[ClientConnection]:
        """The console WebSocket, the token offered as a subprotocol; ``query`` is
        ``&name=value…``."""
        url = f"ws://127.0.0.1:{self.settings.http_port}/api/ws?{query.removeprefix('&')}"
        async with websockets.connect(url, max_size=None, subprotocols=subprotocols(token)) as ws:
            yield ws


async def _serve(server: HubServer) -> None:
    """``server.serve()``, its exit a failure of this test alone. uvicorn calls
    ``sys.exit`` when it cannot bind its port, and a SystemExit out of a task stops the
    event loop mid-test: the test's clean-up never ran, and what it left running
    broke the worker's next tests (seen in CI: one port taken, 45 failures after)."""
    try:
        await server.serve()
    except SystemExit as exc:
        raise RuntimeError(f"the hub's server exited with code {exc.code}") from None


@asynccontextmanager
async def run_hub(settings: HubSettings, clock: Clock | None = None) -> AsyncIterator[RunningHub]:
    """Serve the hub in this event loop until the block ends; wait for its broker session."""
    server = HubServer(settings, clock)
    task = asyncio.create_task(_serve(server), name="test.hub")
    try:
        await wait_for(lambda: server.started or task.done(), what="hub to start")
        if task.done():
            task.result()
            raise RuntimeError("hub stopped during start-up")
        async with httpx.AsyncClient(base_url=settings.base_url, timeout=10) as http:
            running = RunningHub(settings, server, http)
            await asyncio.wait_for(running.hub.ingest.subscribed.wait(), 10)
            yield running
    finally:
        server.should_exit = True
        await task


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def both_stores(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    """Each kind of state store in turn: ``None`` (the hub's default SQLite file in its data
    dir), then the URL of a fresh database on the session's PostgreSQL server.

    A module whose tests must hold on both overrides ``database_url`` with this.
    """
    if request.param == "sqlite":
        yield None
        return
    # Asked for here, not as an argument: the SQLite runs need no PostgreSQL server.
    server: PostgresServer = request.getfixturevalue("postgres")
    async with fresh_database(server) as url:
        yield url


@pytest.fixture
def database_url() -> str | None:
    """The hub's state store: SQLite. Modules that test both stores override this with
    ``both_stores``."""
    return None


MakeSettings = Callable[..., HubSettings]


@pytest.fixture
async def quiet_broker(broker: Broker) -> Broker:
    """The shared broker without other tests' retained device and edge statuses."""
    await clear_retained_statuses(broker)
    return broker


@pytest.fixture
def make_settings(
    tmp_path: Path,
    quiet_broker: Broker,
    influxd: Influxd,
    influx_database: str,
    database_url: str | None,
) -> MakeSettings:
    """Hub settings on the test's broker, influxd and state store (a new HTTP port each call)."""

    def make(**overrides: Any) -> HubSettings:
        values: dict[str, Any] = {
            "influx_url": influxd.url,
            "influx_database": influx_database,
            "database_url": database_url,
            **overrides,
        }
        url, database = values.pop("influx_url"), values.pop("influx_database")
        return hub_settings(tmp_path, quiet_broker.settings("hub"), url, database, **values)

    return make


async def clear_retained_statuses(broker: Broker) -> None:
    """Remove device and edge statuses other tests left retained on the shared broker.

    A retained ``online: false`` of a fence or camera would leave its zones unguarded
    and move the site's risk colour in every hub test that starts after it.
    """
    config = load_config(EXAMPLE_CONFIG)
    for site in config.sites:
        async with aiomqtt_client(broker.settings(f"edge-{site.id}")) as client:
            topics_ = [topics.edge_status(site.id)]
            topics_ += [topics.device_status(site.id, d.id) for d in config.devices_of(site.id)]
            for topic in topics_:
                # An empty retained message deletes the retained one (MQTT 3.3.1.3).
                await client.publish(topic, b"", qos=1, retain=True)


@pytest.fixture
async def running_hub(make_settings: MakeSettings) -> AsyncIterator[RunningHub]:
    settings = make_settings()
    async with run_hub(settings) as running:
        yield running


@pytest.fixture
async def edge(broker: Broker) -> AsyncIterator[aiomqtt.Client]:
    """An MQTT client logged in as the danshui-bridge edge, subscribed to its commit acks."""
    client = aiomqtt_client(broker.settings(f"edge-{SITE}"))
    async with client:
        yield client


def event_payload(
    seq: int,
    *,
    device: str = "db-fence-01",
    zone: str = "z1",
    kind: str = "fence.breach",
    severity: str = "warning",
    site: str = SITE,
    **extra: Any,
) -> dict[str, Any]:
    """A PROTOCOL 2.1 event, as an edge sends it."""
    now = format_ts(utcnow())
    payload: dict[str, Any] = {
        "id": f"{device}:{seq}",
        "site": site,
        "device": device,
        "kind": kind,
        "zone": zone,
        "ts": now,
        "edge_ts": now,
        "severity": severity,
        "confidence": None,
        "object": None,
        "snapshot": False,
        "attrs": {},
    }
    payload.update(extra)
    return payload


def parsed_event(seq: int, at: datetime, **fields: Any) -> Event:
    """``event_payload``'s event, of device and edge time ``at``, parsed as the hub takes it."""
    return Event.model_validate(event_payload(seq, **{"ts": at, "edge_ts": at, **fields}))


def one_zone_site(**fields: Any) -> Site:
    """Danshui bridge with its one zone ``z1`` and, of the site's rules, only ``fields``:
    the site of the tests of pure alarm, intrusion and risk rules."""
    base = {"id": SITE, "name": "x", "grid": "g", "zones": [{"id": "z1", "name": "z"}]}
    return Site.model_validate({**base, **fields})


def unique_seq() -> int:
    return secrets.randbelow(10**9)


class Inbox:
    """Messages a client received, with a way to wait for one that matches."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def add(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(self, match: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for item in self.items:
                    if match(item):
                        return item
                self._changed.clear()
                await self._changed.wait()


@asynccontextmanager
async def mqtt_inbox(client: aiomqtt.Client, *topic_filters: str) -> AsyncIterator[Inbox]:
    """Subscribe ``client`` and collect ``(topic, json)`` of what arrives."""
    inbox = Inbox()
    for topic_filter in topic_filters:
        await client.subscribe(topic_filter, qos=1)

    async def read() -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            inbox.add((message.topic.value, json.loads(message.payload)))

    async with asyncio.TaskGroup() as tasks:
        reader = tasks.create_task(read(), name="test.mqtt-inbox")
        try:
            yield inbox
        finally:
            reader.cancel()


@asynccontextmanager
async def ws_inbox(ws: ClientConnection) -> AsyncIterator[Inbox]:
    """Collect the decoded messages of a console WebSocket."""
    inbox = Inbox()

    async def read() -> None:
        async for message in ws:
            inbox.add(json.loads(message))

    async with asyncio.TaskGroup() as tasks:
        reader = tasks.create_task(read(), name="test.ws-inbox")
        try:
            yield inbox
        finally:
            reader.cancel()
