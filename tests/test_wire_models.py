"""Wire models accept the protocol's examples and refuse bad input with a reason."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import ValidationError

from riverguard.testing import TINY_JPEG, camera_report, fence_report
from riverguard.wire.models import (
    CLIENT_OP,
    MAX_SNAPSHOT_BYTES,
    Alarm,
    Announce,
    CameraReport,
    Committed,
    DeviceStatus,
    DeviceStatusReport,
    EdgeStatus,
    Event,
    FenceReport,
    SubscribeOp,
)

PROTOCOL_EVENT: dict[str, Any] = {
    "id": "fence-03:1842",
    "site": "danshui-bridge",
    "device": "fence-03",
    "kind": "fence.breach",
    "zone": "z3",
    "ts": "2026-07-27T21:21:05.123Z",
    "edge_ts": "2026-07-27T21:21:05.131Z",
    "severity": "warning",
    "confidence": None,
    "object": None,
    "snapshot": False,
    "attrs": {},
}


def test_protocol_examples_parse() -> None:
    FenceReport.model_validate({"seq": 1842, "ts": 1753622465123, "zone": "z3", "state": "breach"})
    CameraReport.model_validate(camera_report(77, "bank-east", snapshot=TINY_JPEG))
    DeviceStatusReport.model_validate({"online": True, "battery": 0.82, "rssi": -71})
    Committed.model_validate({"ids": ["fence-03:1842"]})
    Announce.model_validate(
        {
            "id": "ann-01",
            "audio": {
                "url": "http://hub/api/audio/x.wav",
                "sha256": "9f" * 32,
                "format": "wav",
                "duration_ms": 4200,
            },
            "repeat": 2,
            "volume": 90,
            "priority": 5,
            "alarm_id": "alm-1",
            "requested_by": "officer-li",
            "expires_at": "2026-07-27T21:22:05.000Z",
        }
    )


def test_event_round_trips_to_the_same_json() -> None:
    event = Event.model_validate(PROTOCOL_EVENT)
    assert PROTOCOL_EVENT == json.loads(event.model_dump_json())


def test_vendor_formats_ignore_unknown_fields_but_ours_forbid_them() -> None:
    FenceReport.model_validate({**fence_report(1, "z1"), "firmware": "2.1"})
    with pytest.raises(ValidationError, match="extra"):
        Event.model_validate({**PROTOCOL_EVENT, "colour": "red"})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"seq": "12"}, "seq"),  # a string is not a counter
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq"),
        ({"state": "open"}, "state"),
        ({"zone": "Zone 3"}, "zone"),
        ({"ts": "soon"}, "ts"),
        ({"ts": None}, "ts"),
    ],
)
def test_bad_fence_reports_name_the_field(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        FenceReport.model_validate({**fence_report(1, "z1"), **change})


def test_camera_snapshot_must_be_base64_and_at_most_512_kib() -> None:
    with pytest.raises(ValidationError, match="base64"):
        CameraReport.model_validate({**camera_report(1, "z1"), "snapshot": "not base64!"})
    big = base64.b64encode(b"\xff" * (MAX_SNAPSHOT_BYTES + 1)).decode()
    with pytest.raises(ValidationError, match="larger than"):
        CameraReport.model_validate({**camera_report(1, "z1"), "snapshot": big})
    report = CameraReport.model_validate(camera_report(1, "z1", snapshot=TINY_JPEG))
    assert TINY_JPEG == report.snapshot_bytes()


def test_camera_confidence_is_a_probability() -> None:
    with pytest.raises(ValidationError, match="confidence"):
        CameraReport.model_validate({**camera_report(1, "z1"), "confidence": 1.5})


def test_event_ids_cannot_carry_topic_wildcards() -> None:
    for bad in ("f/1", "f+1", "f#1", ""):
        with pytest.raises(ValidationError):
            Event.model_validate({**PROTOCOL_EVENT, "id": bad})


def test_alarm_matches_the_protocol_shape() -> None:
    alarm = Alarm.model_validate(
        {
            "id": "alm-1",
            "site": "danshui-bridge",
            "zone": "z3",
            "state": "open",
            "severity": "critical",
            "opened_at": "2026-07-27T21:21:05.123Z",
            "updated_at": "2026-07-27T21:21:06.000Z",
            "event_count": 1,
            "event_ids": ["fence-03:1842"],
            "last_event_id": "fence-03:1842",
        }
    )
    dumped = json.loads(alarm.model_dump_json())
    assert {"acked_by", "resolved_at", "outcome", "escalation_level", "announcements"} <= set(
        dumped
    )


def test_client_ops_are_a_discriminated_union() -> None:
    assert SubscribeOp(op="subscribe", events=["*"]) == CLIENT_OP.validate_json(
        '{"op": "subscribe", "events": ["*"]}'
    )
    with pytest.raises(ValidationError):
        CLIENT_OP.validate_json('{"op": "delete_everything"}')
    with pytest.raises(ValidationError):
        CLIENT_OP.validate_json('{"op": "subscribe", "events": ["../etc"]}')


def test_online_flags_must_be_json_booleans() -> None:
    """A "yes" or 1 is not taken for online: a device that is not sure is not online."""
    for model in (DeviceStatusReport, DeviceStatus, EdgeStatus):
        for value in ("yes", 1, "true"):
            with pytest.raises(ValidationError, match="online"):
                model.model_validate({"online": value, "ts": "2026-07-27T21:21:05.123Z"})
