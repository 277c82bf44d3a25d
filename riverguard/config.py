"""The site configuration: one TOML file describing sites, devices and users.

Loaded once at an entry point and passed down. See ``examples/danshui.toml``.
"""

from __future__ import annotations

import json
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from riverguard.errors import RiverguardError
from riverguard.responders import Notify, Responder
from riverguard.rotas import Rota
from riverguard.wire import topics
from riverguard.wire.models import CameraRule, DeviceType, Ident, RiskColour
from riverguard.wire.topics import TopicError

Role = Literal["viewer", "officer", "supervisor", "admin"]
AutoWarning = Literal["always", "when_hub_unreachable", "never"]
SpeakerDriver = Literal["mqtt", "http", "local"]
DeviceSource = Literal["generic", "frigate"]

DEFAULT_WARNING_ZH = "危险水域，请勿靠近，请立即离开"
DEFAULT_WARNING_EN = "Dangerous water. Do not approach. Please leave now."


class ConfigError(RiverguardError):
    """The configuration file is missing, not TOML, or inconsistent."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Schematic map coordinates: x to the right, y down, in the site map's units.
Point = tuple[float, float]


class SiteMap(_Config):
    """A schematic of the site for the console: no tiles, no geography."""

    width: float = Field(default=1000, gt=0)
    height: float = Field(default=600, gt=0)
    # The water's edge as a polyline, and the water itself as a polygon.
    bank: list[Point] = Field(default_factory=list)
    water: list[Point] = Field(default_factory=list)


class Zone(_Config):
    id: Ident
    name: str
    name_en: str = ""
    # The zone's outline on the site map (a polygon), if drawn.
    area: list[Point] = Field(default_factory=list)


class EscalationLevel(_Config):
    """One step up the grid path for an alarm nobody acknowledged."""

    # Seconds without an acknowledgement at the level below before this level is reached.
    after_s: float = Field(gt=0, le=86400)
    level_name: str = Field(min_length=1, max_length=100)
    # Who is called when the alarm reaches this level, in order: responder ids and
    # rota ids (a rota stands for whoever of it is on duty; riverguard.on_call).
    call: list[Ident] = Field(default_factory=list, max_length=50)

    @field_validator("call")
    @classmethod
    def _called_once(cls, value: list[str]) -> list[str]:
        _unique("call-list", value)
        return value


# The grid path: duty officer (level 0) -> grid officer -> street -> district.
DEFAULT_ESCALATION = (
    EscalationLevel(after_s=60, level_name="grid officer"),
    EscalationLevel(after_s=120, level_name="street"),
    EscalationLevel(after_s=300, level_name="district"),
)


class RiskPeriod(_Config):
    """A season and time of day when the site is at least ``colour`` (summer evenings,
    school holidays). Dates are MM-DD, inclusive, and may wrap the new year; hours are
    the site's local hours, ``from_hour`` inclusive to ``to_hour`` exclusive, and may
    wrap midnight."""

    name: str = Field(min_length=1, max_length=100)
    colour: RiskColour
    start: str = Field(default="01-01", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
    end: str = Field(default="12-31", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
    from_hour: int = Field(default=0, ge=0, le=23)
    to_hour: int = Field(default=24, ge=1, le=24)


class Site(_Config):
    id: Ident
    name: str
    name_en: str = ""
    grid: str = Field(pattern=r"^[a-z0-9_-]+(/[a-z0-9_-]+)*$")
    zones: list[Zone] = Field(min_length=1)
    correlation_window_s: float = Field(default=30.0, gt=0, le=3600)
    map: SiteMap | None = None
    # The edge drops a report of the same device, zone and kind this soon after the
    # last accepted one (a chattering fence); 0 keeps every report.
    debounce_s: float = Field(default=0.0, ge=0, le=3600)
    # Local deterrence: the edge plays the default warning itself on a breach or a
    # critical event in ``auto_warning_zones`` (all zones when empty): always, only
    # when the hub has not committed the event within ``auto_warning_grace_s``, or never;
    # not during ``quiet_hours`` ("HH:MM-HH:MM" in ``timezone``), at most once per
    # zone per ``auto_warning_cooldown_s``.
    auto_warning: AutoWarning = "never"
    auto_warning_zones: list[Ident] = Field(default_factory=list)
    auto_warning_grace_s: float = Field(default=10.0, ge=0, le=600)
    auto_warning_cooldown_s: float = Field(default=60.0, ge=0, le=86400)
    quiet_hours: str | None = Field(default=None, pattern=r"^\d\d:\d\d-\d\d:\d\d$")
    timezone: str = "Asia/Shanghai"
    # Hub announcements: routine ones (below life-safety priority) play at most at
    # quiet_volume_cap during quiet_hours, and at most routine_limit of them per
    # routine_window_s; life-safety ignores both. None: the hub's defaults.
    quiet_volume_cap: int | None = Field(default=None, ge=0, le=100)
    routine_limit: int | None = Field(default=None, ge=0, le=1000)
    routine_window_s: float | None = Field(default=None, gt=0, le=86400)
    warning_text_zh: str = DEFAULT_WARNING_ZH
    warning_text_en: str = DEFAULT_WARNING_EN
    # Escalation of an unacknowledged alarm along the grid path (level 0 is the duty officer).
    escalation: list[EscalationLevel] = Field(default_factory=lambda: list(DEFAULT_ESCALATION))
    # Responders called for an alarm: one who has not accepted within dispatch_accept_s,
    # or is not on scene dispatch_arrive_s after accepting, is no longer counted on;
    # when nobody of a level is, the next level is called (hub/dispatch.py).
    dispatch_accept_s: float = Field(default=120.0, gt=0, le=3600)
    dispatch_arrive_s: float = Field(default=900.0, gt=0, le=86400)
    # This many events of one alarm within repeat_window_s raise its severity one level.
    repeat_count: int = Field(default=3, ge=2, le=1000)
    repeat_window_s: float = Field(default=60.0, gt=0, le=86400)
    # Deterrence loop: no new trigger this long after an announcement suggests persuaded_away.
    clear_window_s: float = Field(default=120.0, gt=0, le=86400)
    # A trigger after this long without one in the zone is a new intrusion: it
    # re-raises the zone's alarm (PROTOCOL 7.36).
    intrusion_gap_s: float = Field(default=60.0, gt=0, le=86400)
    # Resolve the alarm as persuaded_away by itself when the clear window passes.
    auto_resolve_persuaded: bool = False
    # Four-colour risk (in ``timezone``): the schedule, and how many events within
    # risk_window_s raise the colour one level.
    risk_schedule: list[RiskPeriod] = Field(default_factory=list)
    risk_window_s: float = Field(default=600.0, gt=0, le=86400)
    risk_rate_events: int = Field(default=10, ge=1, le=1_000_000)
    # The ``mqtt.topic_prefix`` of the site's Frigate NVR (PROTOCOL 1.3, docs/protocol.md
    # 7.11): sites sharing a broker give each NVR its own, or every edge reads every NVR.
    frigate_topic_prefix: str = Field(default=topics.FRIGATE_PREFIX, max_length=100)

    @field_validator("frigate_topic_prefix")
    @classmethod
    def _usable_frigate_prefix(cls, value: str) -> str:
        try:
            return topics.check_frigate_prefix(value)
        except TopicError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @cached_property
    def zone_ids(self) -> frozenset[str]:
        # Asked for every event on the hot path; the configuration never changes.
        return frozenset(zone.id for zone in self.zones)


class Device(_Config):
    id: Ident
    site: Ident
    type: DeviceType
    zones: list[Ident] = Field(default_factory=list)
    source: DeviceSource = "generic"
    # The device's own name in its source (a Frigate camera name), when it differs.
    source_ref: str | None = None
    driver: SpeakerDriver | None = None
    url: str | None = None
    # Where the device stands on the site map.
    position: Point | None = None
    # Frigate cameras: Frigate zone name -> site zone id (unlisted names are taken
    # as site zone ids), and the rule a person in a site zone counts as.
    frigate_zones: dict[str, Ident] = Field(default_factory=dict)
    frigate_rules: dict[Ident, CameraRule] = Field(default_factory=dict)

    def covers(self, zone: str) -> bool:
        """Whether the device watches (or, a speaker, reaches) ``zone`` of its site: a
        device with no zones listed covers every zone, as a Frigate camera watches them."""
        return not self.zones or zone in self.zones

    @model_validator(mode="after")
    def _speaker_has_driver(self) -> Device:
        if self.type == "speaker" and self.driver is None:
            raise ValueError(f"speaker {self.id} needs a driver (mqtt, http or local)")
        if self.type != "speaker" and self.driver is not None:
            raise ValueError(f"{self.type} {self.id} cannot have a speaker driver")
        if self.driver == "http" and not self.url:
            raise ValueError(f"http speaker {self.id} needs a url")
        return self


class User(_Config):
    username: Ident
    name: str
    role: Role


class Config(_Config):
    sites: list[Site] = Field(min_length=1)
    devices: list[Device] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)
    responders: list[Responder] = Field(default_factory=list)
    rotas: list[Rota] = Field(default_factory=list)
    notify: Notify = Field(default_factory=Notify)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        _unique("site", [site.id for site in self.sites])
        # Device ids are unique across sites: event ids are derived from them.
        _unique("device", [device.id for device in self.devices])
        _unique("user", [user.username for user in self.users])
        sites = {site.id: site for site in self.sites}
        for device in self.devices:
            site = sites.get(device.site)
            if site is None:
                raise ValueError(f"device {device.id} names unknown site {device.site}")
            named = {*device.zones, *device.frigate_zones.values(), *device.frigate_rules}
            unknown = named - site.zone_ids
            if unknown:
                raise ValueError(f"device {device.id} names unknown zones {sorted(unknown)}")
        _no_shared_frigate_camera(sites, self.devices)
        _responders_reachable(self)
        _calls_known(self)
        return self

    @cached_property
    def site_by_id(self) -> dict[str, Site]:
        return {site.id: site for site in self.sites}

    @cached_property
    def responder_by_id(self) -> dict[str, Responder]:
        return {responder.id: responder for responder in self.responders}

    @cached_property
    def rota_by_id(self) -> dict[str, Rota]:
        return {rota.id: rota for rota in self.rotas}

    @cached_property
    def device_by_id(self) -> dict[str, Device]:
        return {device.id: device for device in self.devices}

    def site(self, site_id: str) -> Site:
        try:
            return self.site_by_id[site_id]
        except KeyError:
            raise ConfigError(f"no site {site_id!r} in the configuration") from None

    @cached_property
    def devices_by_site(self) -> dict[str, list[Device]]:
        """Each site's devices in configuration order. The hub asks per device status
        (zone coverage for the risk colour): a scan of every configured device each
        time took a quarter of its CPU with 10,000 devices (docs/performance.md)."""
        by_site: dict[str, list[Device]] = {site.id: [] for site in self.sites}
        for device in self.devices:
            by_site[device.site].append(device)
        return by_site

    def devices_of(self, site_id: str, device_type: DeviceType | None = None) -> list[Device]:
        return [
            device
            for device in self.devices_by_site.get(site_id, [])
            if device_type is None or device.type == device_type
        ]


def _unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} id {value!r}")
        seen.add(value)


def _no_shared_frigate_camera(sites: dict[str, Site], devices: list[Device]) -> None:
    """Two sites reading one Frigate topic prefix must not both have a camera of one
    Frigate name: each site's edge would raise the other site's alarms as its own."""
    owner: dict[tuple[str, str], str] = {}
    for device in devices:
        if device.source != "frigate" or device.type != "camera":
            continue
        prefix = sites[device.site].frigate_topic_prefix
        name = device.source_ref or device.id
        other = owner.setdefault((prefix, name), device.site)
        if other != device.site:
            raise ValueError(
                f"sites {other} and {device.site} both have Frigate camera {name!r} under "
                f"topic prefix {prefix!r}: give each site's NVR its own frigate_topic_prefix"
            )


def _responders_reachable(config: Config) -> None:
    """Every responder's channels lead somewhere: their address is known and the
    deployment has the shared channel they name."""
    _unique("responder", [responder.id for responder in config.responders])
    _unique("webhook", [webhook.id for webhook in config.notify.webhooks])
    _unique("sms gateway", [gateway.id for gateway in config.notify.sms_gateways])
    webhooks = {webhook.id for webhook in config.notify.webhooks}
    gateways = {gateway.id for gateway in config.notify.sms_gateways}
    for responder in config.responders:
        for channel in responder.channels:
            if channel.kind == "email":
                if responder.email is None:
                    raise ValueError(f"responder {responder.id} has an email channel, no email")
                if config.notify.email is None:
                    raise ValueError(
                        f"responder {responder.id} has an email channel: set notify.email"
                    )
            elif channel.kind == "sms":
                if responder.phone is None:
                    raise ValueError(f"responder {responder.id} has an sms channel, no phone")
                if channel.gateway not in gateways:
                    raise ValueError(
                        f"responder {responder.id} names unknown sms gateway {channel.gateway}"
                    )
            elif channel.kind == "webhook" and channel.webhook not in webhooks:
                raise ValueError(
                    f"responder {responder.id} names unknown webhook {channel.webhook}"
                )


def _calls_known(config: Config) -> None:
    """Rotas name responders; every level's call list names responders or rotas,
    one namespace for both so an entry is never ambiguous."""
    responders = {responder.id for responder in config.responders}
    _unique("rota", [rota.id for rota in config.rotas])
    for rota in config.rotas:
        if rota.id in responders:
            raise ValueError(f"rota {rota.id} has the id of a responder: give it its own")
        for shift in rota.shifts:
            if shift.responder not in responders:
                raise ValueError(f"rota {rota.id} names unknown responder {shift.responder}")
    callable_ids = responders | {rota.id for rota in config.rotas}
    for site in config.sites:
        for number, level in enumerate(site.escalation, start=1):
            unknown = [entry for entry in level.call if entry not in callable_ids]
            if unknown:
                raise ValueError(
                    f"site {site.id} level {number} ({level.level_name}) calls unknown "
                    f"responders or rotas {unknown}"
                )


def site_part(config: Config, site_id: str) -> Config:
    """What one site's edge needs: the site and its devices, no other site, no user,
    no responder (and so no call lists: the hub calls people, never the edge)."""
    site = config.site(site_id)
    levels = [level.model_copy(update={"call": []}) for level in site.escalation]
    return Config(
        sites=[site.model_copy(update={"escalation": levels})],
        devices=config.devices_of(site.id),
    )


def load_config(path: Path) -> Config:
    """The configuration in ``path``: TOML, or JSON when its name ends in ``.json``
    (what ``riverguard site-config`` writes)."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: not a table of sites, devices and users")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
