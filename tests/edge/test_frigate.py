"""Frigate events (PROTOCOL 1.3) become one riverguard event per Frigate event id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.adapters import LateSnapshot
from edge.agent import EdgeAgent
from edge.errors import Rejected, Skipped
from edge.normalizer import Normalizer
from edge.sources import Raw, build_sources
from edge.sources.frigate import SNAPSHOT_MAX_AGE_S, FrigateSource
from riverguard.config import Config
from riverguard.testing import TINY_JPEG, fence_report
from riverguard.wire import topics
from riverguard.wire.models import Event
from riverguard.wire.topics import FieldTopic
from tests.conftest import Broker
from tests.edge.support import (
    FRIGATE_CAMERA,
    SITE,
    config_with_frigate_camera,
    edge_settings,
    frigate_message,
    keyed,
    publisher,
    recording,
    running_edge,
)

EDGE_TS = datetime(2024, 7, 27, 21, 21, 8, tzinfo=UTC)
SNAPSHOT = topics.frigate_snapshot(FRIGATE_CAMERA)
EVENT_ID = "db-frigate-01:frigate-1722115265.123456-k3x9qa"


@pytest.fixture
def config(example_config: Config) -> Config:
    return config_with_frigate_camera(example_config)


@pytest.fixture
def normalizer(config: Config) -> Normalizer:
    return Normalizer.for_site(config, SITE)


@pytest.fixture
def source(normalizer: Normalizer) -> FrigateSource:
    [frigate] = build_sources(normalizer.site, normalizer.devices)
    assert isinstance(frigate, FrigateSource)
    return frigate


def _event(message: dict[str, Any]) -> Raw:
    return Raw(topics.frigate_events(), json.dumps(message).encode())


def _handle(normalizer: Normalizer, source: FrigateSource, raw: Raw, at: datetime = EDGE_TS) -> Any:
    return normalizer.vendor(source, raw, at)


def _skipped(normalizer: Normalizer, source: FrigateSource, raw: Raw) -> str:
    with pytest.raises(Skipped) as caught:
        _handle(normalizer, source, raw)
    return caught.value.reason


def _rejected(normalizer: Normalizer, source: FrigateSource, raw: Raw) -> str:
    with pytest.raises(Rejected) as caught:
        _handle(normalizer, source, raw)
    return caught.value.reason


def test_frigate_source_subscribes_to_events_and_person_snapshots(source: FrigateSource) -> None:
    assert ["frigate/events", "frigate/+/person/snapshot"] == source.subscriptions()


def test_a_site_without_frigate_cameras_has_no_frigate_source(example_config: Config) -> None:
    normalizer = Normalizer.for_site(example_config, SITE)
    assert [] == build_sources(normalizer.site, normalizer.devices)


def test_new_without_zones_then_update_in_zone_makes_one_event(
    normalizer: Normalizer, source: FrigateSource
) -> None:
    assert "no_zone" == _skipped(normalizer, source, _event(frigate_message("new")))
    [adapted] = _handle(
        normalizer, source, _event(frigate_message("update", current_zones=["water_edge"]))
    )
    event = adapted.event
    assert EVENT_ID == event.id
    assert ("camera.water_entry", "critical", "z2") == (event.kind, event.severity, event.zone)
    assert ("person", 0.83984375) == (event.object, event.confidence)
    assert datetime.fromtimestamp(1722115267.45, tz=UTC) == event.ts
    assert {"frigate_id": "1722115265.123456-k3x9qa", "frigate_zones": ["water_edge"]} == (
        event.attrs
    )
    assert adapted.seq is None
    assert event.snapshot is False


def test_the_newer_frigate_shape_with_a_snapshot_object_and_sub_label_pair_is_read(
    normalizer: Normalizer, source: FrigateSource
) -> None:
    """Frigate 0.13+ nests the best snapshot's box in ``snapshot`` and may name the person."""
    message = frigate_message("update", current_zones=["water_edge"], has_snapshot=True)
    for side in ("before", "after"):
        message[side].update(
            snapshot={
                "frame_time": 1722115266.9,
                "box": [410, 190, 470, 330],
                "area": 8400,
                "region": [280, 100, 600, 420],
                "score": 0.83984375,
                "attributes": [],
            },
            sub_label=["lifeguard-on-duty", 0.71],
            current_attributes=[{"label": "face", "box": [430, 190, 450, 214], "score": 0.6}],
            attributes={"face": 0.6},
            recognized_license_plate=None,
        )
    [adapted] = _handle(normalizer, source, _event(message))
    assert (EVENT_ID, "z2", 0.83984375) == (
        adapted.event.id,
        adapted.event.zone,
        adapted.event.confidence,
    )
    assert adapted.event.snapshot is False  # a JPEG only comes on the snapshot topic


def test_updates_after_the_event_make_no_new_event_and_end_closes_it(
    normalizer: Normalizer, source: FrigateSource
) -> None:
    _handle(normalizer, source, _event(frigate_message("new", current_zones=["water_edge"])))
    update = _event(frigate_message("update", current_zones=["water_edge"], frame_time=1722115268))
    assert "emitted" == _skipped(normalizer, source, update)
    assert [] == _handle(normalizer, source, _event(frigate_message("end")))
    # A replayed update or end of a closed Frigate event makes nothing either.
    assert "ended" == _skipped(normalizer, source, update)
    assert "ended" == _skipped(normalizer, source, _event(frigate_message("end")))


def test_an_event_that_ends_before_any_update_in_a_zone_is_still_reported(
    normalizer: Normalizer, source: FrigateSource
) -> None:
    [adapted] = _handle(
        normalizer, source, _event(frigate_message("end", entered_zones=["water_edge"]))
    )
    assert EVENT_ID == adapted.event.id


def test_snapshot_received_before_the_event_is_attached(
    normalizer: Normalizer, source: FrigateSource
) -> None:
    assert [] == _handle(normalizer, source, Raw(SNAPSHOT, TINY_JPEG), EDGE_TS)
    message = frigate_message("update", current_zones=["water_edge"], has_snapshot=True)
    [adapted] = _handle(normalizer, source, _event(message), EDGE_TS + timedelta(seconds=1))
    assert adapted.event.snapshot is True
    assert TINY_JPEG == adapted.snapshot


def test_stale_or_retained_snapshots_are_not_attached(
    normalizer: Normalizer, source: FrigateSource
) -> None:
    _handle(normalizer, source, Raw(SNAPSHOT, TINY_JPEG), EDGE_TS)
    later = EDGE_TS + timedelta(seconds=SNAPSHOT_MAX_AGE_S + 1)
    [stale] = _handle(
        normalizer, source, _event(frigate_message("update", "a1", current_zones=["z2"])), later
    )
    assert stale.event.snapshot is False
    assert "retained_snapshot" == _skipped(normalizer, source, Raw(SNAPSHOT, TINY_JPEG, True))


def test_snapshot_after_its_event_is_published_for_it_once_while_the_event_is_open(
    normalizer: Normalizer, source: FrigateSource
) -> None:
    [adapted] = _handle(
        normalizer, source, _event(frigate_message("update", current_zones=["water_edge"]))
    )
    assert adapted.event.snapshot is False
    late = _handle(normalizer, source, Raw(SNAPSHOT, TINY_JPEG))
    assert [LateSnapshot(EVENT_ID, TINY_JPEG)] == late
    assert [] == _handle(normalizer, source, Raw(SNAPSHOT, TINY_JPEG))  # once per event


def test_no_late_snapshot_for_an_ended_event_or_one_sent_with_its_picture(
    normalizer: Normalizer, source: FrigateSource
) -> None:
    _handle(normalizer, source, _event(frigate_message("update", "c1", current_zones=["z2"])))
    _handle(normalizer, source, _event(frigate_message("end", "c1", current_zones=["z2"])))
    assert [] == _handle(normalizer, source, Raw(SNAPSHOT, TINY_JPEG))  # someone else's
    [pictured] = _handle(
        normalizer, source, _event(frigate_message("update", "c2", current_zones=["z2"]))
    )
    assert pictured.event.snapshot is True
    assert [] == _handle(normalizer, source, Raw(SNAPSHOT, TINY_JPEG))


def test_zone_named_as_our_zone_needs_no_mapping_and_unwatched_zones_make_nothing(
    normalizer: Normalizer, source: FrigateSource
) -> None:
    [adapted] = _handle(
        normalizer, source, _event(frigate_message("update", "b1", current_zones=["z2"]))
    )
    assert "z2" == adapted.event.zone
    # z1 is a zone of the site, but not one this camera watches; "steps" is no zone of ours.
    message = frigate_message("update", "b2", current_zones=["steps", "z1"])
    assert "unconfigured_zone" == _skipped(normalizer, source, _event(message))


def test_unknown_camera_is_rejected(normalizer: Normalizer, source: FrigateSource) -> None:
    message = frigate_message("update", camera="car_park", current_zones=["water_edge"])
    assert "unknown_device" == _rejected(normalizer, source, _event(message))


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"label": "dog"}, "not_person"), ({"false_positive": True}, "false_positive")],
)
def test_other_objects_and_false_positives_make_nothing(
    normalizer: Normalizer, source: FrigateSource, change: dict[str, Any], reason: str
) -> None:
    message = frigate_message("update", current_zones=["water_edge"])
    message["after"].update(change)
    assert reason == _skipped(normalizer, source, _event(message))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b'{"type": "update"}', "invalid"),
        (json.dumps({**frigate_message("update"), "type": "moved"}).encode(), "invalid"),
        (
            json.dumps(frigate_message("update", "bad/id#", current_zones=["z2"])).encode(),
            "invalid",
        ),
    ],
)
def test_malformed_frigate_messages_are_rejected(
    normalizer: Normalizer, source: FrigateSource, payload: bytes, reason: str
) -> None:
    assert reason == _rejected(normalizer, source, Raw(topics.frigate_events(), payload))


@pytest.mark.parametrize("payload", [b"GIF89a", b"\xff\xd8\xff" + bytes(600_000)])
def test_bad_snapshots_are_rejected(
    normalizer: Normalizer, source: FrigateSource, payload: bytes
) -> None:
    assert "bad_snapshot" == _rejected(normalizer, source, Raw(SNAPSHOT, payload))


def test_snapshot_of_an_unconfigured_camera_is_skipped(
    normalizer: Normalizer, source: FrigateSource
) -> None:
    raw = Raw(topics.frigate_snapshot("car_park"), TINY_JPEG)
    assert "unknown_camera" == _skipped(normalizer, source, raw)


def test_frigate_person_correlates_with_a_fence_breach(
    normalizer: Normalizer, source: FrigateSource
) -> None:
    fence = FieldTopic(SITE, "fence", "db-fence-02", "report")
    breach = normalizer.report(fence, json.dumps(fence_report(5, "z2")).encode(), EDGE_TS)
    message = frigate_message("update", current_zones=["water_edge"])
    [adapted] = _handle(normalizer, source, _event(message), EDGE_TS + timedelta(seconds=2))
    assert [breach.event.id] == adapted.event.attrs["correlated"]


@pytest.mark.integration
async def test_frigate_track_reaches_the_hub_as_one_event_with_its_snapshot(
    own_broker: Broker, tmp_path: Path, config: Config
) -> None:
    events = topics.events(SITE)
    agent = EdgeAgent(edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path), config)
    async with (
        recording(own_broker.settings("hub"), events, topics.snapshot(SITE, "+")) as hub_view,
        running_edge(agent),
        publisher(own_broker.settings("sim")) as frigate,
    ):
        [event_id] = keyed(agent, EVENT_ID)
        snapshot_topic = topics.snapshot(SITE, event_id)
        messages = [
            frigate_message("new"),
            frigate_message("update", current_zones=["steps"]),
            frigate_message("update", current_zones=["water_edge"], has_snapshot=True),
            frigate_message("update", current_zones=["water_edge"], has_snapshot=True),
            frigate_message("end", current_zones=[], entered_zones=["steps", "water_edge"]),
        ]
        await frigate.publish(SNAPSHOT, TINY_JPEG, qos=1)
        await frigate.publish(topics.frigate_events(), b"{oops", qos=1)
        for message in messages:
            await frigate.publish(topics.frigate_events(), json.dumps(message), qos=1)
        # A second track afterwards is the marker that the first one was fully handled.
        marker = frigate_message("update", "second", current_zones=["z2"])
        await frigate.publish(topics.frigate_events(), json.dumps(marker), qos=1)
        payloads = await hub_view.wait_count(events, 2)
        [first, second] = [Event.model_validate_json(payload) for payload in payloads]
        assert keyed(agent, EVENT_ID, "db-frigate-01:frigate-second") == [first.id, second.id]
        assert [TINY_JPEG] == hub_view.on(snapshot_topic)
        assert hub_view.topics().index(snapshot_topic) < hub_view.topics().index(events)
        registry = agent.metrics.registry

        def skipped(reason: str) -> float:
            labels = {"source": "frigate", "reason": reason}
            return registry.get_sample_value("riverguard_edge_source_skipped_total", labels) or 0

        reasons = ("no_zone", "unconfigured_zone", "emitted")
        assert [1.0, 1.0, 1.0] == [skipped(reason) for reason in reasons]
        malformed = registry.get_sample_value(
            "riverguard_edge_rejected_total", {"reason": "malformed_json"}
        )
        assert 1.0 == malformed


@pytest.mark.integration
async def test_frigate_snapshot_after_the_event_reaches_the_hub_on_its_snapshot_topic(
    own_broker: Broker, tmp_path: Path, config: Config
) -> None:
    events = topics.events(SITE)
    agent = EdgeAgent(edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path), config)
    async with (
        recording(own_broker.settings("hub"), events, topics.snapshot(SITE, "+")) as hub_view,
        running_edge(agent),
        publisher(own_broker.settings("sim")) as frigate,
    ):
        [event_id] = keyed(agent, EVENT_ID)
        snapshot_topic = topics.snapshot(SITE, event_id)
        message = frigate_message("update", current_zones=["water_edge"])
        await frigate.publish(topics.frigate_events(), json.dumps(message), qos=1)
        [payload] = await hub_view.wait_count(events, 1)
        assert Event.model_validate_json(payload).snapshot is False
        await frigate.publish(SNAPSHOT, TINY_JPEG, qos=1)
        assert [TINY_JPEG] == await hub_view.wait_count(snapshot_topic, 1)
        assert hub_view.topics().index(events) < hub_view.topics().index(snapshot_topic)
        late = agent.metrics.registry.get_sample_value("riverguard_edge_late_snapshots_total")
        assert 1.0 == late
