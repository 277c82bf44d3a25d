"""Event batches (PROTOCOL 7.12): the edge batches only while the hub's status says it may.

First against statuses published by the test (none, online with and without
``events/batch``, offline, deleted), then end to end against the real hub run
as a process: batches stored, acknowledged and pushed; the hub SIGKILLed, its
last will arriving, and the edge back to one event per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from edge.agent import EdgeAgent
from riverguard.config import Config
from riverguard.hub_session import HubSession
from riverguard.services import Influxd, ManagedProcess, free_port
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.event_ids import derived_id
from riverguard.wire.models import EVENT_BATCH, HubStatus
from riverguard.wire.socket_auth import subprotocols
from riverguard.wire.times import utcnow
from tests.conftest import Broker
from tests.edge.support import (
    SITE,
    Recorder,
    background,
    component_env,
    edge_settings,
    publisher,
    recording,
    riverguard_process,
    running_edge,
)
from tests.hub.conftest import PASSWORDS

pytestmark = pytest.mark.integration

FENCE = topics.field_report(SITE, "fence", "db-fence-01")
EVENTS = topics.events(SITE)
BATCH = topics.event_batch(SITE)
HUB_STATUS = topics.hub_status()


def _status(state: str, accepts: tuple[str, ...] = (EVENT_BATCH,)) -> bytes:
    status = HubStatus(
        online=state == "online", state=state, accepts=list(accepts), version="t", ts=utcnow()
    )
    return status.model_dump_json().encode()


def _report(seq: int) -> str:
    # Alternating states: every report is a distinct, kept event (not debounced).
    return json.dumps(fence_report(seq, "z1", "breach" if seq % 2 else "clear"))


def _single_ids(view: Recorder) -> list[str]:
    return [derived_id(json.loads(payload)["id"]) for payload in view.on(EVENTS)]


def _batched_ids(view: Recorder) -> list[str]:
    return [derived_id(event["id"]) for payload in view.on(BATCH) for event in json.loads(payload)]


def _ids(seqs: range) -> list[str]:
    return [f"db-fence-01:{seq}" for seq in seqs]


async def test_the_edge_batches_only_while_the_hub_status_says_online_with_batches(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    agent = EdgeAgent(edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path), example_config)
    async with (
        recording(own_broker.settings("hub"), EVENTS, BATCH) as view,
        running_edge(agent),
        publisher(own_broker.settings("sim")) as device,
        publisher(own_broker.settings("hub")) as hub,
    ):

        async def reports(seqs: range) -> None:
            for seq in seqs:
                await device.publish(FENCE, _report(seq), qos=1)
            await wait_for(
                lambda: set(_ids(seqs)) <= set(_single_ids(view) + _batched_ids(view)),
                what=f"events {seqs} sent",
            )

        async def hub_says(status: bytes, takes: bool) -> None:
            await hub.publish(HUB_STATUS, status, qos=1, retain=True)
            await wait_for(lambda: takes == agent.hub_takes_batches, what=f"batches {takes}")

        await reports(range(1, 4))  # no hub status at all
        await hub_says(_status("online"), True)
        await reports(range(4, 10))
        await hub_says(_status("online", accepts=()), False)  # a hub without batches
        await reports(range(10, 13))
        await hub_says(_status("online"), True)
        await reports(range(13, 16))
        await hub_says(_status("offline"), False)
        await reports(range(16, 19))
        await hub_says(_status("online"), True)
        await hub_says(b"", False)  # the retained status deleted
        await reports(range(19, 22))

    assert _ids(range(1, 4)) + _ids(range(10, 13)) + _ids(range(16, 22)) == _single_ids(view)
    assert _ids(range(4, 10)) + _ids(range(13, 16)) == _batched_ids(view)
    assert 0 == agent.metrics.registry.get_sample_value(
        "riverguard_edge_rejected_total", {"reason": "invalid"}
    )


@pytest.fixture
def hub_process(
    own_broker: Broker, tmp_path: Path, influxd: Influxd, influx_database: str
) -> Iterator[ManagedProcess]:
    users = tmp_path / "users.json"
    users.write_text(json.dumps(PASSWORDS), encoding="utf-8")
    env = component_env(
        own_broker.settings("hub"),
        tmp_path / "hub",
        RIVERGUARD_HTTP_PORT=str(free_port()),
        RIVERGUARD_INFLUX_URL=influxd.url,
        RIVERGUARD_INFLUX_DATABASE=influx_database,
        RIVERGUARD_USERS_FILE=str(users),
        # The test reads the hub's counters without a login.
        RIVERGUARD_METRICS_ACCESS="open",
        RIVERGUARD_ARGON2_TIME_COST="1",
        RIVERGUARD_ARGON2_MEMORY_KIB="1024",
    )
    process = riverguard_process("hub", ["hub"], env, tmp_path / "hub.log")
    yield process
    process.stop()


def _online_statuses(view: Recorder) -> int:
    return sum(HubStatus.model_validate_json(p).online for p in view.on(HUB_STATUS) if p)


async def test_edge_to_real_hub_in_batches_then_singles_after_its_last_will(
    own_broker: Broker, tmp_path: Path, example_config: Config, hub_process: ManagedProcess
) -> None:
    """Batched events are stored, acknowledged (the outbox empties) and pushed; a hub
    killed leaves its will, the edge sends singles, and batches again once it is back."""
    env = hub_process.env or {}
    url = f"http://127.0.0.1:{env['RIVERGUARD_HTTP_PORT']}"
    agent = EdgeAgent(
        edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path / "edge"), example_config
    )
    pushed: list[str] = []
    hello = asyncio.Event()

    async def console(token: str) -> None:
        ws_url = f"ws://127.0.0.1:{env['RIVERGUARD_HTTP_PORT']}/api/ws"
        # Until the hub is killed.
        with contextlib.suppress(websockets.ConnectionClosed):
            async with websockets.connect(
                f"{ws_url}?events={SITE}", subprotocols=subprotocols(token)
            ) as ws:
                async for message in ws:
                    item = json.loads(message)
                    hello.set()
                    if item["type"] == "event":
                        pushed.append(derived_id(item["data"]["id"]))

    async with (
        recording(own_broker.settings("observer"), EVENTS, BATCH, HUB_STATUS) as view,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        hub_process.start()
        try:
            await wait_for(lambda: _online_statuses(view) >= 1, timeout=30, what="hub online")
        except TimeoutError:
            raise AssertionError(hub_process.log_tail()) from None
        token = (await HubSession.login_async(http, "viewer", PASSWORDS["viewer"])).access_token

        async def stored() -> float:
            for line in (await http.get("/metrics")).text.splitlines():
                if line.startswith("riverguard_hub_events_total "):
                    return float(line.split()[-1])
            return 0.0

        async with (
            running_edge(agent),
            publisher(own_broker.settings("sim")) as device,
            background(console(token), "test.console"),
        ):

            async def reports(seqs: range) -> None:
                for seq in seqs:
                    await device.publish(FENCE, _report(seq), qos=1)

            await wait_for(lambda: agent.hub_takes_batches, what="the edge told of batches")
            await asyncio.wait_for(hello.wait(), 10)
            await reports(range(1, 41))
            await wait_for(lambda: set(_ids(range(1, 41))) <= set(pushed), what="40 pushed")
            await wait_for(lambda: 0 == len(agent.outbox), what="the outbox empty")
            assert 40.0 == await stored()
            assert _ids(range(1, 41)) == _batched_ids(view)
            assert [] == _single_ids(view)

            hub_process.kill()  # SIGKILL: the broker publishes the hub's last will
            await wait_for(lambda: not agent.hub_takes_batches, what="the hub's will heard")
            assert not HubStatus.model_validate_json(view.on(HUB_STATUS)[-1]).online
            await reports(range(41, 46))
            await wait_for(lambda: _ids(range(41, 46)) == _single_ids(view), what="5 singles")

            hub_process.start()
            await wait_for(lambda: agent.hub_takes_batches, timeout=30, what="the hub back")
            await reports(range(46, 51))
            await wait_for(lambda: 0 == len(agent.outbox), timeout=30, what="the outbox empty")
        assert 10.0 == await stored()  # by the restarted hub: 41-45 alone, 46-50 batched
        assert set(_ids(range(46, 51))) <= set(_batched_ids(view))
        # Sent alone while the hub was away (probes of the resender among them, maybe).
        assert set(_ids(range(41, 46))) == set(_single_ids(view))
