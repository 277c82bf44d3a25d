"""Responders, rotas and call lists in the admin API (changes admin only).

``PUT /api/responders/{id}`` replaces a responder's contact data, channels and
language (or adds a responder), ``DELETE /api/responders/{id}`` removes one;
``GET /api/rotas`` lists the rotas (every role, as ``GET /api/responders``),
``PUT /api/rotas/{id}`` replaces a rota's shifts (or adds a rota),
``DELETE /api/rotas/{id}`` removes one;
``PUT /api/sites/{site}/escalation/{level}/call`` replaces who that level calls.
Each change is validated as the configuration file is (hub/responder_layer.py),
saved with its audit entry in one transaction (``responder``, ``rota`` or
``call_list``, before and after; channels by kind, never an Apprise URL), and
used from the next escalation on. Saved changes are laid over the file's
entries when the hub starts (docs/responders.md).

A responder still named by a call list or a rota, a rota still named by a call
list, or a responder still sent to an alarm, is not removed (409): taking them
out of a call list quietly could leave a level calling nobody, so the admin
changes the list first, and a responder on their way keeps their link and their
name on the console until their dispatch ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field

from hub.deps import AdminUser, ConfigDep, CurrentUser, HubDep
from hub.errors import ApiError
from hub.notify.chat import ChatSender
from hub.notify.check import check_channels
from hub.resources import HubResources
from hub.responder_layer import (
    audit_view,
    call_key,
    callers_of,
    laid_over,
    responder_key,
    rota_key,
    rota_view,
)
from hub.schemas import ErrorOut
from hub.store import AuditEntry, UserRow
from riverguard.config import Config, ConfigError
from riverguard.responders import Channel, Language
from riverguard.rotas import Weekday

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 422, 503)
}

router = APIRouter(responses=_ERRORS, tags=["responders"])

IdPath = Annotated[str, Path(min_length=1, max_length=63)]


class ResponderIn(BaseModel):
    """A responder's entry as in the configuration file, without its id (the path's).
    The configuration's validator checks it (riverguard/responders.py)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100)
    phone: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=254)
    language: Language = "zh-CN"
    channels: list[Channel] = Field(max_length=10)


class ShiftIn(BaseModel):
    """A shift as in the configuration file; its times and days are checked there."""

    model_config = ConfigDict(extra="forbid")

    responder: str = Field(max_length=63)
    days: list[Weekday] = Field(max_length=7)
    start: str = Field(max_length=5)
    end: str = Field(max_length=5)


class RotaIn(BaseModel):
    """A rota's entry as in the configuration file, without its id (the path's).
    The configuration's validator checks it (riverguard/rotas.py): no shift,
    overlapping shifts and an unknown responder are refused there."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=100)
    shifts: list[ShiftIn] = Field(max_length=500)


class CallListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Responder and rota ids, in the order they are called.
    call: list[Annotated[str, Field(max_length=63)]] = Field(max_length=50)


def _call_list(config: Config, site_id: str, level: int) -> dict[str, Any] | None:
    site = config.site_by_id.get(site_id)
    if site is None or not 1 <= level <= len(site.escalation):
        return None
    return {"site": site_id, "level": level, "call": list(site.escalation[level - 1].call)}


async def _apply(
    hub: HubResources,
    user: UserRow,
    action: str,
    target: str,
    change: tuple[str, Any],
    *,
    describe: Callable[[Config], dict[str, Any] | None],
    refuse: Callable[[], Awaitable[None]] | None = None,
) -> Config:
    """Validate, save with its audit entry, then use: under the desk's lock, so an
    escalation plans its calls wholly before or wholly after the change (and
    ``refuse``, which raises when the change may not be made, sees no call made
    meanwhile)."""
    key, value = change
    async with hub.desk.lock:
        if refuse is not None:
            await refuse()
        try:
            changed = laid_over(hub.config, {key: value})
            # Apprise's own check of its URLs, as when the hub starts.
            check_channels(changed, ChatSender())
        except ConfigError as exc:
            raise ApiError(422, "invalid_responders", str(exc)) from None
        audit = AuditEntry(
            ts=hub.clock.now(),
            username=user.username,
            action=action,
            target=target,
            before=describe(hub.config),
            after=describe(changed),
        )
        await hub.store.responder_changes.save(key, value, user.username, audit.ts, audit)
        hub.use_config(changed)
        return changed


@router.put("/api/responders/{responder_id}")
async def replace_responder(
    responder_id: IdPath, body: Annotated[ResponderIn, Body()], hub: HubDep, user: AdminUser
) -> dict[str, Any]:
    """Replace a responder's contact data, channels and language, or add a responder
    (as the console lists them: channels by kind)."""
    value = {"id": responder_id, **body.model_dump(mode="json")}

    def describe(config: Config) -> dict[str, Any] | None:
        return audit_view(config.responder_by_id.get(responder_id))

    changed = await _apply(
        hub,
        user,
        "responder",
        responder_id,
        (responder_key(responder_id), value),
        describe=describe,
    )
    return describe(changed) or {}


@router.delete(
    "/api/responders/{responder_id}",
    status_code=204,
    responses={409: {"model": ErrorOut}},
)
async def delete_responder(responder_id: IdPath, hub: HubDep, user: AdminUser) -> None:
    """Remove a responder: 409 ``responder_in_use`` while a call list or a rota names
    them, ``responder_dispatched`` while they are sent to an alarm still active."""

    def describe(config: Config) -> dict[str, Any] | None:
        return audit_view(config.responder_by_id.get(responder_id))

    async def refuse() -> None:
        if responder_id not in hub.config.responder_by_id:
            raise ApiError(404, "not_found", f"no responder {responder_id!r}")
        named = callers_of(hub.config, responder_id)
        if named:
            raise ApiError(
                409,
                "responder_in_use",
                f"{responder_id} is called by {', '.join(named)}: change those first",
            )
        # Only active alarms count: a resolve ends its dispatches but one on scene, which
        # its responder finishes from the page they have (PROTOCOL 7.44).
        active = {alarm.id for alarm in hub.picture.active.values()}
        sent = [
            d.alarm_id
            for d in await hub.store.dispatches.active()
            if d.responder_id == responder_id and d.alarm_id in active
        ]
        if sent:
            raise ApiError(
                409,
                "responder_dispatched",
                f"{responder_id} is sent to {', '.join(sent)}: wait for the end or call them off",
            )

    await _apply(
        hub,
        user,
        "responder",
        responder_id,
        (responder_key(responder_id), None),
        describe=describe,
        refuse=refuse,
    )


@router.get("/api/rotas")
async def list_rotas(config: ConfigDep, _user: CurrentUser) -> dict[str, Any]:
    """The rotas as the hub uses them (the file's, with the admin API's changes over):
    each shift's responder, days and wall-clock times in the calling site's time zone."""
    return {"rotas": [rota_view(rota) for rota in config.rotas]}


@router.put("/api/rotas/{rota_id}")
async def replace_rota(
    rota_id: IdPath, body: Annotated[RotaIn, Body()], hub: HubDep, user: AdminUser
) -> dict[str, Any]:
    """Replace a rota's name and shifts whole, or add a rota."""
    value = {"id": rota_id, **body.model_dump(mode="json")}

    def describe(config: Config) -> dict[str, Any] | None:
        return rota_view(config.rota_by_id.get(rota_id))

    changed = await _apply(
        hub, user, "rota", rota_id, (rota_key(rota_id), value), describe=describe
    )
    return describe(changed) or {}


@router.delete("/api/rotas/{rota_id}", status_code=204, responses={409: {"model": ErrorOut}})
async def delete_rota(rota_id: IdPath, hub: HubDep, user: AdminUser) -> None:
    """Remove a rota: 409 ``rota_in_use`` while a call list names it."""

    def describe(config: Config) -> dict[str, Any] | None:
        return rota_view(config.rota_by_id.get(rota_id))

    async def refuse() -> None:
        if rota_id not in hub.config.rota_by_id:
            raise ApiError(404, "not_found", f"no rota {rota_id!r}")
        named = callers_of(hub.config, rota_id)
        if named:
            raise ApiError(
                409,
                "rota_in_use",
                f"rota {rota_id} is called by {', '.join(named)}: change those first",
            )

    await _apply(
        hub,
        user,
        "rota",
        rota_id,
        (rota_key(rota_id), None),
        describe=describe,
        refuse=refuse,
    )


@router.put("/api/sites/{site_id}/escalation/{level}/call")
async def replace_call_list(
    site_id: IdPath,
    level: Annotated[int, Path(ge=1, le=50)],
    body: Annotated[CallListIn, Body()],
    hub: HubDep,
    user: AdminUser,
) -> dict[str, Any]:
    """Replace who a site's escalation level calls: responder and rota ids, in order."""
    if _call_list(hub.config, site_id, level) is None:
        raise ApiError(404, "not_found", f"no escalation level {level} at site {site_id!r}")

    def describe(config: Config) -> dict[str, Any] | None:
        return _call_list(config, site_id, level)

    changed = await _apply(
        hub,
        user,
        "call_list",
        f"{site_id}/{level}",
        (call_key(site_id, level), body.call),
        describe=describe,
    )
    return describe(changed) or {}
