"""/healthz and /metrics on the edge's small HTTP port; devices that stop their heartbeats."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from edge.agent import EdgeAgent
from edge.health import HealthServer
from edge.sites import ServedSite
from riverguard.config import Config
from riverguard.services import ManagedProcess, free_port
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import DeviceStatus
from tests.conftest import Broker
from tests.edge.support import (
    SITE,
    component_env,
    edge_settings,
    publisher,
    recording,
    riverguard_process,
    running_edge,
)

pytestmark = pytest.mark.integration


@asynccontextmanager
async def served(agent: EdgeAgent) -> AsyncIterator[httpx.AsyncClient]:
    server = HealthServer([ServedSite.of(agent)], 0)
    server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            yield http
    finally:
        # Joining the server's thread blocks: keep the loop free meanwhile.
        await asyncio.to_thread(server.stop)


async def test_healthz_is_ok_while_connected_and_503_without_the_broker(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    agent = EdgeAgent(edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path), example_config)
    async with running_edge(agent), served(agent) as http:
        response = await http.get("/healthz")
        assert 200 == response.status_code
        body = response.json()
        assert ("ok", SITE, True, 0, 0, True, []) == (
            body["status"],
            body["site"],
            body["broker"],
            body["outbox"],
            body["dropped"],
            body["hub_committing"],
            body["devices_offline"],
        )
        own_broker.server.stop()
        await wait_for(lambda: not agent.ready.is_set(), what="edge notices the broker is gone")
        response = await http.get("/healthz")
        assert 503 == response.status_code
        assert "unavailable" == response.json()["status"]
        own_broker.server.start()
        await wait_for(agent.ready.is_set, what="edge reconnected")


async def test_metrics_are_prometheus_text_and_other_paths_404(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    agent = EdgeAgent(edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path), example_config)
    async with running_edge(agent), served(agent) as http:
        metrics = await http.get("/metrics")
        assert 200 == metrics.status_code
        assert "riverguard_edge_broker_connects_total 1.0" in metrics.text
        assert 404 == (await http.get("/nothing")).status_code
        assert 404 == (await http.get("/audio/../outbox.sqlite3")).status_code
        assert 404 == (await http.get(f"/audio/{'0' * 64}.wav")).status_code


@pytest.fixture
def edge_process(own_broker: Broker, tmp_path: Path) -> Iterator[tuple[ManagedProcess, int]]:
    port = free_port()
    env = component_env(
        own_broker.settings(f"edge-{SITE}"), tmp_path / "edge", RIVERGUARD_METRICS_PORT=str(port)
    )
    process = riverguard_process("edge", ["edge", "--site", SITE], env, tmp_path / "edge.log")
    process.start()
    yield process, port
    process.stop()


async def test_riverguard_edge_serves_healthz_on_riverguard_metrics_port(
    edge_process: tuple[ManagedProcess, int],
) -> None:
    process, port = edge_process

    async def healthy() -> bool:
        try:
            async with httpx.AsyncClient() as http:
                response = await http.get(f"http://127.0.0.1:{port}/healthz")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    try:
        await wait_for(healthy, timeout=15, what="/healthz 200")
    except TimeoutError:
        raise AssertionError(process.log_tail()) from None


async def test_a_device_that_misses_its_heartbeats_is_reported_offline_until_it_speaks(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    relayed = topics.device_status(SITE, "db-fence-02")
    raw = topics.field_status(SITE, "fence", "db-fence-02")
    settings = edge_settings(
        own_broker.settings(f"edge-{SITE}"), tmp_path, device_offline_after_s=0.3
    )
    agent = EdgeAgent(settings, example_config)
    online = json.dumps({"online": True, "battery": 0.9, "rssi": -60})
    async with (
        recording(own_broker.settings("hub"), relayed) as hub_view,
        running_edge(agent),
        publisher(own_broker.settings("sim")) as device,
    ):
        await device.publish(raw, online, qos=1)
        statuses = await hub_view.wait_count(relayed, 2)  # online, then offline by the edge
        assert [True, False] == [DeviceStatus.model_validate_json(s).online for s in statuses]
        assert {"db-fence-02"} == agent.devices_offline
        async with recording(own_broker.settings("hub"), relayed) as late_view:
            [retained] = await late_view.wait_count(relayed, 1)
            assert DeviceStatus.model_validate_json(retained).online is False
        await device.publish(raw, online, qos=1)
        statuses = await hub_view.wait_count(relayed, 3)
        assert DeviceStatus.model_validate_json(statuses[2]).online
        timeouts = agent.metrics.registry.get_sample_value(
            "riverguard_edge_device_heartbeat_timeouts_total"
        )
        assert 1.0 == timeouts


async def test_devices_reported_offline_show_in_healthz(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    settings = edge_settings(
        own_broker.settings(f"edge-{SITE}"), tmp_path, device_offline_after_s=0.2
    )
    agent = EdgeAgent(settings, example_config)
    async with (
        running_edge(agent),
        served(agent) as http,
        publisher(own_broker.settings("sim")) as device,
    ):
        await device.publish(
            topics.field_status(SITE, "camera", "db-cam-02"), '{"online": true}', qos=1
        )
        await wait_for(lambda: bool(agent.devices_offline), what="camera reported offline")
        assert ["db-cam-02"] == (await http.get("/healthz")).json()["devices_offline"]
