"""Nothing lost, nothing stored twice: the edge killed mid-burst, the broker and the hub away.

Each test acts as the hub with ``Committer`` (it commits what it receives,
PROTOCOL 3.3) and counts event ids: ``missing`` must be empty and every id is
stored once (duplicates on the wire are allowed: delivery is at least once).
The figures they print are the ones the edge's report quotes:
``pytest tests/edge/test_faults.py -s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from riverguard.config import Config
from riverguard.services import ManagedProcess
from riverguard.testing import wait_for
from riverguard.wire import topics
from tests.conftest import Broker
from tests.edge.support import (
    SITE,
    Committer,
    FenceBurst,
    background,
    component_env,
    edge_settings,
    minted_ids,
    outbox_rows,
    recording,
    riverguard_process,
    running_edge,
)

pytestmark = pytest.mark.integration

DEVICE = "db-fence-01"


def _report(what: str, hub: Committer, count: int, data_dir: Path) -> None:
    missing = set(minted_ids(DEVICE, count, data_dir)) - set(hub.stored)
    doubled = len(hub.deliveries) - len(hub.stored)
    print(  # the figures the report quotes
        f"\n{what}: {count} events, {len(missing)} lost, {len(hub.stored)} stored once each,"
        f" {doubled} duplicate deliveries absorbed by the id"
    )


@pytest.fixture
def edge_process(own_broker: Broker, tmp_path: Path) -> Iterator[ManagedProcess]:
    env = component_env(
        own_broker.settings(f"edge-{SITE}"),
        tmp_path / "edge",
        RIVERGUARD_COMMIT_TIMEOUT_S="2",
        RIVERGUARD_RESEND_PER_S="5000",
    )
    process = riverguard_process("edge", ["edge", "--site", SITE], env, tmp_path / "edge.log")
    yield process
    process.stop()


async def test_edge_killed_mid_burst_loses_nothing_and_stores_nothing_twice(
    own_broker: Broker, tmp_path: Path, edge_process: ManagedProcess
) -> None:
    count = 3_000
    hub = Committer(own_broker.settings("hub"), SITE)
    device = FenceBurst(own_broker.settings("sim"), SITE, DEVICE, "z1")
    outbox = tmp_path / "edge" / "outbox.sqlite3"
    async with (
        background(hub.run(), "test.hub"),
        recording(own_broker.settings("hub"), topics.edge_status(SITE)) as statuses,
    ):
        await wait_for(hub.ready.is_set, what="hub subscribed")
        edge_process.start()
        try:
            await statuses.wait_count(topics.edge_status(SITE), 1, timeout=15)
        except TimeoutError:
            raise AssertionError(edge_process.log_tail()) from None
        async with background(device.run(count), "test.device") as burst:
            try:
                await wait_for(lambda: len(hub.stored) >= count // 4, timeout=20, what="burst")
            except TimeoutError:
                raise AssertionError(edge_process.log_tail()) from None
            edge_process.kill()  # SIGKILL, in the middle of the burst
            killed_at = len(hub.stored)
            edge_process.start()
            await asyncio.wait_for(burst, 30)
            await wait_for(
                lambda: len(hub.stored) >= count,
                timeout=30,
                what=f"all {count} events at the hub; have {len(hub.stored)}",
            )
        await wait_for(lambda: 0 == outbox_rows(outbox), what="the outbox drained")
    _report(f"SIGKILL after {killed_at} events", hub, count, tmp_path / "edge")
    assert set(minted_ids(DEVICE, count, tmp_path / "edge")) == set(hub.stored)
    assert count == len(hub.stored)
    assert killed_at < count  # the kill really was mid-burst


async def test_broker_down_for_ten_seconds_loses_nothing(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    """Devices keep publishing (buffering, as controllers do) while the broker is away."""
    rate, count = 100, 2_000  # 20 s of reports; the broker is away for 10 of them
    agent = EdgeAgent(
        edge_settings(
            own_broker.settings(f"edge-{SITE}"), tmp_path, commit_timeout_s=2, resend_per_s=5000
        ),
        example_config,
    )
    hub = Committer(own_broker.settings("hub"), SITE)
    device = FenceBurst(own_broker.settings("sim"), SITE, DEVICE, "z1")
    async with background(hub.run(), "test.hub"), running_edge(agent):
        await wait_for(hub.ready.is_set, what="hub subscribed")
        async with background(device.run(count, per_s=rate), "test.device") as burst:
            await wait_for(lambda: len(hub.stored) >= 2 * rate, what="two seconds of events")
            own_broker.server.stop()
            stopped_at = len(hub.stored)
            await asyncio.sleep(10)  # the outage itself, not a wait for something
            own_broker.server.start()
            await asyncio.wait_for(burst, 60)
            await wait_for(
                lambda: len(hub.stored) >= count,
                timeout=30,
                what=f"all {count} events at the hub; have {len(hub.stored)}",
            )
        await wait_for(lambda: 0 == len(agent.outbox), what="the outbox drained")
    _report(f"broker down 10 s after {stopped_at} events", hub, count, tmp_path)
    assert set(minted_ids(DEVICE, count, tmp_path)) == set(hub.stored)
    assert device.retries >= 1  # the device really met the outage


@pytest.mark.parametrize("hub_session", ["persistent", "clean"])
async def test_hub_down_for_thirty_seconds_outbox_grows_then_drains_in_order(
    own_broker: Broker, tmp_path: Path, example_config: Config, hub_session: str
) -> None:
    """A persistent hub gets the broker's queue back; a clean one needs the edge's resends."""
    rate, outage_s = 100, 30.0
    agent = EdgeAgent(
        edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path, commit_timeout_s=5),
        example_config,
    )
    persistent = hub_session == "persistent"
    hub = Committer(own_broker.settings("hub"), SITE, persistent=persistent)
    device = FenceBurst(own_broker.settings("sim"), SITE, DEVICE, "z1")
    count = int(rate * (outage_s + 5))
    async with running_edge(agent):
        async with background(hub.run(), "test.hub"):
            await wait_for(hub.ready.is_set, what="hub subscribed")
        # The hub is gone; devices go on reporting.
        async with background(device.run(count, per_s=rate), "test.device") as burst:
            await asyncio.sleep(outage_s)  # the outage itself, not a wait for something
            backlog = [
                event_id
                for event_id in minted_ids(DEVICE, count, tmp_path)
                if event_id in agent.outbox
            ]
            assert len(backlog) >= rate * outage_s * 0.9  # the outbox grew
            back_at = time.monotonic()
            async with background(hub.run(), "test.hub.back"):
                await wait_for(
                    lambda: not any(event_id in agent.outbox for event_id in backlog),
                    timeout=60,
                    what="the backlog committed",
                )
                drained_s = time.monotonic() - back_at
                await asyncio.wait_for(burst, 30)
                await wait_for(lambda: 0 == len(agent.outbox), what="the outbox drained")
    _report(f"hub ({hub_session} session) down {outage_s:.0f} s", hub, count, tmp_path)
    print(
        f"hub ({hub_session} session) down {outage_s:.0f} s: backlog of {len(backlog)} events"
        f" committed {drained_s:.2f} s after the hub came back"
        f" = {len(backlog) / drained_s:.0f} events/s (while {rate}/s kept arriving)"
    )
    assert set(minted_ids(DEVICE, count, tmp_path)) == set(hub.stored)
    arrival = [event_id for event_id in hub.first_seen() if event_id in set(backlog)]
    assert backlog == arrival  # drained in order


async def test_burst_throughput_through_the_edge_with_the_disk_outbox(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    """Device -> edge (SQLite outbox, fsync'd) -> hub commits, as fast as one device publishes."""
    count = 5_000
    agent = EdgeAgent(edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path), example_config)
    hub = Committer(own_broker.settings("hub"), SITE)
    device = FenceBurst(own_broker.settings("sim"), SITE, DEVICE, "z1")
    async with background(hub.run(), "test.hub"), running_edge(agent):
        await wait_for(hub.ready.is_set, what="hub subscribed")
        start = time.monotonic()
        async with background(device.run(count, batch=100), "test.device") as burst:
            await asyncio.wait_for(burst, 60)
            await wait_for(lambda: len(hub.stored) >= count, timeout=60, what="all stored")
            stored_s = time.monotonic() - start
            await wait_for(lambda: 0 == len(agent.outbox), what="all committed")
            committed_s = time.monotonic() - start
    _report("burst", hub, count, tmp_path)
    print(
        f"burst: {count} events device->edge->hub in {stored_s:.2f} s"
        f" = {count / stored_s:.0f} events/s; all committed after {committed_s:.2f} s"
    )
    assert set(minted_ids(DEVICE, count, tmp_path)) == set(hub.stored)
