"""Wire time values: Unix ms or RFC 3339 in, RFC 3339 with ms and Z out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from riverguard.wire.models import Event
from riverguard.wire.times import (
    clamp_stored,
    format_ts,
    parse_device_ts,
    parse_ts,
    to_unix_ms,
    to_unix_ns,
)

T = datetime(2026, 7, 27, 21, 21, 5, 123000, tzinfo=UTC)


def test_unix_ms_and_rfc3339_parse_to_the_same_instant() -> None:
    assert T == parse_ts(1785187265123)
    assert T == parse_ts("2026-07-27T21:21:05.123Z")
    assert T == parse_ts("2026-07-28T05:21:05.123+08:00")


def test_emitted_form_is_rfc3339_with_milliseconds_and_z() -> None:
    assert "2026-07-27T21:21:05.123Z" == format_ts(T)
    assert "2026-07-27T21:21:05.123Z" == format_ts(T.astimezone().replace())


@pytest.mark.parametrize(
    ("value", "emitted"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC), "2026-01-02T03:04:05.999Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (datetime(999, 12, 31, 23, 59, 59, 1000, tzinfo=UTC), "0999-12-31T23:59:59.001Z"),
    ],
)
def test_milliseconds_are_truncated_and_every_field_is_zero_padded(
    value: datetime, emitted: str
) -> None:
    assert emitted == format_ts(value)


def test_round_trips_through_unix_ms_and_ns() -> None:
    assert 1785187265123 == to_unix_ms(T)
    assert 1785187265123000000 == to_unix_ns(T)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "boolean"),
        (1753622465, "out of range"),  # seconds, not milliseconds
        (10**16, "out of range"),  # microseconds
        ("2026-07-27 21:21", "offset"),
        ("yesterday", "not an RFC 3339"),
        (12.5, "Unix milliseconds or an RFC 3339 string"),
        (None, "Unix milliseconds or an RFC 3339 string"),
    ],
)
def test_bad_times_are_refused_with_a_reason(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_ts(value)


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59.999Z",  # accepted once, then refused by InfluxDB
        "2100-01-01T00:00:00Z",
        "1999-12-31T23:59:59.999Z",
        "2262-04-12T00:00:00Z",
        datetime(9999, 1, 1, tzinfo=UTC),
    ],
)
def test_times_outside_2000_to_2100_are_refused_in_every_form(value: object) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_ts(value)


def test_the_range_ends_are_inclusive_then_exclusive() -> None:
    assert datetime(2000, 1, 1, tzinfo=UTC) == parse_ts("2000-01-01T00:00:00Z")
    assert datetime(2099, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) == parse_ts(
        "2099-12-31T23:59:59.999Z"
    )


@pytest.mark.parametrize(
    ("value", "year"),
    [("9999-12-31T23:59:59.999Z", 9999), (0, 1970), ("1970-01-01T00:00:05Z", 1970)],
)
def test_a_devices_own_time_is_read_however_far_off(value: object, year: int) -> None:
    """A device with a bad clock still reports: the edge replaces its time, not the event."""
    assert year == parse_device_ts(value).year


def test_a_device_time_beyond_any_calendar_is_no_time() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_device_ts(10**20)


def test_what_the_hub_stored_before_the_range_is_still_read_back() -> None:
    """A year-9999 event committed by an older hub must not stop a newer one loading it."""
    stored = {
        "id": "db-fence-01:1",
        "site": "s",
        "device": "db-fence-01",
        "kind": "fence.breach",
        "zone": "z1",
        "ts": "9999-12-31T23:59:59.999Z",
        "edge_ts": "2026-07-27T21:21:05.123Z",
        "severity": "warning",
    }
    with pytest.raises(ValidationError, match="out of range"):
        Event.model_validate(stored)
    event = Event.model_validate(clamp_stored(stored))
    assert ("2099-12-31T23:59:59.999Z", "db-fence-01:1") == (format_ts(event.ts), event.id)
    assert "2026-07-27T21:21:05.123Z" == format_ts(event.edge_ts)
