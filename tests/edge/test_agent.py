"""The edge agent against a real Mosquitto: events, duplicates, resends, statuses, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.agent import EdgeAgent
from riverguard.config import Config
from riverguard.testing import TINY_JPEG, camera_report, fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.models import MAX_RAW_PAYLOAD_BYTES, DeviceStatus, EdgeStatus, Event
from tests.conftest import Broker
from tests.edge.support import (
    SITE,
    edge_settings,
    keyed,
    publisher,
    recording,
    running_edge,
)

pytestmark = pytest.mark.integration

FENCE = topics.field_report(SITE, "fence", "db-fence-01")
CAMERA = topics.field_report(SITE, "camera", "db-cam-01")
EVENTS = topics.events(SITE)


def _agent(broker: Broker, tmp_path: Path, config: Config, **overrides: object) -> EdgeAgent:
    settings = edge_settings(broker.settings(f"edge-{SITE}"), tmp_path, **overrides)
    return EdgeAgent(settings, config)


def _rejected(agent: EdgeAgent, reason: str) -> float:
    value = agent.metrics.registry.get_sample_value(
        "riverguard_edge_rejected_total", {"reason": reason}
    )
    return value or 0.0


def _events(payloads: list[bytes]) -> list[Event]:
    return [Event.model_validate_json(payload) for payload in payloads]


async def test_raw_fence_report_reaches_the_hub_topic_as_an_event(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    hub = own_broker.settings("hub")
    async with (
        recording(hub, EVENTS) as hub_view,
        running_edge(_agent(own_broker, tmp_path, example_config)) as agent,
        publisher(own_broker.settings("sim")) as device,
    ):
        await device.publish(FENCE, json.dumps(fence_report(1842, "z1")), qos=1)
        [event] = _events(await hub_view.wait_count(EVENTS, 1))
        assert (*keyed(agent, "db-fence-01:1842"), "fence.breach", "warning") == (
            event.id,
            event.kind,
            event.severity,
        )
        assert (SITE, "db-fence-01", "z1") == (event.site, event.device, event.zone)
        assert 1 == len(agent.outbox)


async def test_camera_snapshot_is_published_before_its_event(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    hub = own_broker.settings("hub")
    snapshots = topics.snapshot(SITE, "+")
    async with (
        recording(hub, EVENTS, snapshots) as hub_view,
        running_edge(_agent(own_broker, tmp_path, example_config)) as agent,
        publisher(own_broker.settings("sim")) as device,
    ):
        payload = camera_report(77, "z1", snapshot=TINY_JPEG)
        await device.publish(CAMERA, json.dumps(payload), qos=1)
        [event] = _events(await hub_view.wait_count(EVENTS, 1))
        snapshot_topic = topics.snapshot(SITE, *keyed(agent, "db-cam-01:77"))
        assert [TINY_JPEG] == hub_view.on(snapshot_topic)
        assert [snapshot_topic, EVENTS] == hub_view.topics()
        assert event.snapshot is True
        assert "critical" == event.severity


async def test_fence_then_camera_in_same_zone_is_correlated_end_to_end(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    async with (
        recording(own_broker.settings("hub"), EVENTS) as hub_view,
        running_edge(_agent(own_broker, tmp_path, example_config)) as agent,
        publisher(own_broker.settings("sim")) as device,
    ):
        await device.publish(FENCE, json.dumps(fence_report(1, "z1")), qos=1)
        await device.publish(CAMERA, json.dumps(camera_report(2, "z1", rule="intrusion")), qos=1)
        fence, camera = _events(await hub_view.wait_count(EVENTS, 2))
        assert "warning" == fence.severity
        correlated = keyed(agent, "db-fence-01:1")
        assert ("critical", correlated) == (camera.severity, camera.attrs["correlated"])
        assert 1.0 == agent.metrics.registry.get_sample_value("riverguard_edge_correlated_total")


async def test_duplicate_report_is_not_republished(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    async with (
        recording(own_broker.settings("hub"), EVENTS) as hub_view,
        running_edge(_agent(own_broker, tmp_path, example_config)) as agent,
        publisher(own_broker.settings("sim")) as device,
    ):
        first = json.dumps(fence_report(5, "z1"))
        await device.publish(FENCE, first, qos=1)
        await device.publish(FENCE, first, qos=1)
        await device.publish(FENCE, json.dumps(fence_report(6, "z1")), qos=1)
        # Reports are handled in order: once seq 6 is out, the duplicate had its chance.
        events = _events(await hub_view.wait_count(EVENTS, 2))
        assert keyed(agent, "db-fence-01:5", "db-fence-01:6") == [event.id for event in events]
        assert 1.0 == _rejected(agent, "duplicate")


async def test_event_is_resent_until_committed_and_not_after(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    committed_topic = topics.committed(SITE)
    agent = _agent(own_broker, tmp_path, example_config, commit_timeout_s=0.2)
    async with (
        recording(own_broker.settings("hub"), EVENTS) as hub_view,
        running_edge(agent),
        publisher(own_broker.settings("sim")) as device,
        publisher(own_broker.settings("hub")) as hub,
    ):
        await device.publish(FENCE, json.dumps(fence_report(10, "z1")), qos=1)
        await hub_view.wait_count(EVENTS, 3)  # the first send and two resends
        ten, eleven = keyed(agent, "db-fence-01:10", "db-fence-01:11")
        await hub.publish(committed_topic, json.dumps({"ids": [ten]}), qos=1)
        await wait_for(lambda: 0 == len(agent.outbox), what="outbox emptied by the commit")
        sends_of_10 = len(hub_view.on(EVENTS))

        # A second, uncommitted event is the clock: two resends of it mean two
        # more resend rounds in which the committed one was not sent.
        await device.publish(FENCE, json.dumps(fence_report(11, "z1")), qos=1)

        def sends(event_id: str) -> int:
            return sum(1 for event in _events(hub_view.on(EVENTS)) if event.id == event_id)

        await wait_for(lambda: sends(eleven) >= 3, what="event 11 resent twice")
        assert sends_of_10 == sends(ten)
        resent = agent.metrics.registry.get_sample_value("riverguard_edge_resent_total")
        assert (resent or 0) >= 4


async def test_uncommitted_events_are_resent_after_a_broker_restart(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    hub = own_broker.settings("hub")
    agent = _agent(own_broker, tmp_path, example_config, commit_timeout_s=60)
    async with running_edge(agent):
        # The hub's persistent session queues what the edge resends before it is back.
        async with (
            recording(hub, EVENTS, session="test-hub") as hub_view,
            publisher(own_broker.settings("sim")) as device,
        ):
            await device.publish(FENCE, json.dumps(fence_report(20, "z1")), qos=1)
            await hub_view.wait_count(EVENTS, 1)
        own_broker.server.stop()
        await wait_for(lambda: not agent.ready.is_set(), what="edge notices the broker is gone")
        own_broker.server.start()
        await wait_for(agent.ready.is_set, what="edge reconnected")
        async with recording(hub, EVENTS, session="test-hub") as hub_view:
            [event] = _events(await hub_view.wait_count(EVENTS, 1))
            assert keyed(agent, "db-fence-01:20") == [event.id]
            assert 1 == len(agent.outbox)


async def test_device_status_is_relayed_retained_with_edge_time(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    status_topic = topics.device_status(SITE, "db-cam-01")
    async with (
        recording(own_broker.settings("hub"), status_topic) as hub_view,
        running_edge(_agent(own_broker, tmp_path, example_config)),
        publisher(own_broker.settings("sim")) as device,
    ):
        raw = json.dumps({"online": True, "battery": 0.5, "rssi": -60})
        await device.publish(
            topics.field_status(SITE, "camera", "db-cam-01"), raw, qos=1, retain=True
        )
        await hub_view.wait_count(status_topic, 1)
    # A hub connecting later still gets it: it was retained.
    async with recording(own_broker.settings("hub"), status_topic) as late_view:
        [payload] = await late_view.wait_count(status_topic, 1)
        assert late_view.messages[0].retain
        status = DeviceStatus.model_validate_json(payload)
        assert (True, 0.5, -60) == (status.online, status.battery, status.rssi)


async def test_edge_status_online_on_every_connect_and_stopped_on_clean_stop(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    edge_status = topics.edge_status(SITE)
    async with recording(own_broker.settings("hub"), edge_status) as hub_view:
        for run in (1, 2):
            async with running_edge(_agent(own_broker, tmp_path, example_config)):
                online = (await hub_view.wait_count(edge_status, 2 * run - 1))[-1]
                status = EdgeStatus.model_validate_json(online)
                assert (True, "online", "0.1.0", 0) == (
                    status.online,
                    status.state,
                    status.version,
                    status.outbox,
                )
            stopped = EdgeStatus.model_validate_json(
                (await hub_view.wait_count(edge_status, 2 * run))[-1]
            )
            assert (False, "stopped") == (stopped.online, stopped.state)
    async with recording(own_broker.settings("hub"), edge_status) as late_view:
        [retained] = await late_view.wait_count(edge_status, 1)
        assert "stopped" == EdgeStatus.model_validate_json(retained).state


def test_edge_status_without_state_takes_it_from_online_and_refuses_contradictions() -> None:
    """Statuses from before ``state`` existed still parse; a contradictory one does not."""
    ts = "2026-07-27T21:21:05.123Z"
    assert "offline" == EdgeStatus.model_validate({"online": False, "ts": ts}).state
    assert "online" == EdgeStatus.model_validate({"online": True, "ts": ts}).state
    for online, state in ((True, "stopped"), (False, "online")):
        with pytest.raises(ValidationError, match="contradicts"):
            EdgeStatus.model_validate({"online": online, "state": state, "ts": ts})


async def test_bad_input_is_counted_and_the_edge_goes_on(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    sim = own_broker.settings("sim")
    async with (
        recording(own_broker.settings("hub"), EVENTS) as hub_view,
        running_edge(_agent(own_broker, tmp_path, example_config)) as agent,
        publisher(sim) as device,
        publisher(own_broker.settings("hub")) as hub,
    ):
        bad_snapshot = camera_report(3, "z1")
        bad_snapshot["snapshot"] = "bm90IGEganBlZw=="  # base64 of "not a jpeg"
        cases: list[tuple[str, str | bytes]] = [
            (FENCE, b"{not json"),
            (FENCE, json.dumps({**fence_report(1, "z1"), "seq": "one"}).encode()),
            (FENCE, b"x" * (MAX_RAW_PAYLOAD_BYTES + 1)),
            (topics.field_report(SITE, "fence", "fence-99"), json.dumps(fence_report(1, "z1"))),
            (
                topics.field_report(SITE, "camera", "db-fence-01"),
                json.dumps(camera_report(1, "z1")),
            ),
            (FENCE, json.dumps(fence_report(2, "z7"))),
            (topics.field_status(SITE, "fence", "db-fence-01"), b'{"online": "maybe"}'),
            (topics.committed(SITE), b'{"ids": 5}'),
            (CAMERA, json.dumps(bad_snapshot)),
            (FENCE, json.dumps(fence_report(4, "z1"))),
        ]
        for topic, payload in cases:
            # Only the hub may publish commit acknowledgements.
            sender = hub if topic == topics.committed(SITE) else device
            await sender.publish(topic, payload, qos=1)
        events = _events(await hub_view.wait_count(EVENTS, 2))
        # The camera event survived without its snapshot; the good fence report came through.
        assert keyed(agent, "db-cam-01:3", "db-fence-01:4") == [event.id for event in events]
        assert events[0].snapshot is False
        expected = {
            "malformed_json": 1.0,
            "invalid": 3.0,
            "oversize": 1.0,
            "unknown_device": 2.0,
            "unknown_zone": 1.0,
            "bad_snapshot": 1.0,
            "internal": 0.0,
        }
        assert expected == {reason: _rejected(agent, reason) for reason in expected}
        assert agent.ready.is_set()
