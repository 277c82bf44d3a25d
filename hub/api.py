"""REST routes (PROTOCOL 4.2): auth, sites and devices, alarms, audit, events, announcements."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import available_timezones

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from hub import timeline
from hub.auth import Auth
from hub.deps import (
    ActingUser,
    AdminUser,
    AnnouncerDep,
    AudioDep,
    AuthDep,
    ClockDep,
    ConfigDep,
    CurrentSession,
    CurrentUser,
    DeskDep,
    InfluxDep,
    MediaUser,
    PictureDep,
    SettingsDep,
    StoreDep,
    SupervisorUser,
)
from hub.errors import ApiError
from hub.influx import CountQuery, EventQuery
from hub.people import people
from hub.schemas import (
    AnnouncementOut,
    AnnouncementRequest,
    AuditAction,
    AuditOut,
    DeviceOut,
    DevicePageOut,
    ErrorOut,
    LinkIn,
    LinkOut,
    RefreshIn,
    ResolveIn,
    SiteOut,
    StatsBucketOut,
    StatsOut,
    TokenOut,
    UserOut,
)
from hub.security import PRINTABLE_CSP
from hub.signed_links import LINKABLE
from hub.store import UserRow
from hub.timeline_words import Lang
from riverguard.config import Config
from riverguard.wire.models import IDENT_PATTERN, Alarm, AlarmState, Event, EventKind
from riverguard.wire.times import format_ts, parse_device_ts

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422, 503)
}

router = APIRouter(prefix="/api", responses=_ERRORS)

_AUDIO_NAME = re.compile(r"^([0-9a-f]{64})\.(wav|mp3|ulaw)$")
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ulaw": "audio/basic"}


# Query times: from 1970 to what Python's datetime holds. InfluxDB keeps signed
# 64-bit nanoseconds, so its queries see times clamped to its range.
_TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
_INFLUX_MAX = datetime(2262, 4, 11, tzinfo=UTC)
_MS_MAX = int((datetime(9999, 12, 31, tzinfo=UTC) - _TIME_MIN).total_seconds() * 1000)
# The largest id SQLite and PostgreSQL (bigint) take.
MAX_ID = 2**63 - 1


def query_time(value: str | None, name: str) -> datetime | None:
    """A query time: Unix milliseconds or RFC 3339, 1970 or later; empty is no time."""
    if value is None or not value.strip():
        return None
    if value.isascii() and value.isdigit():
        # Compared as text first: a thousand digits is not turned into a number.
        if len(value) > 15 or int(value) > _MS_MAX:
            raise ApiError(422, "invalid_request", f"{name}: Unix milliseconds out of range")
        return _TIME_MIN + timedelta(milliseconds=int(value))
    try:
        # Any time a calendar holds: a window may reach outside what the wire carries.
        moment = parse_device_ts(value)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"{name}: {exc}") from None
    if moment < _TIME_MIN:
        raise ApiError(422, "invalid_request", f"{name}: before 1970")
    return moment


def _time(value: str | None, name: str) -> datetime | None:
    return query_time(value, name)


def _influx_time(value: str | None, name: str) -> datetime | None:
    """``query_time`` within what InfluxDB holds: later times are its last one."""
    moment = query_time(value, name)
    return None if moment is None else min(moment, _INFLUX_MAX)


# --- auth ------------------------------------------------------------------------


_THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorOut,
        "description": "throttled or busy; try again after Retry-After seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}


def _address(request: Request) -> str:
    # The peer's address as uvicorn sees it: behind a reverse proxy, the proxy's
    # (docs/security.md).
    return request.client.host if request.client else "unknown"


@router.post("/auth/token", responses=_THROTTLED)
async def login(
    auth: AuthDep,
    request: Request,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
) -> TokenOut:
    """Log in (OAuth2 password form): a short access token and a refresh token."""
    grant = await auth.login(username, password, _address(request))
    if grant is None:
        raise ApiError(401, "invalid_credentials", "wrong username or password")
    return TokenOut(**asdict(grant))


@router.post("/auth/refresh")
async def refresh(auth: AuthDep, body: RefreshIn) -> TokenOut:
    """New access and refresh tokens for a refresh token, which is then used up."""
    grant = await auth.refresh(body.refresh_token)
    if grant is None:
        raise ApiError(401, "unauthorized", "invalid, used or expired refresh token")
    return TokenOut(**asdict(grant))


@router.post("/auth/logout", status_code=204)
async def logout(auth: AuthDep, session: CurrentSession) -> Response:
    """End the session: its access and refresh tokens stop working at once."""
    await auth.logout(session)
    return Response(status_code=204)


@router.post("/links")
async def make_link(auth: AuthDep, user: CurrentUser, body: LinkIn) -> LinkOut:
    """A signed link to a timeline export or a snapshot, for the browser to load by itself
    (good once, within ``link_ttl_s``, for that user and path only)."""
    parts = urlsplit(body.path)
    if parts.scheme or parts.netloc or parts.fragment or not LINKABLE.match(parts.path):
        raise ApiError(422, "invalid_request", "path: not a path a link may be made for")
    query, expires = auth.links.sign(parts.path, user.username, once=True)
    reserved = {"u", "exp", "sig", "n", "token"}
    extra = [(k, v) for k, v in parse_qsl(parts.query) if k not in reserved]
    url = parts.path + "?" + (urlencode(extra) + "&" if extra else "") + query
    return LinkOut(url=url, expires_at=format_ts(datetime.fromtimestamp(expires, UTC)))


@router.get("/me")
async def me(user: CurrentUser) -> UserOut:
    return UserOut(username=user.username, name=user.name, role=user.role)


# --- sites and devices -----------------------------------------------------------


@router.get("/sites")
async def sites(picture: PictureDep, _: CurrentUser) -> list[SiteOut]:
    return [SiteOut.model_validate(item) for item in picture.site_items()]


# A page of a site's devices: the console asks for one site at a time, never the fleet.
DEVICE_PAGE_MAX = 1000


@router.get("/devices")
async def devices(
    picture: PictureDep, _: CurrentUser, online: bool | None = None
) -> list[DeviceOut]:
    """Every device; ``online=false`` only those that report offline (a handover's faults)."""
    items = picture.device_items()
    if online is not None:
        items = [item for item in items if item["online"] is online]
    return [DeviceOut.model_validate(item) for item in items]


@router.get("/sites/{site_id}/devices")
async def site_devices(
    picture: PictureDep,
    config: ConfigDep,
    _: CurrentUser,
    site_id: Annotated[str, Path(pattern=IDENT_PATTERN)],
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=DEVICE_PAGE_MAX)] = DEVICE_PAGE_MAX,
) -> DevicePageOut:
    """One page of the site's devices, in configuration order (PROTOCOL 7.37)."""
    if site_id not in config.site_by_id:
        raise ApiError(404, "not_found", f"no site {site_id!r} in the configuration")
    listed = picture.site_devices(site_id)
    return DevicePageOut(
        site=site_id,
        total=len(listed),
        offset=offset,
        limit=limit,
        devices=[
            DeviceOut.model_validate(picture.device_item(d.id))
            for d in listed[offset : offset + limit]
        ],
    )


# --- alarms ----------------------------------------------------------------------


@router.get("/alarms")
async def list_alarms(
    store: StoreDep,
    _: CurrentUser,
    state: AlarmState | None = None,
    site: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
    since: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[Alarm]:
    return await store.alarms.find(state=state, site=site, since=_time(since, "since"), limit=limit)


@router.get("/alarms/{alarm_id}")
async def get_alarm(desk: DeskDep, _: CurrentUser, alarm_id: str) -> Alarm:
    return await desk.get(alarm_id)


@router.get(
    "/alarms/{alarm_id}/timeline",
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
async def alarm_timeline(
    *,
    store: StoreDep,
    desk: DeskDep,
    config: ConfigDep,
    clock: ClockDep,
    auth: AuthDep,
    user: MediaUser,
    audio: AudioDep,
    picture: PictureDep,
    alarm_id: str,
    format_: Annotated[Literal["json", "html"], Query(alias="format")] = "json",
    lang: Lang = "zh",
) -> Response:
    """The incident timeline; ``format=html`` for a printable page (bearer header or a
    signed link, ``POST /api/links``)."""
    alarm = await desk.get(alarm_id)
    built = await timeline.build(store, config, alarm, clock.now())
    if format_ == "html":
        clips = timeline.Clips(
            {clip.id: clip for clip in audio.library.all()}, frozenset(picture.site_clip.values())
        )
        return _printable(auth, user, config, built, lang, clips=clips)
    return JSONResponse(built)


# Snapshot links in a printable page: long enough to read the page, short enough that
# a page left open does not hold a working link for the shift.
PAGE_LINK_TTL_S = 15 * 60


def _printable(
    auth: Auth,
    user: UserRow,
    config: Config,
    built: dict[str, Any],
    lang: Lang,
    *,
    clips: timeline.Clips,
) -> Response:
    def link(path: str) -> str:
        return f"{path}?{auth.links.sign(path, user.username, PAGE_LINK_TTL_S)[0]}"

    site = config.site_by_id.get(built["alarm"]["site"])
    tz = site.timezone if site else "UTC"
    page = HTMLResponse(
        timeline.render_html(built, lang, link, tz=tz, people=people(config), clips=clips)
    )
    # The page's one inline style block; never a script.
    page.headers["Content-Security-Policy"] = PRINTABLE_CSP
    return page


@router.get(
    "/alarms/{alarm_id}/timeline.html",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
async def alarm_timeline_html(
    *,
    store: StoreDep,
    desk: DeskDep,
    config: ConfigDep,
    clock: ClockDep,
    auth: AuthDep,
    user: MediaUser,
    audio: AudioDep,
    picture: PictureDep,
    alarm_id: str,
    lang: Lang = "zh",
) -> Response:
    # The printable page of /timeline?format=html, at an address of its own.
    return await alarm_timeline(
        store=store,
        desk=desk,
        config=config,
        clock=clock,
        auth=auth,
        user=user,
        audio=audio,
        picture=picture,
        alarm_id=alarm_id,
        format_="html",
        lang=lang,
    )


@router.post("/alarms/{alarm_id}/ack")
async def ack_alarm(desk: DeskDep, user: ActingUser, alarm_id: str) -> Alarm:
    return await desk.acknowledge(alarm_id, user.username)


@router.post("/alarms/{alarm_id}/resolve")
async def resolve_alarm(desk: DeskDep, user: ActingUser, alarm_id: str, body: ResolveIn) -> Alarm:
    return await desk.resolve(alarm_id, user.username, body.outcome, body.note)


# --- audit and users -------------------------------------------------------------


@router.get("/audit")
async def audit(
    store: StoreDep,
    _: SupervisorUser,
    *,
    user: Annotated[str | None, Query(max_length=63)] = None,
    action: AuditAction | None = None,
    alarm: Annotated[str | None, Query(max_length=40)] = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditOut]:
    """The audit log, newest first; page with ``before=<id of the last one seen>``."""
    entries = await store.audit.find(
        username=user,
        action=action,
        alarm_id=alarm,
        start=_time(from_, "from"),
        end=_time(to, "to"),
        before_id=before,
        limit=limit,
    )
    return [AuditOut.model_validate(entry.shape()) for entry in entries]


@router.get("/users")
async def users(config: ConfigDep, _: AdminUser) -> list[UserOut]:
    return [
        UserOut(username=user.username, name=user.name, role=user.role) for user in config.users
    ]


# --- events ----------------------------------------------------------------------


@router.get("/events")
async def list_events(
    influx: InfluxDep,
    _: CurrentUser,
    *,
    site: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
    device: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
    kind: EventKind | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    before: str | None = None,
) -> list[Event]:
    """Newest first. Page with ``offset`` (exact), or ``before=<ts of the last event>``
    (everything strictly older than that millisecond)."""
    query = EventQuery(
        site=site,
        device=device,
        kind=kind,
        start=_influx_time(from_, "from"),
        end=_influx_time(to, "to"),
        limit=limit,
        offset=offset,
        before=_influx_time(before, "before"),
    )
    return await influx.events(query)


@cache
def _time_zones() -> set[str]:
    # Reads the tz database from disk: once per process, on first use.
    return available_timezones()


_STATS_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
# Enough buckets for a year of hours; more is not a chart.
_MAX_BUCKETS = 9000


@router.get("/stats/events")
async def event_stats(
    influx: InfluxDep,
    clock: ClockDep,
    _: CurrentUser,
    *,
    site: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
    interval: Literal["hour", "day"] = "hour",
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    tz: Annotated[str | None, Query(max_length=64)] = None,
) -> StatsOut:
    """Events per hour or day from InfluxDB (default: the last 24 hours or 30 days)."""
    if tz is not None and tz not in _time_zones():
        raise ApiError(422, "invalid_request", f"tz: unknown time zone {tz!r}")
    end = _influx_time(to, "to") or clock.now()
    start = _influx_time(from_, "from") or end - _STATS_SPAN[interval]
    if start >= end:
        raise ApiError(422, "invalid_request", "from must be before to")
    step = timedelta(hours=1) if interval == "hour" else timedelta(days=1)
    if (end - start) / step > _MAX_BUCKETS:
        raise ApiError(422, "invalid_request", f"more than {_MAX_BUCKETS} buckets")
    counts = await influx.counts(CountQuery(interval, start, end, site, tz))
    return StatsOut(
        site=site,
        interval=interval,
        tz=tz or "UTC",
        **{"from": format_ts(start)},
        to=format_ts(end),
        total=sum(c for _, c in counts),
        buckets=[StatsBucketOut(start=format_ts(t), count=c) for t, c in counts],
    )


@router.get(
    "/events/{event_id}/snapshot",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def snapshot(store: StoreDep, _: MediaUser, event_id: str) -> Response:
    jpeg = await store.events.snapshot(event_id)
    if jpeg is None:
        raise ApiError(404, "not_found", f"no snapshot for event {event_id!r}")
    return Response(
        jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )


# --- announcements and audio -----------------------------------------------------


# exclude_unset: "group" only appears for a grid that spans several sites.
@router.post("/announcements", status_code=202, response_model_exclude_unset=True)
async def announce(
    announcer: AnnouncerDep, user: ActingUser, body: AnnouncementRequest
) -> AnnouncementOut:
    shaped = await announcer.announce(body, user.username)
    return AnnouncementOut.model_validate(shaped)


@router.get("/announcements/{announcement_id}", response_model_exclude_unset=True)
async def get_announcement(
    announcer: AnnouncerDep, _: CurrentUser, announcement_id: str
) -> AnnouncementOut:
    shaped = await announcer.get(announcement_id)
    if shaped is None:
        raise ApiError(404, "not_found", f"no announcement {announcement_id!r}")
    return AnnouncementOut.model_validate(shaped)


@router.get("/audio/{name}", response_class=FileResponse)
async def audio(settings: SettingsDep, name: str) -> FileResponse:
    """Rendered audio by content hash; no login, since edges and speakers fetch it."""
    match = _AUDIO_NAME.match(name)
    if match is None:
        raise ApiError(404, "not_found", "audio is named <sha256>.<wav|mp3|ulaw>")
    path = settings.audio_dir / name
    if not path.is_file():
        raise ApiError(404, "not_found", f"no audio {name}")
    return FileResponse(
        path,
        media_type=_AUDIO_TYPES[match.group(2)],
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
