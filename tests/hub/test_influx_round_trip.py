"""Line protocol and InfluxQL quoting, round trip through a real influxd.

Arbitrary tag values, field keys and string fields (unicode, quotes, commas,
spaces, equals signs, backslashes, newlines) are written with our encoder,
selected with our InfluxQL quoting, and must come back equal; what line
protocol cannot carry (a newline in a tag) is refused by the encoder with
a ValueError, never written wrong.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.influx import (
    Influx,
    escape_key,
    escape_measurement,
    escape_string_field,
    event_line,
    quote_ident,
    quote_literal,
    row_to_event,
)
from riverguard.services import Influxd
from riverguard.wire.models import Event

pytestmark = pytest.mark.integration

# Each example is a write and a query or two (~0.1 s on a busy machine): a few dozen.
PROPERTY = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_TRICKY = " ,=\"'\\\n\r\t#水é😀"
# Strings of every kind, with the characters line protocol and InfluxQL treat specially
# drawn often.
_strings = st.text(
    st.one_of(st.sampled_from(_TRICKY), st.characters(codec="utf-8")),
    min_size=1,
    max_size=24,
)
_times = itertools.count(1_700_000_000_000_000_000, 1_000)


def _ns(value: object) -> int:
    assert isinstance(value, int)
    return value


def _unwritable(value: str, *, measurement: bool = False) -> bool:
    if measurement and value[:1] in ("#", "\t"):
        return True
    if "\x00" in value:
        return True
    return "\n" in value or "\r" in value or re.search(r"\\([ ,=]|$)", value) is not None


def _run(influxd: Influxd, database: str, lines: list[str], query: str) -> list[dict[str, object]]:
    async def go() -> list[dict[str, object]]:
        async with httpx.AsyncClient() as http:
            influx = Influx(http, influxd.url, database)
            if lines:
                await influx.write(lines)
            return await influx.query(query)

    return asyncio.run(go())


@PROPERTY
# "time" is InfluxDB's own column, never a field key (ours are a fixed few).
@given(
    measurement=_strings,
    tag=_strings,
    key=_strings.filter(lambda k: k != "time"),
    text=_strings,
)
@example(measurement="m", tag="trailing\\", key="k", text="v")  # refused: it escaped the space
@example(measurement="m", tag="back\\slash", key="k", text="v")  # was doubled, read back so
@example(measurement="m", tag="a\\\\ b", key="k", text="v")
@example(measurement="m", tag="a\\ b", key="k", text="v")
@example(measurement="m\\", tag="a\\,b", key="k\\", text="\\")
@example(measurement="m", tag="x", key="k", text='say "hi"\\')
@example(measurement="m", tag="x", key="k", text="two\nlines")
@example(measurement="m", tag="a\x00b", key="k", text="v")  # refused: a blank to InfluxDB
@example(measurement="m", tag="x", key="\x00", text="v")  # was stored under another key
@example(measurement="m", tag="x", key="k", text="a\x00b")
@example(measurement='"m\n', tag="=", key="k=", text="=")
@example(measurement="#m", tag="x", key="k", text="v")  # a comment: 204, nothing stored
@example(measurement="\tm", tag="x", key="k", text="v")  # stored as "m"
def test_tags_fields_and_names_come_back_equal(
    influxd: Influxd, influx_database: str, *, measurement: str, tag: str, key: str, text: str
) -> None:
    time_ns = next(_times)
    try:
        line = (
            f"{escape_measurement(measurement)},t={escape_key(tag)}"
            f" {escape_key(key)}={escape_string_field(text)},n=1i {time_ns}"
        )
    except ValueError:
        # What line protocol cannot carry: refused, never written as something else.
        assert _unwritable(measurement, measurement=True) or _unwritable(tag) or _unwritable(key)
        return
    rows = _run(
        influxd,
        influx_database,
        [line],
        f"SELECT * FROM {quote_ident(measurement)} WHERE time = {time_ns}",  # noqa: S608
    )
    assert 1 == len(rows), line
    (row,) = rows
    assert tag == row["t"]
    assert text == row[key]
    selected = _run(
        influxd,
        influx_database,
        [],
        f"SELECT * FROM {quote_ident(measurement)}"  # noqa: S608
        f" WHERE {quote_ident('t')} = {quote_literal(tag)} AND time >= {time_ns}",
    )
    assert [time_ns] == [_ns(row["time"]) for row in selected]


@PROPERTY
@given(text=_strings, attr=_strings)
def test_an_events_strings_come_back_equal(
    influxd: Influxd, influx_database: str, *, text: str, attr: str
) -> None:
    """``object`` and ``attrs`` are free text from devices: written and read as they were."""
    event = Event(
        id=f"cam-01:{next(_times)}",
        site="danshui-bridge",
        device="cam-01",
        kind="camera.intrusion",
        zone="z1",
        ts=datetime(2026, 7, 27, 21, 21, 5, 123000, tzinfo=UTC),
        edge_ts=datetime(2026, 7, 27, 21, 21, 5, 131000, tzinfo=UTC),
        severity="warning",
        confidence=0.5,
        object=text,
        attrs={"note": attr, attr: [attr]},
    )
    rows = _run(
        influxd,
        influx_database,
        [event_line(event)],
        f"SELECT * FROM events WHERE id = {quote_literal(event.id)}",  # noqa: S608
    )
    assert [event] == [row_to_event(row) for row in rows]


def test_influxql_quoting_refuses_what_it_cannot_carry_and_escapes_newlines() -> None:
    """U+0000 ends an InfluxQL query where it stands; a raw newline ends a string badly."""
    for quote in (quote_literal, quote_ident):
        with pytest.raises(ValueError, match="U\\+0000"):
            quote("a\x00b")
    assert "'two\\nlines'" == quote_literal("two\nlines")
    assert '"it\\"s"' == quote_ident('it"s')
