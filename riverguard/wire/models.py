"""Pydantic models for every message of docs/protocol.md.

Vendor formats (section 1) are tolerant: unknown fields are ignored, since a
device firmware update may add some. Formats we own (sections 2-5) are frozen
and forbid unknown fields, so a typo is an error, not silently lost data.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from riverguard.wire.times import DeviceTime, Timestamp

IDENT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN)]
# Event ids are derived by the edge ("fence-03:1842", "cam-01:frigate-1690000.1-abc").
# No MQTT wildcards or separators, since they appear in snapshot topics.
EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

MAX_SNAPSHOT_BYTES = 512 * 1024
# Largest raw device payload the edge will parse; a camera snapshot in base64 is
# the biggest legitimate one (512 KiB decoded is about 683 KiB encoded).
MAX_RAW_PAYLOAD_BYTES = 768 * 1024
# Largest normalised event the hub will parse (snapshots travel separately).
MAX_EVENT_PAYLOAD_BYTES = 64 * 1024
# An event batch (7.12): at most this many events and bytes. 500 is the most the hub
# commits in one transaction; 512 KiB holds 500 events of ~1 KiB (ours are ~350 bytes)
# and stays well under the broker's max_packet_size (1,100,000 in mosquitto.conf).
MAX_BATCH_EVENTS = 500
MAX_BATCH_PAYLOAD_BYTES = 512 * 1024
# What a hub lists in its status (7.12) when it takes event batches.
EVENT_BATCH = "events/batch"

FenceState = Literal["breach", "clear", "tamper", "fault"]
CameraRule = Literal["intrusion", "line_crossing", "loitering", "water_entry"]
Severity = Literal["info", "warning", "critical"]
EventKind = Literal[
    "fence.breach",
    "fence.clear",
    "fence.tamper",
    "fence.fault",
    "camera.intrusion",
    "camera.line_crossing",
    "camera.loitering",
    "camera.water_entry",
]
DeviceType = Literal["fence", "camera", "speaker"]
AckState = Literal["received", "playing", "done", "failed", "expired"]
SpeakerPlayState = Literal["playing", "done", "failed"]
AlarmState = Literal["open", "acknowledged", "resolved"]
Outcome = Literal["persuaded_away", "rescued", "false_alarm", "patrol_sent", "other"]
RiskColour = Literal["blue", "yellow", "orange", "red"]
NextStep = Literal["repeat", "stronger_clip", "live_talk", "send_patrol"]
# Why an alarm climbed to its escalation level (docs/protocol.md 7.40).
EscalationReason = Literal[
    "unacknowledged", "trigger_after_announcement", "by_officer", "dispatch_exhausted"
]
AudioFormat = Literal["wav", "mp3", "ulaw"]
# An agent's availability: "offline" is its last will, "stopped" a clean stop.
Availability = Literal["online", "offline", "stopped"]

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


class _Vendor(BaseModel):
    """A device's own format: tolerant of fields we do not know."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class _Owned(BaseModel):
    """A format we own: strict."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- 1. Field devices -> broker ------------------------------------------------


def _check_snapshot(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    # Decoded size is 3/4 of the encoded length; check before decoding anything big.
    if len(value) * 3 // 4 > MAX_SNAPSHOT_BYTES + 3:
        raise ValueError(f"snapshot larger than {MAX_SNAPSHOT_BYTES} bytes")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("snapshot is not valid base64") from None
    if len(raw) > MAX_SNAPSHOT_BYTES:
        raise ValueError(f"snapshot larger than {MAX_SNAPSHOT_BYTES} bytes")
    return value


# A device's sequence numbers: 64-bit as any controller counts (and as SQLite stores
# them); a bigger number would make an event id longer than ids may be.
MAX_SEQ = 2**63 - 1


class FenceReport(_Vendor):
    """PROTOCOL 1.1: generic fence controller."""

    seq: int = Field(ge=0, le=MAX_SEQ, strict=True)
    # The device's clock, however wrong: the edge replaces a time out of range.
    ts: DeviceTime
    zone: Ident
    state: FenceState


class CameraReport(_Vendor):
    """PROTOCOL 1.2: generic AI camera."""

    seq: int = Field(ge=0, le=MAX_SEQ, strict=True)
    ts: DeviceTime
    zone: Ident
    rule: CameraRule
    object: str = Field(min_length=1, max_length=64)
    confidence: float = Field(ge=0.0, le=1.0)
    snapshot: Annotated[str | None, AfterValidator(_check_snapshot)] = None

    def snapshot_bytes(self) -> bytes | None:
        return base64.b64decode(self.snapshot) if self.snapshot else None


class DeviceStatusReport(_Vendor):
    """PROTOCOL 1.4: a device's retained status (and its last will)."""

    online: bool = Field(strict=True)
    battery: float | None = Field(default=None, ge=0.0, le=1.0)
    rssi: int | None = Field(default=None, ge=-150, le=0)


class SpeakerPlay(_Owned):
    """PROTOCOL 1.5 ``mqtt`` driver: edge -> speaker."""

    id: str = Field(min_length=1, max_length=100)
    url: str
    sha256: Sha256Hex
    volume: int = Field(ge=0, le=100)
    repeat: int = Field(ge=1, le=10)


class SpeakerState(_Vendor):
    """PROTOCOL 1.5 ``mqtt`` driver: speaker -> edge."""

    id: str = Field(min_length=1, max_length=100)
    state: SpeakerPlayState
    detail: str = ""


# --- 2. Edge agent -> hub ------------------------------------------------------


class Event(_Owned):
    """PROTOCOL 2.1: a normalised event."""

    id: EventId
    site: Ident
    device: Ident
    kind: EventKind
    zone: Ident
    ts: Timestamp
    edge_ts: Timestamp
    severity: Severity
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    object: str | None = None
    snapshot: bool = False
    attrs: dict[str, Any] = Field(default_factory=dict)

    @property
    def device_type(self) -> str:
        return self.kind.split(".", 1)[0]


# A batch's events (7.12) parsed in one pass; its limits are checked by the reader.
EVENT_LIST = TypeAdapter(list[Event])


class DeviceStatus(_Owned):
    """PROTOCOL 2.3: a device's status as relayed by the edge."""

    online: bool = Field(strict=True)
    ts: Timestamp
    battery: float | None = None
    rssi: int | None = None


class EdgeStatus(_Owned):
    """PROTOCOL 2.3: the edge agent's own status; its last will has online false."""

    online: bool = Field(strict=True)
    ts: Timestamp
    version: str = ""
    outbox: int = 0
    # Uncommitted events the outbox dropped for room (never critical ones), ever.
    dropped: int = 0
    # Why it is (not) online; absent in older statuses: taken from ``online``.
    state: Availability = "online"

    @model_validator(mode="before")
    @classmethod
    def _state_from_online(cls, data: Any) -> Any:
        if isinstance(data, dict) and "state" not in data and data.get("online") is False:
            return {**data, "state": "offline"}
        return data

    @model_validator(mode="after")
    def _state_matches_online(self) -> EdgeStatus:
        if self.online != (self.state == "online"):
            raise ValueError(f"online {self.online} contradicts state {self.state}")
        return self


class AnnouncementAck(_Owned):
    """PROTOCOL 2.4: a speaker's announcement state, reported by the edge."""

    id: str = Field(min_length=1, max_length=100)
    state: AckState
    ts: Timestamp
    detail: str = ""


# --- 3. Hub -> edge ------------------------------------------------------------


class HubStatus(BaseModel):
    """PROTOCOL 7.12: the hub's retained availability; its last will has online false.

    Tolerant, unlike our other formats: edges of every age read the status of
    hubs of every age, and an edge that refused a newer hub's status would only
    lose the batches it could have sent.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    online: bool = Field(strict=True)
    # ``online``, ``offline`` (the last will) or ``stopped`` (a clean shutdown).
    state: str
    # Optional messages the hub takes on top of PROTOCOL 2 (``EVENT_BATCH``).
    accepts: list[str] = Field(default_factory=list)
    version: str = ""
    ts: Timestamp

    @property
    def takes_event_batches(self) -> bool:
        return self.online and self.state == "online" and EVENT_BATCH in self.accepts


class AudioRef(_Owned):
    url: str
    sha256: Sha256Hex
    format: AudioFormat
    duration_ms: int = Field(ge=0)


class Announce(_Owned):
    """PROTOCOL 3.1."""

    id: str = Field(min_length=1, max_length=100)
    audio: AudioRef
    repeat: int = Field(default=1, ge=1, le=10)
    volume: int = Field(default=80, ge=0, le=100)
    priority: int = Field(default=5, ge=0, le=10)
    alarm_id: str | None = None
    requested_by: str = ""
    expires_at: Timestamp


class Stop(_Owned):
    """PROTOCOL 3.2."""

    id: str = Field(min_length=1, max_length=100)


class Committed(_Owned):
    """PROTOCOL 3.3: events now in the hub's state store."""

    ids: list[EventId] = Field(max_length=10_000)


# --- 5. Alarm ------------------------------------------------------------------

IntrusionCause = Literal["opened", "quiet_gap", "after_gone"]
# The hub's own resolve notes (7.42), which readers say in their language.
NoteCode = Literal["quiet_after_announcement"]


class Intrusion(_Owned):
    """PROTOCOL 7.36: one entry into the alarm's zone, its triggers folded together."""

    # When the hub raised it (for the first, the alarm's ``opened_at``).
    raised_at: Timestamp
    # Its first and latest trigger's time (event ``ts``, never later than the hub's).
    first_ts: Timestamp
    last_ts: Timestamp
    device: str
    # The camera's track of its first trigger (Frigate's event id), if it has one.
    track: str | None = None
    event_id: str
    count: int = 1
    cause: IntrusionCause = "opened"
    # A fence of the zone reported ``clear`` after its latest trigger.
    gone_at: Timestamp | None = None


class Alarm(_Owned):
    """PROTOCOL 5."""

    id: str
    site: Ident
    zone: Ident
    state: AlarmState
    severity: Severity
    opened_at: Timestamp
    updated_at: Timestamp
    event_count: int
    event_ids: list[str]
    last_event_id: str
    acked_by: str | None = None
    acked_at: Timestamp | None = None
    resolved_by: str | None = None
    resolved_at: Timestamp | None = None
    outcome: Outcome | None = None
    note: str | None = None
    # The hub's own note (7.42) as a code and the seconds it names, for readers to say in
    # their language; ``note`` keeps the English for readers from before.
    note_code: NoteCode | None = None
    note_window_s: float | None = None
    escalation_level: int = 0
    announcements: list[str] = Field(default_factory=list)
    # Extensions (docs/protocol.md 7.10): the escalation level's name on the grid path
    # and when the next level is due while the alarm stays unacknowledged.
    escalation_name: str = "duty officer"
    escalate_at: Timestamp | None = None
    # Why it climbed to its level (7.40): null at level 0 and in alarms stored before;
    # ``escalated_by`` names the officer who called the level (``by_officer`` only).
    escalation_reason: EscalationReason | None = None
    escalated_by: str | None = None
    # Device types seen (fence, camera), and the repeat window for severity raising.
    sources: list[str] = Field(default_factory=list)
    repeat_window_start: Timestamp | None = None
    repeat_count: int = 0
    # Deterrence loop: the proposed outcome and the proposed next step.
    suggestion: Outcome | None = None
    next_step: NextStep | None = None
    # When the zone counts as clear after the last announcement, if no trigger comes.
    clear_at: Timestamp | None = None
    # A fence of the zone reported ``clear`` since the last announcement.
    fence_clear: bool = False
    # Entries into the zone (7.36), the newest last; at most ``MAX_INTRUSIONS`` kept,
    # ``intrusion_count`` counts them all. Empty in alarms stored before.
    intrusions: list[Intrusion] = Field(default_factory=list)
    intrusion_count: int = 0


# --- 4. Hub -> console ---------------------------------------------------------

ServerMessageType = Literal[
    "hello",
    "alarm",
    "event",
    "device",
    "edge",
    "announcement",
    "site",
    "error",
    "links",
    "heartbeat",
    "dispatch",
    "people",
]


class ServerMessage(_Owned):
    """PROTOCOL 4.1: every WebSocket message from the hub."""

    seq: int
    type: ServerMessageType
    data: dict[str, Any]


SiteOrAll = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z0-9][a-z0-9_-]{0,62})$")]


class SubscribeOp(_Owned):
    """Console -> hub: receive ``event`` messages of these sites (``*`` for all) and,
    if ``devices`` is given, ``device`` messages of those sites only (PROTOCOL 7.37;
    without it, of every site as before)."""

    op: Literal["subscribe"]
    events: list[SiteOrAll]
    devices: Annotated[list[SiteOrAll], Field(max_length=10_000)] | None = None


class PingOp(_Owned):
    op: Literal["ping"]


ClientOp = Annotated[SubscribeOp | PingOp, Field(discriminator="op")]
CLIENT_OP = TypeAdapter[SubscribeOp | PingOp](ClientOp)
