"""The edge against the real hub: the broker away for 10 s, then the edge SIGKILLed mid-burst.

Unlike ``test_faults`` (a stand-in hub that only counts), the hub here is the
real one (uvicorn, SQLite, InfluxDB) and what is counted is what it stored:
every event id once, every event in at most one alarm, once. The figures it
prints are the ones the edge's report quotes (``-s``). Also: a clean shutdown
reaches the hub as ``stopped``, not ``offline``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from riverguard.config import load_config
from riverguard.services import Influxd, ManagedProcess
from riverguard.testing import wait_for
from riverguard.wire import topics
from tests.conftest import EXAMPLE_CONFIG, Broker
from tests.edge.support import (
    SITE,
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
from tests.hub.conftest import hub_settings, run_hub

pytestmark = pytest.mark.integration

DEVICE = "db-fence-01"


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


async def test_broker_outage_and_edge_sigkill_lose_and_double_nothing_at_the_real_hub(
    own_broker: Broker,
    tmp_path: Path,
    influxd: Influxd,
    influx_database: str,
    edge_process: ManagedProcess,
) -> None:
    rate, count = 150, 3_000  # 20 s of reports from one fence controller
    settings = hub_settings(tmp_path, own_broker.settings("hub"), influxd.url, influx_database)
    device = FenceBurst(own_broker.settings("sim"), SITE, DEVICE, "z1")
    outbox = tmp_path / "edge" / "outbox.sqlite3"
    async with run_hub(settings) as hub:

        async def committed() -> int:
            return int(await hub.metric("riverguard_hub_events_total"))

        async def committed_at_least(number: int) -> bool:
            return await committed() >= number

        async with recording(own_broker.settings("hub"), topics.edge_status(SITE)) as statuses:
            edge_process.start()
            try:
                await statuses.wait_count(topics.edge_status(SITE), 1, timeout=15)
            except TimeoutError:
                raise AssertionError(edge_process.log_tail()) from None
        async with background(device.run(count, per_s=rate), "test.device") as burst:
            await wait_for(lambda: committed_at_least(2 * rate), what="2 s of events committed")
            own_broker.server.stop()
            broker_stopped_at = await committed()
            await asyncio.sleep(10)  # the outage itself, not a wait for something
            own_broker.server.start()
            await wait_for(
                lambda: committed_at_least(broker_stopped_at + 2 * rate),
                timeout=30,
                what="commits again after the broker's return",
            )
            edge_process.kill()  # SIGKILL, in the middle of the burst
            killed_at = await committed()
            edge_process.start()
            await asyncio.wait_for(burst, 60)
            try:
                await wait_for(
                    lambda: committed_at_least(count), timeout=30, what=f"all {count} committed"
                )
            except TimeoutError:
                raise AssertionError(edge_process.log_tail()) from None
        await wait_for(lambda: 0 == outbox_rows(outbox), what="the edge's outbox drained")
        store = hub.hub.store
        expected = minted_ids(
            DEVICE, count, tmp_path / "edge"
        )  # the key the edge made, kept across SIGKILL
        stored = await store.events.existing_ids(expected)
        alarms = (await hub.http.get("/api/alarms", headers=await hub.auth())).json()
        in_alarms = [
            event.id for alarm in alarms for event, _ in await store.events.of_alarm(alarm["id"])
        ]
        duplicates = await hub.metric("riverguard_hub_duplicates_total")
    print(  # the figures the report quotes
        f"\nreal hub: {count} events; broker down 10 s after {broker_stopped_at} committed,"
        f" edge SIGKILL after {killed_at}; stored {len(stored)}, lost"
        f" {count - len(stored)}; {duplicates:.0f} duplicate deliveries absorbed by the id;"
        f" {len(in_alarms)} alarm links ({len(set(in_alarms))} distinct)"
    )
    assert broker_stopped_at < killed_at < count  # both faults really were mid-burst
    assert device.retries >= 1  # the device really met the outage
    assert set(expected) == stored
    assert len(set(in_alarms)) == len(in_alarms)  # no event joined an alarm twice
    assert set(in_alarms) <= stored


async def test_a_clean_edge_shutdown_is_stopped_at_the_hub_not_offline(
    own_broker: Broker, influxd: Influxd, influx_database: str, tmp_path: Path
) -> None:
    agent = EdgeAgent(
        edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path / "edge"),
        load_config(EXAMPLE_CONFIG),
    )
    settings = hub_settings(tmp_path, own_broker.settings("hub"), influxd.url, influx_database)
    async with run_hub(settings) as hub:

        def edge_state() -> str | None:
            row = hub.hub.picture.edges.get(SITE)
            return row.state if row is not None else None

        async with running_edge(agent):
            await wait_for(lambda: "online" == edge_state(), what="the edge online at the hub")
        await wait_for(lambda: "stopped" == edge_state(), what="the edge stopped at the hub")
        [stored] = [row for row in await hub.hub.store.devices.load_edges() if row.site == SITE]

    assert (False, "stopped") == (stored.online, stored.state)
