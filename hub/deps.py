"""Route dependencies: the hub's resources and the current user, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, cast

from fastapi import Depends, Query, Request
from fastapi.requests import HTTPConnection
from fastapi.security import OAuth2PasswordBearer

from hub.announcer import Announcer
from hub.audio_desk import AudioDesk
from hub.auth import Auth, Session, has_role
from hub.broadcaster import Broadcaster
from hub.clock import Clock
from hub.desk import AlarmDesk
from hub.dispatcher import Dispatcher
from hub.errors import ApiError
from hub.influx import Influx
from hub.link import BrokerLink
from hub.links import Links
from hub.metrics import HubMetrics
from hub.picture import Picture
from hub.resources import RESOURCES, HubResources
from hub.responder_tokens import ResponderTokens
from hub.schedules import Schedules
from hub.settings import HubSettings
from hub.store import Store, UserRow
from riverguard.config import Config


def _resources(connection: HTTPConnection) -> HubResources:
    return cast(HubResources, getattr(connection.state, RESOURCES))


def _resource(pick: Callable[[HubResources], object]) -> Any:
    """``Depends`` on one of the hub's resources (built once by the lifespan)."""

    # async although it awaits nothing: FastAPI runs a plain function in a thread.
    async def dependency(connection: HTTPConnection) -> object:
        return pick(_resources(connection))

    return Depends(dependency)


# The few things a route uses, each by itself.
SettingsDep = Annotated[HubSettings, _resource(lambda hub: hub.settings)]
ConfigDep = Annotated[Config, _resource(lambda hub: hub.config)]
ClockDep = Annotated[Clock, _resource(lambda hub: hub.clock)]
StoreDep = Annotated[Store, _resource(lambda hub: hub.store)]
MetricsDep = Annotated[HubMetrics, _resource(lambda hub: hub.metrics)]
InfluxDep = Annotated[Influx, _resource(lambda hub: hub.influx)]
BroadcasterDep = Annotated[Broadcaster, _resource(lambda hub: hub.broadcaster)]
PictureDep = Annotated[Picture, _resource(lambda hub: hub.picture)]
DeskDep = Annotated[AlarmDesk, _resource(lambda hub: hub.desk)]
AnnouncerDep = Annotated[Announcer, _resource(lambda hub: hub.announcer)]
AuthDep = Annotated[Auth, _resource(lambda hub: hub.auth)]
BrokerLinkDep = Annotated[BrokerLink, _resource(lambda hub: hub.link)]
LinksDep = Annotated[Links, _resource(lambda hub: hub.links)]
AudioDep = Annotated[AudioDesk, _resource(lambda hub: hub.audio)]
SchedulesDep = Annotated[Schedules, _resource(lambda hub: hub.schedules)]
DispatcherDep = Annotated[Dispatcher, _resource(lambda hub: hub.dispatcher)]
TokensDep = Annotated[ResponderTokens, _resource(lambda hub: hub.tokens)]
# All of them, for a change that reaches several (hub/api_responders.py).
HubDep = Annotated[HubResources, _resource(lambda hub: hub)]

_bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)
# The bearer token, if any, for routes that decide themselves what to do without one.
bearer_token = _bearer


async def _current_session(
    auth: AuthDep, token: Annotated[str | None, Depends(_bearer)]
) -> Session:
    session = await auth.session_for(token)
    if session is None:
        raise ApiError(401, "unauthorized", "missing, invalid or expired bearer token")
    return session


CurrentSession = Annotated[Session, Depends(_current_session)]


async def _current_user(session: CurrentSession) -> UserRow:
    return session.user


CurrentUser = Annotated[UserRow, Depends(_current_user)]


def _role(needed: str) -> Callable[[UserRow], Awaitable[UserRow]]:
    async def check(user: CurrentUser) -> UserRow:
        if not has_role(user.role, needed):
            raise ApiError(403, "forbidden", f"role {user.role!r} may not do this")
        return user

    return check


# Every route names one of these (or CurrentUser for viewers and up).
ActingUser = Annotated[UserRow, Depends(_role("officer"))]
SupervisorUser = Annotated[UserRow, Depends(_role("supervisor"))]
AdminUser = Annotated[UserRow, Depends(_role("admin"))]


async def _user_by_header_or_link(
    auth: AuthDep,
    store: StoreDep,
    request: Request,
    bearer: Annotated[str | None, Depends(_bearer)],
    *,
    u: Annotated[str | None, Query(max_length=63, description="signed link: user")] = None,
    exp: Annotated[
        int | None, Query(ge=0, le=2**53, description="signed link: expiry (Unix s)")
    ] = None,
    sig: Annotated[str | None, Query(max_length=64, description="signed link: HMAC")] = None,
    n: Annotated[
        str | None, Query(max_length=32, description="signed link: single-use nonce")
    ] = None,
) -> UserRow:
    """For URLs a browser loads by itself (a download, a printable page), which cannot
    send a header: the bearer header, or a signed link (``POST /api/links``)."""
    if bearer:
        session = await auth.session_for(bearer)
        if session is None:
            raise ApiError(401, "unauthorized", "missing, invalid or expired bearer token")
        return session.user
    if "token" in request.query_params:
        raise ApiError(
            401,
            "unauthorized",
            "a token in the URL is not accepted; use a signed link (POST /api/links)",
        )
    if u is None or exp is None or sig is None:
        raise ApiError(401, "unauthorized", "missing bearer token or signed link")
    if not auth.links.verify(request.url.path, u, exp, sig, n):
        raise ApiError(401, "unauthorized", "invalid or expired link")
    user = await store.users.get(u)
    if user is None or user.username not in auth.enabled:
        raise ApiError(401, "unauthorized", "invalid or expired link")
    return user


MediaUser = Annotated[UserRow, Depends(_user_by_header_or_link)]
