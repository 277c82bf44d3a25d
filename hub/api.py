"""REST routes (PROTOCOL 4.2), health and metrics."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from fastapi import APIRouter, Form, Query, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub import timeline
from hub.deps import ActingUser, AdminUser, ApiError, CurrentUser, HubDep, MediaUser, SupervisorUser
from hub.influx import CountQuery, EventQuery
from hub.schemas import (
    AnnouncementOut,
    AnnouncementRequest,
    AuditAction,
    AuditOut,
    DeviceOut,
    ErrorOut,
    HealthOut,
    ResolveIn,
    SiteOut,
    StatsBucketOut,
    StatsOut,
    TokenOut,
    UserOut,
)
from riverguard.wire.models import IDENT_PATTERN, Alarm, AlarmState, Event, EventKind
from riverguard.wire.times import format_ts, parse_ts

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422, 503)
}

router = APIRouter(prefix="/api", responses=_ERRORS)
root = APIRouter()

_AUDIO_NAME = re.compile(r"^([0-9a-f]{64})\.(wav|mp3|ulaw)$")
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ulaw": "audio/basic"}


def _time(value: str | None, name: str) -> datetime | None:
    """A query time: Unix milliseconds or RFC 3339."""
    if value is None:
        return None
    try:
        return parse_ts(int(value) if value.isdigit() else value)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"{name}: {exc}") from None


# --- auth ------------------------------------------------------------------------


@router.post("/auth/token")
async def login(
    hub: HubDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
) -> TokenOut:
    token = await hub.auth.login(username, password)
    if token is None:
        raise ApiError(401, "invalid_credentials", "wrong username or password")
    return TokenOut(access_token=token, expires_in=hub.settings.token_ttl_s)


@router.get("/me")
async def me(user: CurrentUser) -> UserOut:
    return UserOut(username=user.username, name=user.name, role=user.role)


# --- sites and devices -----------------------------------------------------------


@router.get("/sites")
async def sites(hub: HubDep, _: CurrentUser) -> list[SiteOut]:
    return [SiteOut.model_validate(item) for item in hub.picture.site_items()]


@router.get("/devices")
async def devices(hub: HubDep, _: CurrentUser) -> list[DeviceOut]:
    return [DeviceOut.model_validate(item) for item in hub.picture.device_items()]


# --- alarms ----------------------------------------------------------------------


@router.get("/alarms")
async def list_alarms(
    hub: HubDep,
    _: CurrentUser,
    state: AlarmState | None = None,
    site: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
    since: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[Alarm]:
    return await hub.store.list_alarms(
        state=state, site=site, since=_time(since, "since"), limit=limit
    )


@router.get("/alarms/{alarm_id}")
async def get_alarm(hub: HubDep, _: CurrentUser, alarm_id: str) -> Alarm:
    return await hub.desk.get(alarm_id)


@router.get(
    "/alarms/{alarm_id}/timeline",
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
async def alarm_timeline(
    hub: HubDep,
    _: MediaUser,
    alarm_id: str,
    format_: Annotated[Literal["json", "html"], Query(alias="format")] = "json",
    lang: timeline.Lang = "zh",
) -> Response:
    """The incident timeline; ``format=html`` for a printable page (token may be ``?token=``)."""
    alarm = await hub.desk.get(alarm_id)
    built = await timeline.build(hub.store, hub.config, alarm, hub.desk.clock.now())
    if format_ == "html":
        return HTMLResponse(timeline.render_html(built, lang))
    return JSONResponse(built)


@router.get("/alarms/{alarm_id}/timeline.html", response_class=HTMLResponse)
async def alarm_timeline_html(
    hub: HubDep, _: MediaUser, alarm_id: str, lang: timeline.Lang = "zh"
) -> HTMLResponse:
    alarm = await hub.desk.get(alarm_id)
    built = await timeline.build(hub.store, hub.config, alarm, hub.desk.clock.now())
    return HTMLResponse(timeline.render_html(built, lang))


@router.post("/alarms/{alarm_id}/ack")
async def ack_alarm(hub: HubDep, user: ActingUser, alarm_id: str) -> Alarm:
    return await hub.desk.acknowledge(alarm_id, user.username)


@router.post("/alarms/{alarm_id}/resolve")
async def resolve_alarm(hub: HubDep, user: ActingUser, alarm_id: str, body: ResolveIn) -> Alarm:
    return await hub.desk.resolve(alarm_id, user.username, body.outcome, body.note)


# --- audit and users -------------------------------------------------------------


@router.get("/audit")
async def audit(
    hub: HubDep,
    _: SupervisorUser,
    *,
    user: Annotated[str | None, Query(max_length=63)] = None,
    action: AuditAction | None = None,
    alarm: Annotated[str | None, Query(max_length=40)] = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditOut]:
    """The audit log, newest first; page with ``before=<id of the last one seen>``."""
    entries = await hub.store.list_audit(
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
async def users(hub: HubDep, _: AdminUser) -> list[UserOut]:
    return [
        UserOut(username=user.username, name=user.name, role=user.role) for user in hub.config.users
    ]


# --- events ----------------------------------------------------------------------


@router.get("/events")
async def list_events(
    hub: HubDep,
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
        start=_time(from_, "from"),
        end=_time(to, "to"),
        limit=limit,
        offset=offset,
        before=_time(before, "before"),
    )
    return await hub.influx.events(query)


@cache
def _time_zones() -> set[str]:
    # Reads the tz database from disk: once per process, on first use.
    return available_timezones()


_STATS_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
# Enough buckets for a year of hours; more is not a chart.
_MAX_BUCKETS = 9000


@router.get("/stats/events")
async def event_stats(
    hub: HubDep,
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
    end = _time(to, "to") or hub.desk.clock.now()
    start = _time(from_, "from") or end - _STATS_SPAN[interval]
    if start >= end:
        raise ApiError(422, "invalid_request", "from must be before to")
    step = timedelta(hours=1) if interval == "hour" else timedelta(days=1)
    if (end - start) / step > _MAX_BUCKETS:
        raise ApiError(422, "invalid_request", f"more than {_MAX_BUCKETS} buckets")
    counts = await hub.influx.counts(CountQuery(interval, start, end, site, tz))
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
async def snapshot(hub: HubDep, _: MediaUser, event_id: str) -> Response:
    jpeg = await hub.store.get_snapshot(event_id)
    if jpeg is None:
        raise ApiError(404, "not_found", f"no snapshot for event {event_id!r}")
    return Response(
        jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )


# --- announcements and audio -----------------------------------------------------


# exclude_unset: "group" only appears for a grid that spans several sites.
@router.post("/announcements", status_code=202, response_model_exclude_unset=True)
async def announce(hub: HubDep, user: ActingUser, body: AnnouncementRequest) -> AnnouncementOut:
    shaped = await hub.announcer.announce(body, user.username)
    return AnnouncementOut.model_validate(shaped)


@router.get("/announcements/{announcement_id}", response_model_exclude_unset=True)
async def get_announcement(hub: HubDep, _: CurrentUser, announcement_id: str) -> AnnouncementOut:
    shaped = await hub.announcer.get(announcement_id)
    if shaped is None:
        raise ApiError(404, "not_found", f"no announcement {announcement_id!r}")
    return AnnouncementOut.model_validate(shaped)


@router.get("/audio/{name}", response_class=FileResponse)
async def audio(hub: HubDep, name: str) -> FileResponse:
    """Rendered audio by content hash; no login, since edges and speakers fetch it."""
    match = _AUDIO_NAME.match(name)
    if match is None:
        raise ApiError(404, "not_found", "audio is named <sha256>.<wav|mp3|ulaw>")
    path = hub.settings.audio_dir / name
    if not path.is_file():
        raise ApiError(404, "not_found", f"no audio {name}")
    return FileResponse(
        path,
        media_type=_AUDIO_TYPES[match.group(2)],
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


# --- health and metrics ----------------------------------------------------------


@root.get("/healthz", responses={503: {"model": HealthOut}})
async def healthz(hub: HubDep) -> JSONResponse:
    broker = hub.link.connected
    influx = await hub.influx.ping()
    store = await hub.store.ping()
    ok = broker and influx and store
    body = HealthOut(status="ok" if ok else "degraded", broker=broker, influx=influx, store=store)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@root.get("/metrics", response_class=Response)
async def metrics(hub: HubDep) -> Response:
    return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)
