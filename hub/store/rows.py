"""What the state store takes and gives back: one frozen row type per kind of record."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hub.dispatch import Dispatch
from hub.notify.message import Purpose
from riverguard.wire.models import Alarm, Availability, Event
from riverguard.wire.times import format_ts


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    name: str
    role: str
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class TokenRow:
    token_hash: str
    username: str
    kind: str
    session_id: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenOwner:
    """Whose a live token is: the user, the session it belongs to and when it expires."""

    user: UserRow
    session_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: str
    site: str
    online: bool | None
    battery: float | None
    rssi: int | None
    status_ts: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class EdgeRow:
    site: str
    online: bool
    version: str
    outbox: int
    ts: datetime
    # online, offline (lost: its last will) or stopped (a clean shutdown); PROTOCOL 7.10.
    state: Availability


@dataclass(frozen=True, slots=True)
class RoutineLimit:
    """A site's routine-announcement limit: fewer than ``limit`` since ``since``."""

    limit: int
    since: datetime


@dataclass(frozen=True, slots=True)
class AnnouncementRow:
    """An announcement as recorded, with each speaker's state (by speaker id).

    ``clip`` (id, sha256, duration_ms) and ``history`` (one step per speaker and
    state) are kept as the JSON the console gets."""

    id: str
    alarm_id: str | None
    site: str
    requested_by: str
    created_at: datetime
    clip: dict[str, Any]
    priority: int
    repeat: int
    volume: int
    expires_at: datetime
    speakers: dict[str, str]
    history: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    event_id: str
    site: str
    jpeg: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Rejection:
    topic: str
    reason: str
    detail: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record: who did what, when, to what, with the before and after states."""

    ts: datetime
    username: str
    action: str
    alarm_id: str | None = None
    target: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    detail: str = ""
    id: int | None = None

    def shape(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": format_ts(self.ts),
            "username": self.username,
            "action": self.action,
            "alarm_id": self.alarm_id,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "detail": self.detail,
        }


class AlarmChanges(Protocol):
    """What the alarm rules made of a batch's new events, stored in the batch's transaction:
    the changed alarms (by id), each event's alarm, and the audit records of the change."""

    @property
    def changed(self) -> Mapping[str, Alarm]: ...

    @property
    def alarm_of(self) -> Mapping[str, str]: ...

    @property
    def audit(self) -> Sequence[AuditEntry]: ...


@dataclass(frozen=True, slots=True)
class NoAlarmChanges:
    """A batch with no new events, or committed without the alarm rules."""

    changed: Mapping[str, Alarm] = field(default_factory=dict)
    alarm_of: Mapping[str, str] = field(default_factory=dict)
    audit: Sequence[AuditEntry] = ()


@dataclass
class Batch:
    """What one ingest batch commits in one transaction."""

    events: list[Event] = field(default_factory=list)
    received_at: dict[str, datetime] = field(default_factory=dict)
    snapshots: list[Snapshot] = field(default_factory=list)
    last_seen: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    # Each event's JSON, serialised once: stored, and pushed to consoles as it is.
    event_json: dict[str, str] = field(default_factory=dict)
    # Device statuses, newest per device: written with the batch, not one transaction each.
    devices: list[DeviceRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """What an ingest batch's transaction stored: the new events (not the duplicates,
    ids already stored) and what the alarm rules made of them."""

    new: list[Event]
    duplicates: list[str]
    outcome: AlarmChanges
    # The JSON stored for each changed alarm (by id): consoles get the same text.
    alarm_json: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """A message to queue for a responder: one alarm, level, responder and channel."""

    alarm_id: str
    level: int
    responder_id: str
    # The channel's place in the responder's list, as configured when planned.
    channel_index: int
    channel_label: str
    # What the per-channel rate limit counts: the far end, shared by responders,
    # and how many sends a minute it takes (None: no limit of its own).
    channel_key: str
    channel_limit: int | None
    # A stand-down is sent at most once per alarm, responder and channel, whatever
    # the level (that of the last call it follows).
    purpose: Purpose = "call"

    @property
    def key(self) -> str:
        """One per alarm, level, responder and channel, and one stand-down per alarm,
        responder and channel: the outbox keeps it unique."""
        if self.purpose == "stand_down":
            return f"{self.alarm_id}/stand_down/{self.responder_id}/{self.channel_index}"
        return f"{self.alarm_id}/{self.level}/{self.responder_id}/{self.channel_index}"


@dataclass(frozen=True, slots=True)
class StoodDown:
    """What a resolve ends besides its alarm, in its transaction: the open dispatches
    it cancels, their audit entries, and the stand-down messages it queues."""

    cancelled: Sequence[Dispatch] = ()
    audit: Sequence[AuditEntry] = ()
    messages: Sequence[PlannedCall] = ()


# The open dispatches of the alarm being resolved and its calls sent or under way, as
# read in its transaction: what the resolve ends of them.
StandDown = Callable[[list[Dispatch], list["NotificationRow"]], StoodDown]


@dataclass(frozen=True, slots=True)
class NotificationRow:
    """A message in the outbox (``hub.tables.notifications``)."""

    id: str
    call: PlannedCall
    state: str
    attempts: int
    due_at: datetime
    reason: str
    created_at: datetime
    updated_at: datetime
