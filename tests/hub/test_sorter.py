"""Each way an edge message can be refused, with its reason (and good ones accepted)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from hub.sorter import (
    AckIn,
    DeviceStatusIn,
    EdgeStatusIn,
    EventIn,
    Refused,
    Sorter,
)
from hub.store import Snapshot
from riverguard.config import Config
from riverguard.testing import TINY_JPEG
from riverguard.wire import topics
from riverguard.wire.models import MAX_EVENT_PAYLOAD_BYTES, MAX_SNAPSHOT_BYTES
from riverguard.wire.times import format_ts, utcnow
from tests.hub.conftest import SITE, event_payload

NOW = utcnow()


@pytest.fixture
def sorter(example_config: Config) -> Sorter:
    return Sorter(example_config)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _refusal(sorter: Sorter, topic: str, payload: bytes) -> Refused:
    with pytest.raises(Refused) as caught:
        sorter.sort(topic, payload, NOW)
    return caught.value


def test_a_valid_event_is_accepted(sorter: Sorter) -> None:
    item = sorter.sort(topics.events(SITE), _json(event_payload(1)), NOW)
    assert isinstance(item, EventIn)
    assert "db-fence-01:1" == item.event.id


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("riverguard/v1/sites/danshui-bridge/nonsense", b"{}", "bad_topic"),
        ("riverguard/v1/sites/Bad Site/events", b"{}", "bad_topic"),
        (topics.announce(SITE, "db-spk-01"), b"{}", "bad_topic"),
        (topics.events("atlantis"), _json(event_payload(1, site="atlantis")), "unknown_site"),
        (topics.events(SITE), b"{not json", "malformed_json"),
        (topics.events(SITE), _json(event_payload(1, severity="apocalyptic")), "invalid"),
        (topics.events(SITE), _json(event_payload(1, ts=True)), "invalid"),
        (topics.events(SITE), _json({**event_payload(1), "extra": 1}), "invalid"),
        (
            topics.events(SITE),
            _json(event_payload(1, attrs={"x": "y" * MAX_EVENT_PAYLOAD_BYTES})),
            "oversize",
        ),
        (topics.events(SITE), _json(event_payload(1, device="ghost-01")), "unknown_device"),
        (topics.events(SITE), _json(event_payload(1, device="xy-fence-01")), "unknown_device"),
        (topics.events(SITE), _json(event_payload(1, zone="z9")), "unknown_zone"),
        (
            topics.events(SITE),
            _json(event_payload(1, site="xiyong-wharf", device="xy-fence-01")),
            "site_mismatch",
        ),
        (topics.snapshot(SITE, "db-cam-01:1"), b"GIF89a", "not_jpeg"),
        (topics.snapshot(SITE, "db-cam-01:1"), b"\xff\xd8" + bytes(MAX_SNAPSHOT_BYTES), "oversize"),
        (
            topics.device_status(SITE, "ghost-01"),
            _json({"online": True, "ts": 1}),
            "unknown_device",
        ),
        (
            topics.device_status(SITE, "db-fence-01"),
            _json({"online": "maybe", "ts": format_ts(NOW)}),
            "invalid",
        ),
        (topics.edge_status(SITE), b"\x00\x01", "malformed_json"),
        (
            topics.speaker_ack(SITE, "db-fence-01"),
            _json({"id": "a", "state": "done", "ts": 1}),
            "unknown_device",
        ),
        (
            topics.speaker_ack(SITE, "db-spk-01"),
            _json({"id": "a", "state": "exploded", "ts": format_ts(NOW)}),
            "invalid",
        ),
    ],
    # Payloads carry the time of collection: ids must not, or each pytest-xdist worker
    # collects different tests.
    ids=lambda value: f"{len(value)}-bytes" if isinstance(value, bytes) else None,
)
def test_bad_messages_are_refused_with_their_reason(
    sorter: Sorter, topic: str, payload: bytes, reason: str
) -> None:
    assert reason == _refusal(sorter, topic, payload).reason


@pytest.mark.parametrize(
    "reason", ["unknown_device", "unknown_zone", "wrong_zone", "site_mismatch"]
)
def test_events_refused_after_parsing_are_still_acknowledged(sorter: Sorter, reason: str) -> None:
    """They are kept as dead letters; without an ack the edge would resend them forever."""
    payload = {
        "unknown_device": event_payload(5, device="ghost-01"),
        "unknown_zone": event_payload(5, zone="z9"),
        "wrong_zone": event_payload(5, zone="z2"),
        "site_mismatch": event_payload(5, site="xiyong-wharf", device="xy-fence-01"),
    }[reason]
    refused = _refusal(sorter, topics.events(SITE), _json(payload))
    assert (SITE, payload["id"]) == refused.ack


def test_unparsable_events_are_not_acknowledged(sorter: Sorter) -> None:
    assert None is _refusal(sorter, topics.events(SITE), b"{").ack


def test_clock_skew_is_measured_not_refused(sorter: Sorter) -> None:
    skewed = event_payload(1, edge_ts=format_ts(NOW + timedelta(hours=1)))
    item = sorter.sort(topics.events(SITE), _json(skewed), NOW)
    assert isinstance(item, EventIn)
    assert item.skew_s >= 3599


def test_statuses_snapshots_and_acks_are_accepted(sorter: Sorter) -> None:
    ts = format_ts(NOW)
    assert isinstance(sorter.sort(topics.snapshot(SITE, "db-cam-01:1"), TINY_JPEG, NOW), Snapshot)
    assert isinstance(
        sorter.sort(
            topics.device_status(SITE, "db-fence-01"), _json({"online": True, "ts": ts}), NOW
        ),
        DeviceStatusIn,
    )
    assert isinstance(
        sorter.sort(
            topics.edge_status(SITE), _json({"online": True, "ts": ts, "version": "1"}), NOW
        ),
        EdgeStatusIn,
    )
    ack = {"id": "ann-1", "state": "playing", "ts": ts}
    assert isinstance(sorter.sort(topics.speaker_ack(SITE, "db-spk-01"), _json(ack), NOW), AckIn)


@pytest.mark.parametrize(
    "payload",
    [
        {**event_payload(5, device="db-fence-02"), "id": "db-fence-01:5"},
        {**event_payload(5, device="ghost-01"), "id": "db-fence-01:5"},
        {**event_payload(5, zone="z9"), "id": "db-cam-01:5"},
    ],
)
def test_a_refused_event_under_another_devices_id_is_not_acknowledged(
    sorter: Sorter, payload: dict[str, object]
) -> None:
    """Its acknowledgement would end the resends of that device's own event."""
    assert None is _refusal(sorter, topics.events(SITE), _json(payload)).ack


@pytest.mark.parametrize(
    "payload",
    [
        event_payload(5, device="db-spk-01"),
        event_payload(5, kind="camera.water_entry", severity="critical"),
        event_payload(5, device="db-cam-01"),
    ],
)
def test_an_event_its_device_cannot_report_is_refused_as_wrong_device(
    sorter: Sorter, payload: dict[str, object]
) -> None:
    refused = _refusal(sorter, topics.events(SITE), _json(payload))
    assert ("wrong_device", (SITE, payload["id"])) == (refused.reason, refused.ack)


@pytest.mark.parametrize(
    "payload",
    [
        # The fence of z1 reporting a breach in z2 of its own site.
        event_payload(5, zone="z2"),
        # The fence of z1 clearing z2: the next breach there would count as a new person.
        event_payload(5, zone="z2", kind="fence.clear", severity="info"),
        event_payload(5, device="db-cam-01", zone="z2", kind="camera.water_entry"),
    ],
)
def test_an_event_in_a_zone_its_device_does_not_cover_is_refused_as_wrong_zone(
    sorter: Sorter, payload: dict[str, object]
) -> None:
    refused = _refusal(sorter, topics.events(SITE), _json(payload))
    assert ("wrong_zone", (SITE, payload["id"])) == (refused.reason, refused.ack)


def test_each_fence_and_camera_is_heard_in_each_zone_it_covers(
    sorter: Sorter, example_config: Config
) -> None:
    kinds = {"fence": "fence.breach", "camera": "camera.water_entry"}
    heard = []
    for device in example_config.devices_of(SITE):
        for zone in device.zones if device.type in kinds else []:
            payload = event_payload(1, device=device.id, zone=zone, kind=kinds[device.type])
            item = sorter.sort(topics.events(SITE), _json(payload), NOW)
            assert isinstance(item, EventIn)
            heard.append((item.event.device, item.event.zone))
    assert {("db-fence-01", "z1"), ("db-fence-02", "z2"), ("db-cam-02", "z2")} <= set(heard)


def test_a_device_with_no_zones_listed_covers_every_zone_of_its_site(
    example_config: Config,
) -> None:
    data = example_config.model_dump()
    [fence] = [d for d in data["devices"] if d["id"] == "db-fence-01"]
    fence["zones"] = []
    sorter = Sorter(Config.model_validate(data))
    item = sorter.sort(topics.events(SITE), _json(event_payload(1, zone="z2")), NOW)
    assert isinstance(item, EventIn)
    assert "z2" == item.event.zone
