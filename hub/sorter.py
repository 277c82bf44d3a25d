"""The sorter: parses and checks one edge message against the protocol and the
configuration (PROTOCOL 2 and 7.12), before ingest commits anything.

Pure: a message is either refused (``Refused``, with the reason counted and kept
as a dead letter by ingest) or turned into what it carries (an ``Item``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import ValidationError

from hub.store import Snapshot
from riverguard.config import Config
from riverguard.wire import topics
from riverguard.wire.models import (
    EVENT_LIST,
    MAX_BATCH_EVENTS,
    MAX_BATCH_PAYLOAD_BYTES,
    MAX_EVENT_PAYLOAD_BYTES,
    MAX_SNAPSHOT_BYTES,
    AnnouncementAck,
    DeviceStatus,
    EdgeStatus,
    Event,
)
from riverguard.wire.reject_reasons import RejectReason

# Small status and ack messages; anything bigger is not one of ours.
MAX_STATUS_PAYLOAD_BYTES = 16 * 1024
# Dead letters keep the start of a refused payload, enough to see what it was.
DEAD_LETTER_BYTES = 64 * 1024
_JPEG_MAGIC = b"\xff\xd8"

_Small = TypeVar("_Small", DeviceStatus, EdgeStatus, AnnouncementAck)


class Refused(Exception):
    """A message refused with ``reason``; ``ack`` names an event id to acknowledge anyway.

    ``payload``: what to keep as the dead letter when it is not the whole message
    (one element of a batch).
    """

    def __init__(
        self,
        reason: RejectReason,
        detail: str,
        ack: tuple[str, str] | None = None,
        payload: bytes | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.ack = ack
        self.payload = payload


def _validation_reason(exc: ValidationError) -> RejectReason:
    if any(error["type"] == "json_invalid" for error in exc.errors()):
        return "malformed_json"
    return "invalid"


def _short(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)[:3]
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '-'}: {e['msg']}" for e in errors)


@dataclass(frozen=True, slots=True)
class EventIn:
    event: Event
    # How far the edge's clock is from the hub's, in seconds.
    skew_s: float
    # The event serialised once, as it is stored and pushed.
    json: str


@dataclass(frozen=True, slots=True)
class EventBatchIn:
    """A batch (PROTOCOL 7.12): its good events, and each bad element's refusal."""

    events: list[EventIn]
    refused: list[Refused]


@dataclass(frozen=True, slots=True)
class DeviceStatusIn:
    device: str
    status: DeviceStatus


@dataclass(frozen=True, slots=True)
class EdgeStatusIn:
    site: str
    status: EdgeStatus


@dataclass(frozen=True, slots=True)
class AckIn:
    site: str
    speaker: str
    ack: AnnouncementAck


Item = EventIn | EventBatchIn | Snapshot | DeviceStatusIn | EdgeStatusIn | AckIn


class Sorter:
    """Parses and checks one message against the protocol and the configuration.

    Pure: raises ``Refused`` with the reason, or returns what the message carries.
    """

    def __init__(self, config: Config) -> None:
        self.config = config

    def sort(self, topic: str, payload: bytes, now: datetime) -> Item:
        try:
            parsed = topics.parse(topic)
        except topics.TopicError as exc:
            raise Refused("bad_topic", str(exc)) from None
        if not isinstance(parsed, topics.SiteTopic):
            raise Refused("bad_topic", "not an edge-to-hub topic")
        if parsed.site not in self.config.site_by_id:
            raise Refused("unknown_site", f"site {parsed.site!r} is not configured")
        if parsed.kind == "events":
            return self._event(parsed.site, payload, now)
        if parsed.kind == "event_batch":
            return self._event_batch(parsed.site, payload, now)
        name = parsed.name or ""
        if parsed.kind == "snapshot":
            return self._snapshot(parsed.site, name, payload, now)
        if parsed.kind == "device_status":
            self._known_device(parsed.site, name)
            return DeviceStatusIn(name, self._small(payload, DeviceStatus))
        if parsed.kind == "edge_status":
            return EdgeStatusIn(parsed.site, self._small(payload, EdgeStatus))
        if parsed.kind == "ack":
            self._known_device(parsed.site, name, "speaker")
            return AckIn(parsed.site, name, self._small(payload, AnnouncementAck))
        raise Refused("bad_topic", f"the hub does not take {parsed.kind} messages")

    def _event(self, topic_site: str, payload: bytes, now: datetime) -> EventIn:
        if len(payload) > MAX_EVENT_PAYLOAD_BYTES:
            raise Refused("oversize", f"{len(payload)} bytes > {MAX_EVENT_PAYLOAD_BYTES}")
        try:
            event = Event.model_validate_json(payload)
        except ValidationError as exc:
            raise Refused(_validation_reason(exc), _short(exc)) from None
        return self._checked(topic_site, event, event.model_dump_json(), now)

    def _checked(self, topic_site: str, event: Event, event_json: str, now: datetime) -> EventIn:
        """A parsed event of ``topic_site``'s topic, checked against the configuration."""
        own_id = event.id.startswith(f"{event.device}:")
        # A refused event is acknowledged (7.4a) only under an id of its own device: one
        # that names another device's id must not end that event's resends.
        ack = (topic_site, event.id) if own_id else None
        if event.site != topic_site:
            raise Refused(
                "site_mismatch", f"event of {event.site!r} on {topic_site!r}'s topic", ack
            )
        device = self.config.device_by_id.get(event.device)
        if device is None or device.site != event.site:
            raise Refused(
                "unknown_device",
                f"device {event.device!r} is not configured for {event.site!r}",
                ack,
            )
        if device.type != event.device_type:
            raise Refused(
                "wrong_device", f"{event.device!r} is a {device.type}: no {event.kind}", ack
            )
        if not own_id:
            # Ids are the device's own (PROTOCOL 2.1, 7.10): an event cannot take, and so
            # pre-empt, an id of another device.
            raise Refused("wrong_device", f"id {event.id!r} is not one of {event.device!r}'s", ack)
        if event.zone not in self.config.site_by_id[event.site].zone_ids:
            raise Refused(
                "unknown_zone", f"zone {event.zone!r} is not a zone of {event.site!r}", ack
            )
        if not device.covers(event.zone):
            # A device's login (or a compromised edge) must not raise or clear the
            # alarms of the zones of its site that the device does not watch.
            raise Refused("wrong_zone", f"{event.device!r} does not cover zone {event.zone!r}", ack)
        return EventIn(event, round(abs((event.edge_ts - now).total_seconds()), 1), event_json)

    def _event_batch(self, topic_site: str, payload: bytes, now: datetime) -> EventBatchIn:
        """Each element as a single event on ``topic_site``'s topic would be (7.12).

        The common case, every element a valid event of a normal size, is
        parsed in one pass. Otherwise each element is parsed again alone, so
        that a bad one is refused with its own reason and the rest are kept.
        """
        if len(payload) > MAX_BATCH_PAYLOAD_BYTES:
            raise Refused("oversize", f"batch of {len(payload)} bytes > {MAX_BATCH_PAYLOAD_BYTES}")
        try:
            events = EVENT_LIST.validate_json(payload)
        except ValidationError:
            return self._elements(topic_site, payload, now)
        dumped = [event.model_dump_json() for event in events]
        if not 0 < len(events) <= MAX_BATCH_EVENTS or any(
            len(text) > MAX_EVENT_PAYLOAD_BYTES for text in dumped
        ):
            return self._elements(topic_site, payload, now)
        good: list[EventIn] = []
        refused: list[Refused] = []
        for index, (event, text) in enumerate(zip(events, dumped, strict=True)):
            try:
                good.append(self._checked(topic_site, event, text, now))
            except Refused as exc:
                refused.append(_element_refused(exc, index, text.encode()))
        return EventBatchIn(good, refused)

    def _elements(self, topic_site: str, payload: bytes, now: datetime) -> EventBatchIn:
        try:
            elements = json.loads(payload)
        except (ValueError, RecursionError) as exc:  # also not UTF-8, or nested too deeply
            raise Refused("malformed_json", f"batch: {str(exc)[:200]}") from None
        if not isinstance(elements, list):
            raise Refused("not_array", f"a batch is a JSON array, not {type(elements).__name__}")
        if not 0 < len(elements) <= MAX_BATCH_EVENTS:
            reason: RejectReason = "invalid" if not elements else "oversize"
            raise Refused(reason, f"batch of {len(elements)} events, not 1 to {MAX_BATCH_EVENTS}")
        good: list[EventIn] = []
        refused: list[Refused] = []
        for index, element in enumerate(elements):
            try:
                text = json.dumps(element, separators=(",", ":")).encode()
            except RecursionError:  # as deep as json.loads allowed, and a few frames deeper
                refused.append(Refused("invalid", f"batch element {index}: nested too deeply"))
                continue
            try:
                # Through a single event's own path: the same checks, reasons and details.
                good.append(self._event(topic_site, text, now))
            except Refused as exc:
                refused.append(_element_refused(exc, index, text))
        return EventBatchIn(good, refused)

    def _snapshot(self, site: str, event_id: str, payload: bytes, now: datetime) -> Snapshot:
        if len(payload) > MAX_SNAPSHOT_BYTES:
            raise Refused("oversize", f"snapshot of {len(payload)} bytes > {MAX_SNAPSHOT_BYTES}")
        if not payload.startswith(_JPEG_MAGIC):
            raise Refused("not_jpeg", "snapshot does not start with a JPEG marker")
        # Only a camera of the site takes pictures: its events' ids start with its id.
        self._known_device(site, event_id.partition(":")[0], "camera")
        return Snapshot(event_id, site, payload, now)

    def _known_device(self, site: str, device_id: str, device_type: str | None = None) -> None:
        device = self.config.device_by_id.get(device_id)
        if device is None or device.site != site or (device_type and device.type != device_type):
            what = device_type or "device"
            raise Refused("unknown_device", f"{what} {device_id!r} is not configured for {site!r}")

    def _small(self, payload: bytes, model: type[_Small]) -> _Small:
        if len(payload) > MAX_STATUS_PAYLOAD_BYTES:
            raise Refused("oversize", f"{len(payload)} bytes > {MAX_STATUS_PAYLOAD_BYTES}")
        try:
            return model.model_validate_json(payload)
        except ValidationError as exc:
            raise Refused(_validation_reason(exc), _short(exc)) from None


def _element_refused(refused: Refused, index: int, element: bytes) -> Refused:
    """A batch element's refusal: its index in the detail, its own JSON as the dead letter."""
    detail = f"batch element {index}: {refused.detail}"
    return Refused(refused.reason, detail, refused.ack, element[:DEAD_LETTER_BYTES])
