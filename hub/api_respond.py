"""Routes of responders' dispatches.

For the responder, with the token of their link and no account
(docs/responders.md): ``GET /api/respond/{token}`` (their alarm and their
dispatch) and ``POST /api/respond/{token}/{action}``. For the console:
``GET /api/alarms/{id}/dispatches``, ``POST /api/alarms/{id}/dispatches`` (send
someone), ``POST /api/dispatches/{id}/cancel``, ``POST /api/alarms/{id}/next-level``
and ``GET /api/responders`` (who is on call now).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.deps import (
    ActingUser,
    ClockDep,
    ConfigDep,
    CurrentUser,
    DeskDep,
    DispatcherDep,
    SettingsDep,
    StoreDep,
    TokensDep,
)
from hub.dispatch import MAX_NOTE
from hub.dispatcher import responder_actor
from hub.errors import DispatchNotFound
from hub.notify.notifier import channel_label
from hub.schemas import ErrorOut
from riverguard.on_call import on_call

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422, 503)
}

router = APIRouter(responses=_ERRORS, tags=["responders"])

TokenPath = Annotated[str, Path(max_length=200)]
ResponderAction = Literal["accept", "depart", "arrive", "finish", "decline"]


class SendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    responder: str = Field(min_length=1, max_length=63)


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=MAX_NOTE)


@router.get("/respond/{token}", include_in_schema=False)
async def responder_page(token: TokenPath, settings: SettingsDep) -> FileResponse:
    """The responder page (console/respond.html): it reads its token from the address
    and asks ``/api/respond/{token}``; a bad token is refused there, in the page."""
    return FileResponse(settings.console_dir / "respond.html", media_type="text/html")


@router.get(
    "/respond/{token}/snapshot",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def responder_snapshot(
    token: TokenPath,
    *,
    dispatcher: DispatcherDep,
    tokens: TokensDep,
    store: StoreDep,
    clock: ClockDep,
) -> Response:
    """The newest snapshot of the responder's alarm (404 while it has none)."""
    dispatch = await dispatcher.get(tokens.read(token, clock.now()))
    events = await store.events.of_alarm(dispatch.alarm_id)
    pictured = await store.events.with_snapshot([event.id for event, _ in events])
    for event, _ in reversed(events):
        if event.id in pictured:
            jpeg = await store.events.snapshot(event.id)
            if jpeg is not None:
                return Response(
                    jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"}
                )
    raise DispatchNotFound("no snapshot for this alarm yet")


@router.get("/api/respond/{token}")
async def read_call(
    token: TokenPath,
    *,
    dispatcher: DispatcherDep,
    tokens: TokensDep,
    store: StoreDep,
    config: ConfigDep,
    clock: ClockDep,
) -> dict[str, Any]:
    """The alarm a responder was called to and their dispatch, for the responder page."""
    dispatch = await dispatcher.get(tokens.read(token, clock.now()))
    alarm = await store.alarms.get(dispatch.alarm_id)
    site = config.site_by_id.get(alarm.site) if alarm is not None else None
    if alarm is None or site is None:
        raise DispatchNotFound("the alarm of this dispatch is no longer known")
    zone = next((z for z in site.zones if z.id == alarm.zone), None)
    responder = config.responder_by_id.get(dispatch.responder_id)
    events = await store.events.of_alarm(alarm.id)
    return {
        "dispatch": dispatcher.shape(dispatch),
        "responder": {
            "id": dispatch.responder_id,
            "name": responder.name if responder else dispatch.responder_id,
            "language": responder.language if responder else "zh-CN",
        },
        "alarm": {
            "id": alarm.id,
            "state": alarm.state,
            "severity": alarm.severity,
            "opened_at": alarm.model_dump(mode="json")["opened_at"],
            "kinds": list(dict.fromkeys(event.kind for event, _ in events)),
            "escalation_level": alarm.escalation_level,
        },
        "site": {
            "id": site.id,
            "name": site.name,
            "name_en": site.name_en,
            # The schematic the console draws (no tiles): the page shows the zone on it.
            "map": site.map.model_dump(mode="json") if site.map else None,
            "zones": [{"id": z.id, "area": z.area} for z in site.zones],
        },
        "zone": {
            "id": alarm.zone,
            "name": zone.name if zone else alarm.zone,
            "name_en": zone.name_en if zone else "",
        },
    }


@router.post("/api/respond/{token}/{action}")
async def step(
    token: TokenPath,
    action: ResponderAction,
    *,
    dispatcher: DispatcherDep,
    tokens: TokensDep,
    clock: ClockDep,
    body: Annotated[StepIn | None, Body()] = None,
) -> dict[str, Any]:
    """A responder's step: accept, on the way (depart), on scene (arrive), finish
    (with a note), or decline."""
    dispatch = await dispatcher.get(tokens.read(token, clock.now()))
    note = body.note if body is not None else None
    changed = await dispatcher.act(
        dispatch.id, action, responder_actor(dispatch.responder_id), note
    )
    return dispatcher.shape(changed)


@router.get("/api/alarms/{alarm_id}/dispatches")
async def alarm_dispatches(
    alarm_id: Annotated[str, Path(max_length=40)],
    dispatcher: DispatcherDep,
    _user: CurrentUser,
) -> list[dict[str, Any]]:
    """Who was called for an alarm, at which level, and how far each has got."""
    return await dispatcher.of_alarm(alarm_id)


@router.post("/api/dispatches/{dispatch_id}/cancel")
async def cancel_dispatch(
    dispatch_id: Annotated[str, Path(max_length=40)],
    dispatcher: DispatcherDep,
    user: ActingUser,
    body: Annotated[StepIn | None, Body()] = None,
) -> dict[str, Any]:
    """An officer calls a responder off; their link stops working for steps."""
    note = body.note if body is not None else None
    changed = await dispatcher.act(dispatch_id, "cancel", user.username, note)
    return dispatcher.shape(changed)


@router.post("/api/alarms/{alarm_id}/next-level")
async def call_next_level(
    alarm_id: Annotated[str, Path(max_length=40)],
    desk: DeskDep,
    user: ActingUser,
) -> dict[str, Any]:
    """An officer calls the alarm's next level now, without waiting for its time."""
    alarm = await desk.call_next_level(
        alarm_id, user.username, "by_officer", "called by an officer"
    )
    return alarm.model_dump(mode="json")


@router.post("/api/alarms/{alarm_id}/dispatches")
async def send_responder(
    alarm_id: Annotated[str, Path(max_length=40)],
    body: SendIn,
    dispatcher: DispatcherDep,
    user: ActingUser,
) -> dict[str, Any]:
    """An officer sends a responder to the alarm: a dispatch and a message on each of
    their channels (409 when that responder was already sent)."""
    made = await dispatcher.send(alarm_id, body.responder, user.username)
    return dispatcher.shape(made)


@router.get("/api/responders")
async def list_responders(config: ConfigDep, clock: ClockDep, _user: CurrentUser) -> dict[str, Any]:
    """The responders (names, languages, channel kinds: no addresses or secrets) and
    who each site's levels call now."""
    now = clock.now()
    return {
        "responders": [
            {
                "id": r.id,
                "name": r.name,
                "language": r.language,
                "channels": [channel_label(channel) for channel in r.channels],
            }
            for r in config.responders
        ],
        "on_call": {
            site.id: {
                str(level): [r.id for r in on_call(config, site.id, level, now)]
                for level in range(1, len(site.escalation) + 1)
            }
            for site in config.sites
        },
    }
