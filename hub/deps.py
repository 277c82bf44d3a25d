"""Route dependencies: the hub's resources and the current user, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, cast

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer

from hub.auth import has_role
from hub.hub import Hub
from hub.store import UserRow


class ApiError(Exception):
    """An error answered as JSON ``{"error": code, "detail": detail}``."""

    def __init__(self, status: int, code: str, detail: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def _hub(request: Request) -> Hub:
    return cast(Hub, request.state.hub)


HubDep = Annotated[Hub, Depends(_hub)]

_bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


async def _current_user(hub: HubDep, token: Annotated[str | None, Depends(_bearer)]) -> UserRow:
    user = await hub.auth.user_for(token)
    if user is None:
        raise ApiError(401, "unauthorized", "missing, invalid or expired bearer token")
    return user


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


async def _user_by_header_or_query(
    hub: HubDep,
    bearer: Annotated[str | None, Depends(_bearer)],
    token: Annotated[str | None, Query(max_length=200)] = None,
) -> UserRow:
    """For URLs a browser loads by itself (``<img src>``), which cannot send a header."""
    user = await hub.auth.user_for(bearer or token)
    if user is None:
        raise ApiError(401, "unauthorized", "missing, invalid or expired token")
    return user


MediaUser = Annotated[UserRow, Depends(_user_by_header_or_query)]
