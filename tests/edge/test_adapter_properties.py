"""Every field adapter, fed anything: a typed result or a ``Rejected`` with a reason.

Devices and NVRs (and anything else that reaches the edge's topics) are
hostile or broken as often as not: any bytes, any JSON
(NaN and Infinity included, which Python's parser takes), valid reports with
one field replaced by anything. Whatever comes in, the generic adapters
(PROTOCOL 1.1, 1.2, 1.4), the Frigate source (1.3) and the normaliser return
what they promise (an event that travels to the hub and back unchanged) or
raise ``Rejected`` (``Skipped`` for a vendor's good message that makes no
event), never another exception.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from edge.adapters import Adapted, LateSnapshot, adapt_report, adapt_status, parse_message
from edge.errors import Rejected, Skipped
from edge.normalizer import Normalizer
from edge.sources import Raw, build_sources
from edge.sources.frigate import FrigateSource
from riverguard.config import Config
from riverguard.testing import TINY_JPEG, camera_report, fence_report
from riverguard.wire import topics
from riverguard.wire.models import (
    MAX_EVENT_PAYLOAD_BYTES,
    Announce,
    Committed,
    DeviceStatus,
    Event,
    HubStatus,
    SpeakerState,
    Stop,
)
from riverguard.wire.topics import FieldTopic
from tests.edge.support import FRIGATE_CAMERA, SITE, config_with_frigate_camera, frigate_message

EDGE_TS = datetime(2026, 7, 27, 21, 21, 5, 131000, tzinfo=UTC)
FENCE = FieldTopic(SITE, "fence", "db-fence-01", "report")
CAMERA = FieldTopic(SITE, "camera", "db-cam-01", "report")
FENCE_STATUS = FieldTopic(SITE, "fence", "db-fence-01", "status")
PROPERTY = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Any JSON document, NaN and the infinities included.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),
    st.text(max_size=30),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
# Values meant to hit the edges of each field's type.
_edgy = st.one_of(
    _json,
    st.sampled_from(
        [
            0,
            -1,
            2**63,
            10**200,
            1e308,
            -1e308,
            float("inf"),
            float("nan"),
            "",
            "z1",
            "Z1",
            "z1\n",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "2026-07-27T21:21:05.123+14:00",
            "2026-13-45T99:99:99Z",
            253402300800000,  # year 10000 in Unix ms
            -62135596800001,  # before year 1
            True,
        ]
    ),
)


def _encoded(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def _mutated(draw: st.DrawFn, valid: dict[str, Any]) -> bytes:
    """A valid report with some fields replaced, removed or added."""
    report = dict(valid)
    for key in draw(st.lists(st.sampled_from([*valid, "extra"]), max_size=3, unique=True)):
        if draw(st.booleans()):
            report[key] = draw(_edgy)
        else:
            report.pop(key, None)
    return _encoded(report)


def _payloads(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        _mutated(valid),
        _json.map(_encoded),
        st.binary(max_size=200),
        st.binary(max_size=40).map(lambda junk: _encoded(valid)[:-1] + junk),
    )


def _has_reason(exc: Rejected | Skipped) -> None:
    assert exc.reason
    assert exc.detail


def _travels(event: Event) -> None:
    """The event's wire form is one the hub parses back to the same wire form.

    (Times travel to the millisecond: an edge's event may hold microseconds.)
    """
    wire = event.model_dump_json()
    assert wire == Event.model_validate_json(wire).model_dump_json()
    assert len(wire.encode()) <= MAX_EVENT_PAYLOAD_BYTES  # what the hub takes


@pytest.fixture(scope="module")
def config(example_config: Config) -> Config:
    return config_with_frigate_camera(example_config)


# --- generic fence, camera, status ---------------------------------------------------


@PROPERTY
@given(payload=_payloads(fence_report(1842, "z1")))
@example(payload=b'{"seq": 1e400, "ts": 1, "zone": "z1", "state": "breach"}')
@example(payload=_encoded(fence_report(10**200, "z1")))
@example(payload=_encoded({**fence_report(1, "z1"), "ts": 253402300800000}))
@example(payload=_encoded({**fence_report(1, "z1"), "ts": "9999-12-31T23:59:59Z"}))
@example(payload=_encoded({**fence_report(1, "z1"), "ts": "0001-01-01T00:00:00Z"}))
def test_a_fence_report_is_an_event_or_rejected(config: Config, payload: bytes) -> None:
    _adapted_or_rejected(config, FENCE, payload)


@PROPERTY
@given(payload=_payloads(camera_report(7, "z1", snapshot=TINY_JPEG)))
@example(payload=_encoded({**camera_report(7, "z1"), "confidence": float("nan")}))
@example(payload=_encoded({**camera_report(7, "z1"), "snapshot": "////"}))
@example(payload=_encoded({**camera_report(7, "z1"), "snapshot": 5}))
def test_a_camera_report_is_an_event_or_rejected(config: Config, payload: bytes) -> None:
    _adapted_or_rejected(config, CAMERA, payload)


def _adapted_or_rejected(config: Config, topic: FieldTopic, payload: bytes) -> None:
    site = config.site(SITE)
    try:
        adapted = adapt_report(topic, payload, site, config.device_by_id, EDGE_TS)
    except Rejected as exc:
        _has_reason(exc)
        return
    assert isinstance(adapted, Adapted)
    assert adapted.event.device == topic.device
    assert adapted.seq is not None
    # The normaliser takes every adapted event on (or rejects it as a debounce).
    normalizer = Normalizer.for_site(config, SITE)
    try:
        normalized = normalizer.report(topic, payload, EDGE_TS)
    except Rejected as exc:
        _has_reason(exc)
        return
    _travels(normalized.event)


@PROPERTY
@given(payload=_payloads({"online": True, "battery": 0.5, "rssi": -60}))
@example(payload=b'{"online": true, "battery": NaN}')
@example(payload=b'{"online": true, "rssi": -1e400}')
def test_a_device_status_is_a_status_or_rejected(config: Config, payload: bytes) -> None:
    try:
        status = adapt_status(
            FENCE_STATUS, payload, config.site(SITE), config.device_by_id, EDGE_TS
        )
    except Rejected as exc:
        _has_reason(exc)
        return
    assert isinstance(status, DeviceStatus)
    assert status == DeviceStatus.model_validate_json(status.model_dump_json())


# --- Frigate --------------------------------------------------------------------------


def _frigate_payloads() -> st.SearchStrategy[bytes]:
    valid = frigate_message("update", current_zones=["water_edge"])

    @st.composite
    def after_mutated(draw: st.DrawFn) -> bytes:
        message = json.loads(json.dumps(valid))
        for key in draw(st.lists(st.sampled_from([*message["after"]]), max_size=3)):
            message["after"][key] = draw(_edgy)
        message["type"] = draw(st.sampled_from(["new", "update", "end", "other"]))
        return _encoded(message)

    return st.one_of(after_mutated(), _payloads(valid))


_frigate_raws = st.one_of(
    _frigate_payloads().map(lambda payload: Raw(topics.frigate_events(), payload)),
    st.tuples(st.binary(max_size=50), st.booleans()).map(
        lambda p: Raw(topics.frigate_snapshot(FRIGATE_CAMERA), p[0], retained=p[1])
    ),
    st.binary(max_size=20).map(
        lambda junk: Raw(topics.frigate_snapshot(FRIGATE_CAMERA), b"\xff\xd8\xff" + junk)
    ),
    st.text(max_size=20).map(lambda camera: Raw(f"frigate/{camera}/person/snapshot", TINY_JPEG)),
    st.text(max_size=30).map(lambda tail: Raw(f"frigate/{tail}", b"{}")),
)


def _frigate_example(**after: Any) -> list[Raw]:
    message = frigate_message("update", current_zones=["water_edge"])
    message["after"].update(after)
    return [Raw(topics.frigate_events(), _encoded(message))]


@PROPERTY
@given(raws=st.lists(_frigate_raws, min_size=1, max_size=5))
@example(raws=_frigate_example(frame_time=1e300))
@example(raws=_frigate_example(frame_time=float("inf")))
@example(raws=_frigate_example(frame_time=None, start_time=float("inf")))
@example(raws=_frigate_example(frame_time=-5.0))
@example(raws=_frigate_example(frame_time=4102444800.0))  # 2100-01-01
@example(raws=_frigate_example(top_score=float("nan")))
@example(raws=_frigate_example(id="1722115265.123456-k3x9qa\n"))  # "$" matched before "\n"
@example(raws=_frigate_example(current_zones=["water_edge", *(f"z{i:05}" for i in range(20_000))]))
def test_frigate_messages_make_events_or_are_rejected_or_skipped(
    config: Config, raws: list[Raw]
) -> None:
    """A sequence of messages (the source keeps state across them)."""
    normalizer = Normalizer.for_site(config, SITE)
    [source] = build_sources(normalizer.site, normalizer.devices)
    assert isinstance(source, FrigateSource)
    for raw in raws:
        try:
            made = normalizer.vendor(source, raw, EDGE_TS)
        except (Rejected, Skipped) as exc:
            _has_reason(exc)
            continue
        for item in made:
            if isinstance(item, Adapted):
                _travels(item.event)
            else:
                assert isinstance(item, LateSnapshot)
                assert item.jpeg.startswith(b"\xff\xd8\xff")


def test_a_frigate_event_whose_id_would_be_too_long_is_rejected(config: Config) -> None:
    """A 63-character device id and a 151-character Frigate id: 223 characters, over 200."""
    data = config.model_dump()
    camera = next(d for d in data["devices"] if d["source"] == "frigate")
    camera["id"] = "f" * 63
    long_config = Config.model_validate(data)
    normalizer = Normalizer.for_site(long_config, SITE)
    [source] = build_sources(normalizer.site, normalizer.devices)
    with pytest.raises(Rejected) as refused:
        normalizer.vendor(source, _frigate_example(id="a" * 151)[0], EDGE_TS)
    assert "invalid" == refused.value.reason
    assert "id" in refused.value.detail


# --- the edge's other inputs: speakers' states and the hub's messages -------------------

_MESSAGE_MODELS: list[type[BaseModel]] = [SpeakerState, Committed, HubStatus, Announce, Stop]


@PROPERTY
@given(
    model=st.sampled_from(_MESSAGE_MODELS),
    payload=st.one_of(
        _json.map(_encoded),
        st.binary(max_size=200),
        _mutated({"id": "ann-1", "state": "playing", "detail": ""}),
        _mutated({"ids": ["db-fence-01:1"]}),
    ),
)
@example(model=SpeakerState, payload=b'{"id": "a", "state": "done", "detail": NaN}')
@example(model=Committed, payload=b'{"ids": [' + b"[" * 5000 + b"]" * 5000 + b"]}")
def test_any_message_is_its_model_or_rejected(model: type[BaseModel], payload: bytes) -> None:
    try:
        parsed = parse_message(model, payload)
    except Rejected as exc:
        _has_reason(exc)
        return
    assert isinstance(parsed, model)
