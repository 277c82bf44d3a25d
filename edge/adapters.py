"""Device formats -> our wire messages: pure functions, no I/O, no state.

- generic fence (PROTOCOL 1.1) and generic camera (1.2) -> ``Event`` (2.1)
- device status (1.4) -> ``DeviceStatus`` (2.3)

Every problem raises ``Rejected`` with a reason that becomes a metric label;
the caller logs and counts it. A camera snapshot that is unusable does not
cost the event: the event goes on without it (``Adapted.snapshot_problem``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from edge.errors import Rejected
from riverguard.config import Device, Site
from riverguard.wire.models import (
    MAX_RAW_PAYLOAD_BYTES,
    MAX_SNAPSHOT_BYTES,
    CameraReport,
    CameraRule,
    DeviceStatus,
    DeviceStatusReport,
    Event,
    EventKind,
    FenceReport,
    FenceState,
    Severity,
)
from riverguard.wire.times import in_range
from riverguard.wire.topics import FieldTopic

FENCE_KIND: dict[FenceState, EventKind] = {
    "breach": "fence.breach",
    "clear": "fence.clear",
    "tamper": "fence.tamper",
    "fault": "fence.fault",
}
CAMERA_KIND: dict[CameraRule, EventKind] = {
    "intrusion": "camera.intrusion",
    "line_crossing": "camera.line_crossing",
    "loitering": "camera.loitering",
    "water_entry": "camera.water_entry",
}
# A breach or tamper means someone is at the fence; clear and fault are
# information about the fence itself, not about a person.
FENCE_SEVERITY: dict[FenceState, Severity] = {
    "breach": "warning",
    "tamper": "warning",
    "clear": "info",
    "fault": "info",
}
# A person in the water is the emergency the whole system exists for.
CAMERA_SEVERITY: dict[CameraRule, Severity] = {
    "intrusion": "warning",
    "line_crossing": "warning",
    "loitering": "warning",
    "water_entry": "critical",
}

_JPEG_MAGIC = b"\xff\xd8\xff"
_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Adapted:
    """A device report turned into an event, with what travels beside it."""

    event: Event
    # The device's sequence number, for the duplicate filter; None when the
    # source has its own event ids (Frigate).
    seq: int | None
    snapshot: bytes | None = None
    # Why a snapshot the camera sent was left out (the event itself is fine).
    snapshot_problem: str | None = None
    # Device time minus edge time, in seconds; large and positive means a skewed clock.
    skew_s: float = 0.0
    # The device's own time when it is out of the wire's range (the event has the
    # edge's); the normalizer keeps it in ``attrs.device_ts``.
    device_ts: datetime | None = None
    # Set by the normalizer: the device restarted (a new boot), its time was replaced.
    restarted: bool = False
    clock_replaced: bool = False


@dataclass(frozen=True, slots=True)
class LateSnapshot:
    """A picture of an event already emitted without one, published after it (PROTOCOL 2.2)."""

    event_id: str
    jpeg: bytes


def event_id(device: str, seq: int, boot: int = 0) -> str:
    """The stable id of a device event: a replay or duplicate gets the same one.

    ``boot`` tells a restarted device's reports from its earlier ones (``edge.dedup``).
    """
    return f"{device}:{seq}:b{boot}" if boot else f"{device}:{seq}"


def check_device(topic: FieldTopic, site: Site, devices: Mapping[str, Device]) -> Device:
    """The configured device a field topic names, if it is one of this site's."""
    if topic.site != site.id:
        raise Rejected("wrong_site", f"topic is for site {topic.site}, this edge is {site.id}")
    device = devices.get(topic.device)
    if device is None or device.site != site.id:
        raise Rejected("unknown_device", f"{topic.device} is not a device of {site.id}")
    if device.type != topic.device_type:
        raise Rejected(
            "unknown_device",
            f"{topic.device} is a {device.type}, the topic says {topic.device_type}",
        )
    return device


def adapt_report(
    topic: FieldTopic,
    payload: bytes,
    site: Site,
    devices: Mapping[str, Device],
    edge_ts: datetime,
) -> Adapted:
    """A fence's or camera's raw report (1.1, 1.2) as an event (2.1)."""
    device = check_device(topic, site, devices)
    if device.type == "fence":
        # Parsed and validated in one pass (pydantic's JSON parser): the hot path.
        return _adapt_fence(device, _validate_json(FenceReport, payload), site, edge_ts)
    data = _load_json_object(payload)
    if device.type == "camera":
        snapshot_raw = data.pop("snapshot", None)
        report = _validate(CameraReport, data)
        return _adapt_camera(device, report, snapshot_raw, site, edge_ts)
    raise Rejected("unknown_device", f"{device.id} is a {device.type}, which sends no reports")


def adapt_status(
    topic: FieldTopic,
    payload: bytes,
    site: Site,
    devices: Mapping[str, Device],
    edge_ts: datetime,
) -> DeviceStatus:
    """A device's status (1.4) as relayed to the hub (2.3), stamped with the edge's time."""
    check_device(topic, site, devices)
    report = _validate(DeviceStatusReport, _load_json_object(payload))
    return DeviceStatus(online=report.online, ts=edge_ts, battery=report.battery, rssi=report.rssi)


def parse_message(model: type[_Model], payload: bytes) -> _Model:
    """Any JSON message of ours or a device's, size-checked and validated."""
    return _validate(model, _load_json_object(payload))


def fence_severity(state: FenceState) -> Severity:
    return FENCE_SEVERITY[state]


def camera_severity(rule: CameraRule) -> Severity:
    return CAMERA_SEVERITY[rule]


# --- internals -----------------------------------------------------------------


def device_time(ts: datetime, edge_ts: datetime) -> tuple[datetime, datetime | None]:
    """The event time for a device time: itself, or the edge's when it is out of range
    (then also returned second, to keep)."""
    return (ts, None) if in_range(ts) else (edge_ts, ts)


def _adapt_fence(device: Device, report: FenceReport, site: Site, edge_ts: datetime) -> Adapted:
    _check_zone(report.zone, site)
    ts, off = device_time(report.ts, edge_ts)
    event = new_event(
        id=event_id(device.id, report.seq),
        site=site.id,
        device=device.id,
        kind=FENCE_KIND[report.state],
        zone=report.zone,
        ts=ts,
        edge_ts=edge_ts,
        severity=fence_severity(report.state),
    )
    return Adapted(event, report.seq, skew_s=(report.ts - edge_ts).total_seconds(), device_ts=off)


def _adapt_camera(
    device: Device, report: CameraReport, snapshot_raw: object, site: Site, edge_ts: datetime
) -> Adapted:
    _check_zone(report.zone, site)
    snapshot, snapshot_problem = None, None
    try:
        snapshot = _decode_snapshot(snapshot_raw)
    except _BadSnapshot as exc:
        snapshot_problem = str(exc)
    ts, off = device_time(report.ts, edge_ts)
    event = new_event(
        id=event_id(device.id, report.seq),
        site=site.id,
        device=device.id,
        kind=CAMERA_KIND[report.rule],
        zone=report.zone,
        ts=ts,
        edge_ts=edge_ts,
        severity=camera_severity(report.rule),
        confidence=report.confidence,
        object=report.object,
        snapshot=snapshot is not None,
    )
    return Adapted(
        event,
        report.seq,
        snapshot=snapshot,
        snapshot_problem=snapshot_problem,
        skew_s=(report.ts - edge_ts).total_seconds(),
        device_ts=off,
    )


def new_event(**fields: Any) -> Event:
    """An event from a device's fields; one the wire cannot carry is ``Rejected``.

    The reports are validated, but what is built from them can still break a limit
    of the event (an id longer than 200 characters from a long device id and a
    vendor's long id): refused with its reason, not raised as a ``ValidationError``.
    """
    try:
        return Event(**fields)
    except ValidationError as exc:
        raise Rejected("invalid", _summary(exc)) from None


def _check_zone(zone: str, site: Site) -> None:
    if zone not in site.zone_ids:
        raise Rejected("unknown_zone", f"zone {zone} is not a zone of {site.id}")


def _load_json_object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_RAW_PAYLOAD_BYTES:
        raise Rejected("oversize", f"{len(payload)} bytes, limit {MAX_RAW_PAYLOAD_BYTES}")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # bad UTF-8 is a ValueError too
        raise Rejected("malformed_json", str(exc)[:200]) from None
    if not isinstance(data, dict):
        raise Rejected("invalid", f"expected a JSON object, got {type(data).__name__}")
    return data


def _validate(model: type[_Model], data: dict[str, Any]) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Rejected("invalid", _summary(exc)) from None


def _validate_json(model: type[_Model], payload: bytes) -> _Model:
    """``_validate(model, _load_json_object(payload))`` in one pass where it succeeds.

    On any failure the two steps run again for their verdict: pydantic's parser
    refuses a few inputs ``json`` takes (a lone surrogate escape), and the
    reasons and details stay those of the two steps.
    """
    if len(payload) <= MAX_RAW_PAYLOAD_BYTES:
        try:
            return model.model_validate_json(payload)
        except ValidationError:
            pass
    return _validate(model, _load_json_object(payload))


def _summary(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)[:3]
    ]
    return "; ".join(parts)[:300]


class _BadSnapshot(Exception):
    """A camera's snapshot that cannot be used; the event goes on without it."""


def _decode_snapshot(value: object) -> bytes | None:
    """The camera's snapshot as JPEG bytes; _BadSnapshot says why it cannot be used."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _BadSnapshot("snapshot is not a base64 string")
    too_big = f"snapshot larger than {MAX_SNAPSHOT_BYTES} bytes"
    # Decoded size is 3/4 of the encoded length: refuse before decoding something big.
    if len(value) * 3 // 4 > MAX_SNAPSHOT_BYTES + 3:
        raise _BadSnapshot(too_big)
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise _BadSnapshot("snapshot is not valid base64") from None
    if len(raw) > MAX_SNAPSHOT_BYTES:
        raise _BadSnapshot(too_big)
    if not raw.startswith(_JPEG_MAGIC):
        raise _BadSnapshot("snapshot is not a JPEG")
    return raw
