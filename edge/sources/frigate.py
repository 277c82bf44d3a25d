"""Frigate NVR (PROTOCOL 1.3): ``{prefix}/events`` and ``{prefix}/{camera}/person/snapshot``.

``prefix`` is the site's ``frigate_topic_prefix``, the ``mqtt.topic_prefix`` its
NVR publishes under (Frigate's default ``frigate``). Sites sharing a broker give
each NVR its own, so that an edge reads its own site's NVR only.

Frigate reports each tracked object as one event id with a stream of
messages: ``new`` when it is first confirmed, ``update`` as it moves (its
``current_zones`` and ``entered_zones`` grow as it walks into zones), ``end``
when it is gone. Riverguard makes **one** event per Frigate event id:

- It is emitted on the first message (``new``, ``update`` or even ``end``) in
  which a ``person`` that is not a false positive is in one of the camera's
  configured zones; ``new`` often has no zones yet, so that is usually an
  ``update``. Its id is ``{device}:frigate-{frigate id}``, its ``ts`` the
  frame time of that message, its zone the first configured one the person is
  in (current zones before entered ones), its kind ``camera.{rule}`` with the
  rule configured for that zone (``frigate_rules``, default ``intrusion``),
  its confidence Frigate's ``top_score``, and ``attrs.frigate_id`` /
  ``attrs.frigate_zones`` say where it came from.
- Later ``update`` messages of that id make nothing (skipped ``emitted``).
- ``end`` closes it: the edge forgets the open event, remembers the id as
  ended (a late or replayed message for it is skipped ``ended``) and logs
  the track's duration. Nothing is sent to the hub for an ``end``: events are
  immutable and counted once by id, and the alarm's story is told by the
  events that opened it and by the officer's resolution.

Snapshots: Frigate publishes the best JPEG of the latest ``person`` of a
camera on ``{prefix}/{camera}/person/snapshot`` (retained) as it tracks it,
normally before the person reaches a zone. The newest one of the camera is
attached to the event (PROTOCOL 2.2) if it arrived within
``SNAPSHOT_MAX_AGE_S`` of the event; a retained snapshot delivered at
subscription time is old news and is not kept. One that arrives after its
event was emitted without a snapshot, while that Frigate event is still open,
is published for it afterwards (a ``LateSnapshot``, on the event's snapshot
topic; the event itself, already sent, keeps ``snapshot: false``), once per
event; it is also kept for the camera's next event as any other.

Zones: each Frigate zone name maps to a site zone through the device's
``frigate_zones`` (names not listed are taken as site zone ids); a person
only in zones that map to none of the camera's zones makes no event
(skipped ``unconfigured_zone``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from edge.adapters import (
    CAMERA_KIND,
    Adapted,
    LateSnapshot,
    camera_severity,
    device_time,
    new_event,
    parse_message,
)
from edge.errors import Rejected, Skipped
from edge.sources.base import Raw
from riverguard.config import Device, Site
from riverguard.wire import topics
from riverguard.wire.models import MAX_SNAPSHOT_BYTES, CameraRule
from riverguard.wire.topics import FrigateTopic, TopicError

# A Frigate time no calendar holds: read as the latest one, so the edge's time stands in.
MAX_DEVICE_TIME = datetime.max.replace(tzinfo=UTC)

PERSON = "person"
DEFAULT_RULE: CameraRule = "intrusion"
# A snapshot older than this (by the edge's clock) is not attached to a new event.
SNAPSHOT_MAX_AGE_S = 30.0
# Frigate events tracked at once, and ended ids remembered, before the oldest are forgotten
# (an ``end`` lost on the way must not grow memory forever).
MAX_TRACKED = 10_000
# Zones of one Frigate object, and the length of a zone's name: far above any real
# camera's (Frigate zones are a handful of short names from its configuration).
MAX_ZONES = 64
ZoneName = Annotated[str, StringConstraints(max_length=100)]
_FRIGATE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,150}$")
_JPEG_MAGIC = b"\xff\xd8\xff"


class FrigateObject(BaseModel):
    """``before``/``after`` of a Frigate event message; Frigate adds fields freely."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    camera: str = Field(min_length=1, max_length=200)
    label: str = Field(min_length=1, max_length=64)
    start_time: float = Field(gt=0)
    end_time: float | None = None
    frame_time: float | None = None
    top_score: float | None = Field(default=None, ge=0.0, le=1.0)
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    false_positive: bool = False
    # Bounded: they travel in the event's attrs, and the hub takes events up to 64 KiB
    # (20,000 zone names made an event the hub then refused: a person lost).
    current_zones: list[ZoneName] = Field(default_factory=list, max_length=MAX_ZONES)
    entered_zones: list[ZoneName] = Field(default_factory=list, max_length=MAX_ZONES)
    has_snapshot: bool = False


class FrigateMessage(BaseModel):
    """A message on ``{prefix}/events``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["new", "update", "end"]
    before: FrigateObject | None = None
    after: FrigateObject


@dataclass(slots=True)
class _Snapshot:
    jpeg: bytes
    received: datetime


class FrigateSource:
    """The Frigate adapter of one site."""

    source: ClassVar[str] = "frigate"

    def __init__(self, site: Site, devices: Mapping[str, Device]) -> None:
        self.site = site
        self.prefix = site.frigate_topic_prefix
        # Frigate camera name -> our camera device.
        self.cameras = {
            device.source_ref or device.id: device
            for device in devices.values()
            if device.source == self.source and device.type == "camera"
        }
        self._emitted: OrderedDict[str, str] = OrderedDict()  # frigate id -> our event id
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._snapshots: dict[str, _Snapshot] = {}
        # Frigate camera -> (Frigate id, our event id) of its open event sent without a picture.
        self._bare: dict[str, tuple[str, str]] = {}

    def subscriptions(self) -> list[str]:
        return [
            topics.frigate_events(self.prefix),
            topics.frigate_snapshot("+", PERSON, self.prefix),
        ]

    def matches(self, topic: str) -> bool:
        return topic.startswith(self.prefix + "/")

    def handle(self, raw: Raw, edge_ts: datetime) -> list[Adapted | LateSnapshot]:
        try:
            parsed = topics.parse(raw.topic, self.prefix)
        except TopicError as exc:
            raise Rejected("bad_topic", str(exc)) from None
        if not isinstance(parsed, FrigateTopic):
            raise Rejected("bad_topic", f"not a Frigate topic: {raw.topic[:120]}")
        if parsed.camera is None:
            return [*self._event(parse_message(FrigateMessage, raw.payload), edge_ts)]
        return [*self._snapshot(parsed, raw, edge_ts)]

    # --- events ---------------------------------------------------------------------

    def _event(self, message: FrigateMessage, edge_ts: datetime) -> list[Adapted]:
        obj = message.after
        device = self.cameras.get(obj.camera)
        if device is None:
            raise Rejected("unknown_device", f"Frigate camera {obj.camera!r} is not configured")
        if not _FRIGATE_ID.fullmatch(obj.id):  # match(): "$" would let a final "\n" by
            raise Rejected("invalid", f"Frigate event id {obj.id[:60]!r} has unusual characters")
        if obj.id in self._ended:
            raise Skipped("ended", f"Frigate event {obj.id} already ended")
        if obj.label != PERSON:
            raise Skipped("not_person", f"a {obj.label[:30]}")
        if message.type == "end":
            self._ended[obj.id] = None
            _bound(self._ended)
        emitted = self._emitted.pop(obj.id, None) if message.type == "end" else None
        if self._bare.get(obj.camera, ("", ""))[0] == obj.id and message.type == "end":
            del self._bare[obj.camera]  # a later picture is of someone else
        if emitted is not None:
            return []  # closed; see the module docstring
        if obj.id in self._emitted:
            raise Skipped("emitted", f"Frigate event {obj.id} already made {self._emitted[obj.id]}")
        if obj.false_positive:
            raise Skipped("false_positive", f"Frigate event {obj.id}")
        zone = self._zone(device, obj)
        event_id = f"{device.id}:frigate-{obj.id}"
        adapted = self._adapted(device, obj, zone, event_id, edge_ts)
        if message.type != "end":
            self._emitted[obj.id] = event_id
            _bound(self._emitted)
            if adapted.snapshot is None:
                self._bare[obj.camera] = (obj.id, event_id)
            else:
                self._bare.pop(obj.camera, None)
        return [adapted]

    def _zone(self, device: Device, obj: FrigateObject) -> str:
        watched = set(device.zones) or self.site.zone_ids
        names = [*obj.current_zones, *obj.entered_zones]
        for name in names:
            zone = device.frigate_zones.get(name, name)
            if zone in watched:
                return zone
        if not names:
            raise Skipped("no_zone", f"Frigate event {obj.id} is in no zone yet")
        raise Skipped("unconfigured_zone", f"zones {sorted(set(names))[:5]} are not watched")

    def _adapted(
        self, device: Device, obj: FrigateObject, zone: str, event_id: str, edge_ts: datetime
    ) -> Adapted:
        rule = device.frigate_rules.get(zone, DEFAULT_RULE)
        snapshot = self._fresh_snapshot(obj.camera, edge_ts)
        try:
            raw_ts = datetime.fromtimestamp(obj.frame_time or obj.start_time, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raw_ts = MAX_DEVICE_TIME  # beyond any calendar: the edge's time stands in
        ts, off = device_time(raw_ts, edge_ts)
        event = new_event(
            id=event_id,
            site=self.site.id,
            device=device.id,
            kind=CAMERA_KIND[rule],
            zone=zone,
            ts=ts,
            edge_ts=edge_ts,
            severity=camera_severity(rule),
            confidence=obj.top_score if obj.top_score is not None else obj.score,
            object=PERSON,
            snapshot=snapshot is not None,
            attrs={
                "frigate_id": obj.id,
                "frigate_zones": list(dict.fromkeys([*obj.current_zones, *obj.entered_zones])),
            },
        )
        return Adapted(
            event,
            None,
            snapshot=snapshot,
            skew_s=(raw_ts - edge_ts).total_seconds(),
            device_ts=off,
        )

    # --- snapshots ------------------------------------------------------------------

    def _snapshot(self, topic: FrigateTopic, raw: Raw, edge_ts: datetime) -> list[LateSnapshot]:
        camera = topic.camera or ""
        if camera not in self.cameras:
            raise Skipped("unknown_camera", f"snapshot of unconfigured camera {camera[:60]!r}")
        if raw.retained:
            raise Skipped("retained_snapshot", f"the broker's old snapshot of {camera}")
        if len(raw.payload) > MAX_SNAPSHOT_BYTES:
            raise Rejected("bad_snapshot", f"{len(raw.payload)} bytes, limit {MAX_SNAPSHOT_BYTES}")
        if not raw.payload.startswith(_JPEG_MAGIC):
            raise Rejected("bad_snapshot", "Frigate snapshot is not a JPEG")
        self._snapshots[camera] = _Snapshot(raw.payload, edge_ts)
        bare = self._bare.pop(camera, None)
        if bare is None:
            return []
        return [LateSnapshot(bare[1], raw.payload)]

    def _fresh_snapshot(self, camera: str, edge_ts: datetime) -> bytes | None:
        snapshot = self._snapshots.get(camera)
        if snapshot is None:
            return None
        if (edge_ts - snapshot.received).total_seconds() > SNAPSHOT_MAX_AGE_S:
            return None
        return snapshot.jpeg


def _bound(memory: OrderedDict[str, str] | OrderedDict[str, None]) -> None:
    while len(memory) > MAX_TRACKED:
        memory.popitem(last=False)
