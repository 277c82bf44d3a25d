"""InfluxDB through its HTTP API v1: line protocol, queries, and the client.

What is written, and when, is ``hub.influx_writer``'s.

Points: measurement ``events``, tags site, device, kind, zone, severity.
InfluxDB keys a point by measurement, tags and time (PERF-NOTES), so the
time is the event's own, at millisecond precision, plus a sub-millisecond
offset derived from the event id: two distinct events of one device in one
millisecond do not overwrite each other, and writing one event twice
overwrites only itself.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import ssl
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import structlog

from hub.errors import InfluxError, RejectedPoints
from hub.metrics import HubMetrics
from hub.risk import LEVEL, Assessment
from riverguard.wire.models import Event, EventKind
from riverguard.wire.times import to_unix_ns

log = structlog.get_logger()

MEASUREMENT = "events"
_NS_PER_MS = 1_000_000

# --- line protocol -------------------------------------------------------------


# InfluxDB 1.x unescapes only a backslash before a separator (comma, space, and in keys
# and tag values an equals sign), and reads any other backslash, a doubled one too, as
# itself. So backslashes are written as they are, and one just before a separator or at
# the end (which would escape the separator that follows) cannot be written at all.
_BACKSLASH_BEFORE_KEY_SEPARATOR = re.compile(r"\\(?=[ ,=]|\Z)")
_BACKSLASH_BEFORE_SEPARATOR = re.compile(r"\\(?=[ ,]|\Z)")


def escape_measurement(value: str) -> str:
    """A measurement name: commas and spaces are escaped. ValueError if it cannot be written.

    Nor can one that starts with ``#`` (the line is a comment: InfluxDB answers 204 and
    stores nothing) or with a tab (skipped as blank: another name is stored).
    """
    _check_writable(value, _BACKSLASH_BEFORE_SEPARATOR)
    if value[:1] in ("#", "\t"):
        raise ValueError(f"line protocol cannot carry a measurement starting {value[:1]!r}")
    return value.replace(",", "\\,").replace(" ", "\\ ")


def escape_key(value: str) -> str:
    """A tag key, tag value or field key: commas, equals signs and spaces are escaped.

    ValueError for what line protocol cannot carry: a newline (it ends a line and
    cannot be escaped), or a backslash before a separator or at the end.
    """
    _check_writable(value, _BACKSLASH_BEFORE_KEY_SEPARATOR)
    return value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _check_writable(value: str, backslash: re.Pattern[str]) -> None:
    if "\n" in value or "\r" in value:
        raise ValueError("line protocol keys and tag values cannot contain newlines")
    if "\x00" in value:  # InfluxDB skips it as it skips blanks: another key is stored
        raise ValueError("line protocol keys and tag values cannot contain U+0000")
    if backslash.search(value):
        raise ValueError(
            "line protocol cannot carry a backslash before a separator or at the end"
            f" of a key or tag value: {value[:60]!r}"
        )


def escape_string_field(value: str) -> str:
    """A string field value, quotes included."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def point_time_ns(event: Event) -> int:
    """The event's millisecond plus a deterministic sub-millisecond offset from its id."""
    ms_ns = to_unix_ns(event.ts) // _NS_PER_MS * _NS_PER_MS
    return ms_ns + zlib.crc32(event.id.encode()) % _NS_PER_MS


def _field_value(value: str | float | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("line protocol cannot carry NaN or infinity")
        return repr(value)
    return escape_string_field(value)


@functools.lru_cache(maxsize=4096)
def _event_tags(device: str, kind: str, severity: str, site: str, zone: str) -> str:
    """The tag part of an event's line: the same for every event of a device and kind."""
    # Sorted by key: InfluxDB's own recommendation for write performance.
    tags = (("device", device), ("kind", kind), ("severity", severity), ("site", site))
    return ",".join(f"{key}={escape_key(value)}" for key, value in (*tags, ("zone", zone)) if value)


_EVENT_PREFIX = escape_measurement(MEASUREMENT)


def event_line(event: Event) -> str:
    tag_text = _event_tags(event.device, event.kind, event.severity, event.site, event.zone)
    fields = [
        f"id={escape_string_field(event.id)}",
        f"snapshot={_field_value(event.snapshot)}",
        f"edge_ts={to_unix_ns(event.edge_ts)}i",
    ]
    if event.confidence is not None:
        fields.append(f"confidence={_field_value(float(event.confidence))}")
    if event.object is not None:
        fields.append(f"object={escape_string_field(event.object)}")
    if event.attrs:
        attrs = json.dumps(event.attrs, ensure_ascii=False, separators=(",", ":"))
        fields.append(f"attrs={escape_string_field(attrs)}")
    return f"{_EVENT_PREFIX},{tag_text} {','.join(fields)} {point_time_ns(event)}"


RISK_MEASUREMENT = "site_risk"


def risk_line(site: str, assessment: Assessment, now: datetime) -> str:
    """A ``site_risk`` point: tag site; fields colour, level, unguarded zones, reasons."""
    fields = {
        "colour": assessment.colour,
        "level": LEVEL[assessment.colour],
        "unguarded": ",".join(assessment.unguarded),
        "reasons": ",".join(assessment.reasons),
        "recent_events": assessment.recent_events,
    }
    field_text = ",".join(f"{escape_key(k)}={_field_value(v)}" for k, v in fields.items())
    return (
        f"{escape_measurement(RISK_MEASUREMENT)},site={escape_key(site)} {field_text}"
        f" {to_unix_ns(now)}"
    )


# --- InfluxQL ------------------------------------------------------------------


def quote_literal(value: str) -> str:
    """An InfluxQL string literal. ValueError for a U+0000, which InfluxQL cannot carry."""
    return _quoted(value, "'")


def quote_ident(value: str) -> str:
    """An InfluxQL identifier. ValueError for a U+0000, which InfluxQL cannot carry."""
    return _quoted(value, '"')


def _quoted(value: str, quote: str) -> str:
    # InfluxQL's scanner takes U+0000 for the end of the query, and a raw newline ends a
    # string with an error; "\n" is its escape for one (as "\\" and the quote are).
    if "\x00" in value:
        raise ValueError("InfluxQL cannot carry U+0000")
    escaped = value.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")
    return quote + escaped + quote


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of ``GET /api/events``, already validated by the API layer."""

    site: str | None = None
    device: str | None = None
    kind: EventKind | None = None
    start: datetime | None = None
    end: datetime | None = None
    limit: int = 100
    # Paging: skip this many of the newest matches, or take only points older than ``before``.
    offset: int = 0
    before: datetime | None = None


def build_query(query: EventQuery) -> str:
    conditions = []
    for tag, value in (("site", query.site), ("device", query.device), ("kind", query.kind)):
        if value is not None:
            conditions.append(f"{quote_ident(tag)} = {quote_literal(value)}")
    if query.start is not None:
        conditions.append(f"time >= {to_unix_ns(query.start)}")
    if query.end is not None:
        # The offset can put a point up to 1 ms after its event time: include it.
        conditions.append(f"time < {to_unix_ns(query.end) + _NS_PER_MS}")
    if query.before is not None:
        # Strictly older than that millisecond (offsets keep points inside their ms).
        conditions.append(f"time < {to_unix_ns(query.before) // _NS_PER_MS * _NS_PER_MS}")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    limit = int(query.limit)
    offset = f" OFFSET {int(query.offset)}" if query.offset else ""
    # Safe: values are quoted by quote_literal and the API validated them first.
    return (
        f"SELECT * FROM {quote_ident(MEASUREMENT)}{where} ORDER BY time DESC"  # noqa: S608
        f" LIMIT {limit}{offset}"
    )


INTERVALS = {"hour": "1h", "day": "1d"}


@dataclass(frozen=True, slots=True)
class CountQuery:
    """Filters of ``GET /api/stats/events``, already validated by the API layer."""

    interval: str
    start: datetime
    end: datetime
    site: str | None = None
    tz: str | None = None


def build_count_query(query: CountQuery) -> str:
    conditions = [f"time >= {to_unix_ns(query.start)}", f"time < {to_unix_ns(query.end)}"]
    if query.site is not None:
        conditions.append(f"{quote_ident('site')} = {quote_literal(query.site)}")
    tz = f" tz({quote_literal(query.tz)})" if query.tz else ""
    # Safe: values are quoted by quote_literal and the API validated them first.
    return (
        f"SELECT count({quote_ident('id')}) FROM {quote_ident(MEASUREMENT)}"  # noqa: S608
        f" WHERE {' AND '.join(conditions)}"
        f" GROUP BY time({INTERVALS[query.interval]}) fill(0){tz}"
    )


def _from_ns(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value // 1000)


def row_to_event(row: dict[str, Any]) -> Event:
    """A row of ``SELECT *`` (epoch=ns) back into the event (2.1) it came from."""
    time_ns = int(row["time"])
    edge_ns = row.get("edge_ts")
    return Event(
        id=row["id"],
        site=row["site"],
        device=row["device"],
        kind=row["kind"],
        zone=row["zone"],
        ts=_from_ns(time_ns // _NS_PER_MS * _NS_PER_MS),
        edge_ts=_from_ns(int(edge_ns)) if edge_ns is not None else _from_ns(time_ns),
        severity=row["severity"],
        confidence=row.get("confidence"),
        object=row.get("object"),
        snapshot=bool(row.get("snapshot")),
        attrs=json.loads(row["attrs"]) if row.get("attrs") else {},
    )


# --- client --------------------------------------------------------------------


def http_client(ca_file: Path | None) -> httpx.AsyncClient:
    """InfluxDB's own HTTP client: an https:// server is verified against ``ca_file``
    (a private CA) or, without one, the system's authorities."""
    verify: ssl.SSLContext | bool = True
    if ca_file is not None:
        verify = ssl.create_default_context(cafile=str(ca_file))
    return httpx.AsyncClient(verify=verify)


class Influx:
    """The HTTP API v1 of InfluxDB 1.x, 2.x (v1 compatibility) or 3.x.

    A login (InfluxDB 1.x with auth-enabled) goes as HTTP basic auth: from
    ``login`` or the URL's ``user:password@``, which is taken out of the URL so
    that the URL can be shown in logs and errors.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        database: str,
        token: str | None = None,
        login: tuple[str, str] | None = None,
        *,
        metrics: HubMetrics | None = None,
    ) -> None:
        self.http = http
        self.metrics = metrics
        parsed = httpx.URL(url)
        if login is None and parsed.username:
            login = (parsed.username, parsed.password)
        self.url = str(parsed.copy_with(username=None, password=None)).rstrip("/")
        self.database = database
        self.headers = {"Authorization": f"Token {token}"} if token else {}
        if login is not None:
            basic = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
            self.headers = {"Authorization": f"Basic {basic}"}

    async def ping(self) -> bool:
        try:
            response = await self.http.get(f"{self.url}/ping", headers=self.headers, timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 204

    async def write(self, lines: Sequence[str]) -> None:
        body = ("\n".join(lines) + "\n").encode()
        try:
            response = await self.http.post(
                f"{self.url}/write",
                params={"db": self.database, "precision": "ns"},
                content=body,
                headers=self.headers,
                timeout=30.0,
            )
        except httpx.HTTPError as exc:
            raise InfluxError(f"InfluxDB unreachable: {exc!r}") from exc
        if response.status_code == 400:
            # Malformed points: InfluxDB wrote the valid ones; resending cannot help.
            raise RejectedPoints(f"InfluxDB refused points: {response.text[:300]}")
        if response.status_code != 204:
            raise InfluxError(
                f"InfluxDB refused a write ({response.status_code}): {response.text[:300]}"
            )

    async def query(self, influxql: str) -> list[dict[str, Any]]:
        """Rows of the first series of the first statement, times in ns."""
        try:
            response = await self.http.post(
                f"{self.url}/query",
                data={"db": self.database, "q": influxql, "epoch": "ns"},
                headers=self.headers,
                timeout=30.0,
            )
        except httpx.HTTPError as exc:
            raise InfluxError(f"InfluxDB unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise InfluxError(
                f"InfluxDB refused a query ({response.status_code}): {response.text[:300]}"
            )
        result = response.json()["results"][0]
        if "error" in result:
            raise InfluxError(f"InfluxDB query error: {result['error']}")
        rows: list[dict[str, Any]] = []
        for series in result.get("series", []):
            columns = series["columns"]
            rows.extend(dict(zip(columns, values, strict=True)) for values in series["values"])
        return rows

    async def events(self, query: EventQuery) -> list[Event]:
        """The events of ``query``; a point that is not one of our events is skipped.

        The database may hold points we did not write (another writer, a manual
        import, an older schema): one such point must not make the history
        unreadable, so it is logged and counted instead.
        """
        rows = await self.query(build_query(query))
        events = []
        for row in rows:
            try:
                events.append(row_to_event(row))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("influx_point_unreadable", error=repr(exc), time=row.get("time"))
                if self.metrics is not None:
                    self.metrics.influx_unreadable.inc()
        return events

    async def counts(self, query: CountQuery) -> list[tuple[datetime, int]]:
        """(bucket start, events) per hour or day, oldest first, empty buckets as 0."""
        rows = await self.query(build_count_query(query))
        return [(_from_ns(int(row["time"])), int(row["count"] or 0)) for row in rows]
