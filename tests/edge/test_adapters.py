"""Device reports become normalised events; every kind of bad input is rejected with its reason."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edge.adapters import adapt_report, adapt_status, camera_severity, fence_severity, parse_message
from edge.errors import Rejected
from riverguard.config import Config
from riverguard.testing import TINY_JPEG, camera_report, fence_report
from riverguard.wire.models import MAX_RAW_PAYLOAD_BYTES, MAX_SNAPSHOT_BYTES, Committed, Event
from riverguard.wire.topics import FieldTopic

SITE = "danshui-bridge"
EDGE_TS = datetime(2026, 7, 27, 21, 21, 5, 131000, tzinfo=UTC)
DEVICE_TS = datetime(2026, 7, 27, 21, 21, 5, 123000, tzinfo=UTC)
FENCE = FieldTopic(SITE, "fence", "db-fence-01", "report")
CAMERA = FieldTopic(SITE, "camera", "db-cam-01", "report")


def _adapt(config: Config, topic: FieldTopic, payload: Any) -> Any:
    site = config.site(SITE)
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return adapt_report(topic, raw, site, config.device_by_id, EDGE_TS)


def _reason(config: Config, topic: FieldTopic, payload: Any) -> str:
    with pytest.raises(Rejected) as caught:
        _adapt(config, topic, payload)
    return caught.value.reason


def test_fence_breach_becomes_warning_event(example_config: Config) -> None:
    adapted = _adapt(example_config, FENCE, fence_report(1842, "z1", "breach", ts=DEVICE_TS))
    assert (
        Event(
            id="db-fence-01:1842",
            site=SITE,
            device="db-fence-01",
            kind="fence.breach",
            zone="z1",
            ts=DEVICE_TS,
            edge_ts=EDGE_TS,
            severity="warning",
        )
        == adapted.event
    )
    assert 1842 == adapted.seq
    assert adapted.snapshot is None


def test_event_json_matches_protocol_example_shape(example_config: Config) -> None:
    """Times go out as RFC 3339 with milliseconds and Z, and every 2.1 field is present."""
    adapted = _adapt(example_config, FENCE, fence_report(7, "z1", ts=DEVICE_TS))
    data = json.loads(adapted.event.model_dump_json())
    assert "2026-07-27T21:21:05.123Z" == data["ts"]
    assert "2026-07-27T21:21:05.131Z" == data["edge_ts"]
    expected_keys = {"id", "site", "device", "kind", "zone", "ts", "edge_ts", "severity"}
    assert expected_keys | {"confidence", "object", "snapshot", "attrs"} == set(data)


@pytest.mark.parametrize(
    ("state", "severity"),
    [("breach", "warning"), ("tamper", "warning"), ("clear", "info"), ("fault", "info")],
)
def test_fence_severity_by_state(example_config: Config, state: str, severity: str) -> None:
    adapted = _adapt(example_config, FENCE, fence_report(1, "z1", state))
    assert severity == adapted.event.severity == fence_severity(state)  # type: ignore[arg-type]
    assert f"fence.{state}" == adapted.event.kind


@pytest.mark.parametrize(
    ("rule", "severity"),
    [
        ("water_entry", "critical"),
        ("intrusion", "warning"),
        ("line_crossing", "warning"),
        ("loitering", "warning"),
    ],
)
def test_camera_severity_by_rule(example_config: Config, rule: str, severity: str) -> None:
    adapted = _adapt(example_config, CAMERA, camera_report(3, "z1", rule=rule))
    assert severity == adapted.event.severity == camera_severity(rule)  # type: ignore[arg-type]
    assert f"camera.{rule}" == adapted.event.kind


def test_camera_event_carries_object_confidence_and_snapshot(example_config: Config) -> None:
    payload = camera_report(77, "z1", confidence=0.87, snapshot=TINY_JPEG, ts=DEVICE_TS)
    adapted = _adapt(example_config, CAMERA, payload)
    assert "db-cam-01:77" == adapted.event.id
    assert "person" == adapted.event.object
    assert 0.87 == adapted.event.confidence
    assert adapted.event.snapshot is True
    assert TINY_JPEG == adapted.snapshot
    assert adapted.snapshot_problem is None


def test_camera_without_snapshot_has_snapshot_false(example_config: Config) -> None:
    adapted = _adapt(example_config, CAMERA, camera_report(78, "z1"))
    assert adapted.event.snapshot is False
    assert adapted.snapshot is None


@pytest.mark.parametrize(
    ("snapshot", "problem"),
    [
        ("not base64!!", "not valid base64"),
        (base64.b64encode(b"GIF89a....").decode(), "not a JPEG"),
        (base64.b64encode(b"\xff\xd8\xff" + b"\0" * MAX_SNAPSHOT_BYTES).decode(), "larger"),
        (12345, "not a base64 string"),
    ],
)
def test_bad_snapshot_is_left_out_but_event_kept(
    example_config: Config, snapshot: object, problem: str
) -> None:
    payload = camera_report(79, "z1")
    payload["snapshot"] = snapshot
    adapted = _adapt(example_config, CAMERA, payload)
    assert "db-cam-01:79" == adapted.event.id
    assert adapted.event.snapshot is False
    assert adapted.snapshot is None
    assert problem in (adapted.snapshot_problem or "")


def test_unknown_fields_from_vendor_are_ignored(example_config: Config) -> None:
    payload = {**fence_report(5, "z1"), "firmware": "2.1.7", "voltage": 12.1}
    assert "db-fence-01:5" == _adapt(example_config, FENCE, payload).event.id


def test_json_that_only_the_standard_parser_takes_is_still_accepted(
    example_config: Config,
) -> None:
    """A lone surrogate escape in an unknown field: pydantic's JSON parser refuses it, json not."""
    payload = json.dumps({**fence_report(5, "z1"), "label": "\ud800"}).encode()
    assert b"\\ud800" in payload
    assert "db-fence-01:5" == _adapt(example_config, FENCE, payload).event.id


def test_device_clock_ahead_is_measured(example_config: Config) -> None:
    ahead = EDGE_TS + timedelta(minutes=10)
    adapted = _adapt(example_config, FENCE, fence_report(6, "z1", ts=ahead))
    assert 600.0 == pytest.approx(adapted.skew_s)


# --- rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b"", b"\xff\xfe\x00garbage", b'{"seq": 1, ' + b"[" * 100_000],
)
def test_malformed_json_is_rejected(example_config: Config, payload: bytes) -> None:
    assert "malformed_json" == _reason(example_config, FENCE, payload)


def test_deeply_nested_json_is_rejected_not_crashing(example_config: Config) -> None:
    payload = b"[" * 200_000 + b"]" * 200_000
    assert _reason(example_config, FENCE, payload) in {"malformed_json", "invalid"}


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2, 3],
        "a string",
        {**fence_report(1, "z1"), "seq": "12"},  # seq as a string
        {**fence_report(1, "z1"), "seq": -1},
        {**fence_report(1, "z1"), "seq": 1.5},
        {**fence_report(1, "z1"), "state": "open"},
        {**fence_report(1, "z1"), "ts": "yesterday"},
        {**fence_report(1, "z1"), "zone": "Z 1"},
        {"seq": 1, "zone": "z1", "state": "breach"},  # no ts
    ],
)
def test_wrong_fence_types_are_rejected_as_invalid(example_config: Config, payload: Any) -> None:
    assert "invalid" == _reason(example_config, FENCE, payload)


@pytest.mark.parametrize(
    "change",
    [
        {"confidence": 1.5},
        {"confidence": "high"},
        {"rule": "smoke"},
        {"object": ""},
        {"seq": True},
    ],
)
def test_wrong_camera_types_are_rejected_as_invalid(
    example_config: Config, change: dict[str, Any]
) -> None:
    assert "invalid" == _reason(example_config, CAMERA, {**camera_report(1, "z1"), **change})


def test_oversize_payload_is_rejected_before_parsing(example_config: Config) -> None:
    payload = b'{"pad": "' + b"x" * MAX_RAW_PAYLOAD_BYTES + b'"}'
    assert "oversize" == _reason(example_config, FENCE, payload)


def test_unknown_device_is_rejected(example_config: Config) -> None:
    topic = FieldTopic(SITE, "fence", "fence-99", "report")
    assert "unknown_device" == _reason(example_config, topic, fence_report(1, "z1"))


def test_device_of_another_site_is_rejected(example_config: Config) -> None:
    topic = FieldTopic(SITE, "fence", "xy-fence-01", "report")
    assert "unknown_device" == _reason(example_config, topic, fence_report(1, "z1"))


def test_device_type_mismatch_with_topic_is_rejected(example_config: Config) -> None:
    """A fence's id on a camera topic is not that fence."""
    topic = FieldTopic(SITE, "camera", "db-fence-01", "report")
    assert "unknown_device" == _reason(example_config, topic, camera_report(1, "z1"))


def test_speaker_sending_a_report_is_rejected(example_config: Config) -> None:
    topic = FieldTopic(SITE, "speaker", "db-spk-01", "report")
    assert "unknown_device" == _reason(example_config, topic, fence_report(1, "z1"))


def test_unknown_zone_is_rejected(example_config: Config) -> None:
    assert "unknown_zone" == _reason(example_config, FENCE, fence_report(1, "z9"))
    assert "unknown_zone" == _reason(example_config, CAMERA, camera_report(1, "z9"))


def test_topic_for_another_site_is_rejected(example_config: Config) -> None:
    topic = FieldTopic("xiyong-wharf", "fence", "xy-fence-01", "report")
    assert "wrong_site" == _reason(example_config, topic, fence_report(1, "z1"))


# --- statuses and hub messages ------------------------------------------------------------


def test_device_status_is_stamped_with_edge_time(example_config: Config) -> None:
    topic = FieldTopic(SITE, "fence", "db-fence-01", "status")
    payload = json.dumps({"online": True, "battery": 0.82, "rssi": -71, "extra": 1}).encode()
    status = adapt_status(
        topic, payload, example_config.site(SITE), example_config.device_by_id, EDGE_TS
    )
    assert (True, 0.82, -71, EDGE_TS) == (status.online, status.battery, status.rssi, status.ts)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"offline", "malformed_json"),
        (b'{"online": "yes"}', "invalid"),
        (b'{"online": true, "battery": 7}', "invalid"),
    ],
)
def test_bad_device_status_is_rejected(example_config: Config, payload: bytes, reason: str) -> None:
    topic = FieldTopic(SITE, "fence", "db-fence-01", "status")
    with pytest.raises(Rejected) as caught:
        adapt_status(
            topic, payload, example_config.site(SITE), example_config.device_by_id, EDGE_TS
        )
    assert reason == caught.value.reason


def test_status_of_unknown_device_is_rejected(example_config: Config) -> None:
    topic = FieldTopic(SITE, "camera", "cam-99", "status")
    with pytest.raises(Rejected) as caught:
        adapt_status(topic, b'{"online": true}', example_config.site(SITE), {}, EDGE_TS)
    assert "unknown_device" == caught.value.reason


def test_hub_messages_are_parsed_with_the_same_checks() -> None:
    assert ["db-fence-01:1"] == parse_message(Committed, b'{"ids": ["db-fence-01:1"]}').ids
    with pytest.raises(Rejected) as caught:
        parse_message(Committed, b'{"ids": "db-fence-01:1"}')
    assert "invalid" == caught.value.reason
