"""Request and response bodies of the REST API (PROTOCOL 4.2), for validation and OpenAPI."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from riverguard.config import Point
from riverguard.wire.models import DeviceType, Ident, Outcome, RiskColour


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorOut(BaseModel):
    error: str
    detail: str = ""


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    # Renews the access token once (POST /api/auth/refresh) until the session ends.
    refresh_token: str
    refresh_expires_in: int


class RefreshIn(_Body):
    refresh_token: str = Field(min_length=1, max_length=200)


class LinkIn(_Body):
    path: str = Field(min_length=1, max_length=500)


class LinkOut(BaseModel):
    url: str
    expires_at: str


class UserOut(BaseModel):
    username: str
    name: str
    role: str


class ZoneOut(BaseModel):
    id: str
    name: str
    name_en: str = ""
    area: list[Point] = []


class SiteMapOut(BaseModel):
    width: float
    height: float
    bank: list[Point]
    water: list[Point]


class UnguardedReasonOut(BaseModel):
    kind: Literal["edge", "device"]
    device: str | None = None


class DeviceCountsOut(BaseModel):
    online: int
    offline: int
    unknown: int  # never reported a status
    total: int


class SiteOut(BaseModel):
    id: str
    name: str
    name_en: str = ""
    grid: str
    risk: RiskColour
    # Zones left unguarded by an offline fence or camera, and why the colour is what it is.
    unguarded: list[str] = []
    unguarded_reasons: dict[str, list[UnguardedReasonOut]] = {}
    risk_reasons: list[str] = []
    zones: list[ZoneOut]
    map: SiteMapOut | None = None
    # Per device type (fence, camera, speaker): the site's devices without listing them.
    devices: dict[str, DeviceCountsOut] = {}


class DeviceOut(BaseModel):
    id: str
    site: str
    type: DeviceType
    source: str
    source_ref: str | None
    zones: list[str]
    position: Point | None = None
    online: bool | None
    last_seen: str | None
    battery: float | None = None
    rssi: int | None = None


class DevicePageOut(BaseModel):
    """One page of a site's devices, in configuration order."""

    site: str
    total: int
    offset: int
    limit: int
    devices: list[DeviceOut]


class EdgeOut(BaseModel):
    site: str
    online: bool
    version: str
    outbox: int
    ts: str


class ResolveIn(_Body):
    outcome: Outcome
    note: str | None = Field(default=None, max_length=2000)


class AnnouncementRequest(_Body):
    alarm_id: str | None = Field(default=None, max_length=40)
    speakers: list[Ident] | None = Field(default=None, max_length=100)
    site: Ident | None = None
    grid: str | None = Field(default=None, max_length=200)
    zone: Ident | None = None
    clip_id: str | None = Field(default=None, max_length=100)
    text: str | None = Field(default=None, max_length=500)
    voice: str | None = Field(default=None, max_length=40)
    repeat: int | None = Field(default=None, ge=1, le=10)
    priority: int | None = Field(default=None, ge=0, le=10)
    volume: int | None = Field(default=None, ge=0, le=100)
    # Not played after this many seconds (default 60).
    expires_in_s: int | None = Field(default=None, ge=5, le=3600)
    # Why: kept in the audit log with who asked.
    reason: str | None = Field(default=None, max_length=500)


class ClipRefOut(BaseModel):
    id: str
    sha256: str
    duration_ms: int


class HistoryOut(BaseModel):
    speaker: str
    state: str
    ts: str
    detail: str


class AnnouncementOut(BaseModel):
    id: str
    alarm_id: str | None
    site: str
    requested_by: str
    created_at: str
    clip: ClipRefOut
    priority: int
    repeat: int
    volume: int | None = None
    expires_at: str | None = None
    speakers: dict[str, str]
    history: list[HistoryOut]
    # POST to a grid spanning several sites: one announcement per site, all ids here.
    group: list[str] | None = None


AuditAction = Literal[
    "login",
    "login_failed",
    "login_throttled",
    "logout",
    "ack",
    "resolve",
    "escalate",
    "suggest",
    # A new intrusion re-raised the alarm (hub/intrusions.py), by the system.
    "intrusion",
    "announce",
    # Audio library and schedules (hub/api_audio.py): uploads, edits, schedule changes.
    "clip",
    "schedule",
    # Device broker logins (hub/api_devices.py): detail add, rotate or revoke.
    "device_login",
    # A responder called (by an escalation or an officer) and each step of their
    # dispatch (hub/dispatcher.py, PROTOCOL 7.35).
    "dispatch",
    # Responders, rotas and call lists changed through the admin API (PROTOCOL 7.39).
    "responder",
    "rota",
    "call_list",
]


class AuditOut(BaseModel):
    id: int
    ts: str
    username: str
    action: AuditAction
    alarm_id: str | None
    target: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: str


class StatsBucketOut(BaseModel):
    start: str
    count: int


class StatsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    site: str | None
    interval: Literal["hour", "day"]
    tz: str
    from_: str = Field(alias="from")
    to: str
    total: int
    buckets: list[StatsBucketOut]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    broker: bool
    influx: bool
    store: bool
