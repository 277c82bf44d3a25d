"""Line protocol, point times and InfluxQL building."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.influx import (
    EventQuery,
    build_query,
    escape_key,
    escape_measurement,
    escape_string_field,
    event_line,
    point_time_ns,
    quote_ident,
    quote_literal,
    row_to_event,
)
from riverguard.wire.models import Event
from tests.hub.conftest import parsed_event

T0 = datetime(2026, 7, 27, 21, 21, 5, 123000, tzinfo=UTC)
T0_MS_NS = 1_785_187_265_123_000_000


def _event(seq: int = 1, **fields: Any) -> Event:
    return parsed_event(seq, T0, **fields)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a b", "a\\ b"),
        ("a,b", "a\\,b"),
        ("a=b", "a\\=b"),
        ('say "hi"', 'say\\ "hi"'),
        # InfluxDB 1.x reads a doubled backslash back doubled: written as it is.
        ("back\\slash", "back\\slash"),
        ("two\\\\back", "two\\\\back"),
        ("水域 z1", "水域\\ z1"),
    ],
)
def test_keys_and_tag_values_escape_commas_equals_and_spaces(raw: str, escaped: str) -> None:
    assert escaped == escape_key(raw)


def test_keys_refuse_newlines() -> None:
    with pytest.raises(ValueError, match="newlines"):
        escape_key("a\nb")


@pytest.mark.parametrize("raw", ["trailing\\", "a\\ b", "a\\,b", "a\\=b"])
def test_keys_refuse_a_backslash_before_a_separator_or_at_the_end(raw: str) -> None:
    """It would escape the separator (or the space after the value): not writable."""
    with pytest.raises(ValueError, match="backslash"):
        escape_key(raw)


def test_measurement_escapes_commas_and_spaces_only() -> None:
    assert "a\\,b\\ c=d" == escape_measurement("a,b c=d")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("a, b=c", '"a, b=c"'),
        ("人 person", '"人 person"'),
    ],
)
def test_string_fields_escape_quotes_and_backslashes(raw: str, escaped: str) -> None:
    assert escaped == escape_string_field(raw)


def test_point_time_is_the_event_millisecond_plus_an_offset_from_its_id() -> None:
    event = _event(1842)
    expected = T0_MS_NS + zlib.crc32(b"db-fence-01:1842") % 1_000_000
    assert expected == point_time_ns(event)


def test_point_time_ignores_sub_millisecond_digits_of_the_event_time() -> None:
    precise = _event(ts=T0.replace(microsecond=123456))
    assert point_time_ns(_event()) == point_time_ns(precise)


def test_distinct_events_in_one_millisecond_get_distinct_times_and_a_rewrite_the_same() -> None:
    # A million offsets: a device would need ~1000 events in one millisecond for a
    # likely collision (birthday bound); a hundred consecutive ones are all distinct.
    times = {point_time_ns(_event(seq)) for seq in range(100)}
    assert 100 == len(times)
    assert all(T0_MS_NS <= t < T0_MS_NS + 1_000_000 for t in times)
    assert point_time_ns(_event(7)) == point_time_ns(_event(7))


def test_event_line_has_sorted_tags_typed_fields_and_the_point_time() -> None:
    event = _event(
        kind="camera.water_entry",
        device="db-cam-01",
        confidence=0.91,
        object='per"son',
        snapshot=True,
        attrs={"correlated": ["x"]},
    )
    line = event_line(event)
    tags, fields, time = line.split(" ")
    assert (
        "events,device=db-cam-01,kind=camera.water_entry,severity=warning,"
        "site=danshui-bridge,zone=z1"
    ) == tags
    assert str(point_time_ns(event)) == time
    assert (
        'id="db-cam-01:1",snapshot=true,edge_ts=1785187265123000000i,confidence=0.91,'
        'object="per\\"son",attrs="{\\"correlated\\":[\\"x\\"]}"'
    ) == fields


def test_event_line_omits_unset_optional_fields() -> None:
    fields = event_line(_event()).split(" ")[1]
    assert "confidence" not in fields
    assert "object" not in fields
    assert "attrs" not in fields


def test_a_query_row_becomes_the_event_again() -> None:
    event = _event(confidence=0.5, object="person", attrs={"k": 1})
    row = {
        "time": point_time_ns(event),
        "id": event.id,
        "site": event.site,
        "device": event.device,
        "kind": event.kind,
        "zone": event.zone,
        "severity": event.severity,
        "snapshot": False,
        "edge_ts": 1_785_187_265_123_000_000,
        "confidence": 0.5,
        "object": "person",
        "attrs": '{"k":1}',
    }
    assert event == row_to_event(row)


def test_influxql_literals_and_identifiers_are_escaped() -> None:
    assert "'it\\'s'" == quote_literal("it's")
    assert "'a\\\\\\' OR 1=1'" == quote_literal("a\\' OR 1=1")
    assert '"we\\"ird"' == quote_ident('we"ird')


def test_injection_attempt_stays_inside_the_string_literal() -> None:
    hostile = "x' OR time > 0; DROP DATABASE riverguard; --"
    query = build_query(EventQuery(site=hostile, limit=5))
    assert (
        'SELECT * FROM "events" WHERE "site" = \'x\\\' OR time > 0; DROP DATABASE riverguard; --\''
        " ORDER BY time DESC LIMIT 5"
    ) == query


def test_query_filters_by_tags_and_time_newest_first() -> None:
    query = build_query(
        EventQuery(site="danshui-bridge", kind="fence.breach", start=T0, end=T0, limit=10)
    )
    assert (
        'SELECT * FROM "events" WHERE "site" = \'danshui-bridge\' AND "kind" = \'fence.breach\''
        " AND time >= 1785187265123000000 AND time < 1785187265124000000"
        " ORDER BY time DESC LIMIT 10"
    ) == query
