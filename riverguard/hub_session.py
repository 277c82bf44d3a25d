"""A logged-in session on the hub's REST API for tools (simulators, benchmarks) and tests.

Access tokens live minutes (PROTOCOL 7.16): a tool that runs longer renews its
token with the session's refresh token when the hub answers 401, and retries
the request once. Used as httpx's ``auth=``, sync or async.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx

from riverguard.errors import RiverguardError

# PROTOCOL 4.2, 7.16: an OAuth2 password form, answered with the session's tokens.
LOGIN_PATH = "/api/auth/token"


class HubSessionError(RiverguardError):
    """The hub refused the login; ``status`` is its HTTP status."""

    def __init__(self, detail: str, status: int) -> None:
        super().__init__(detail)
        self.status = status


class HubSession(httpx.Auth):
    """The one way simulators, benchmarks and tests log in to the hub: ``login``
    (blocking) or ``login_async``; ``access_token`` is the bearer token, and the
    session itself is an ``auth=`` that keeps it fresh."""

    # The refresh answer is read in the flow (httpx reads bodies first, sync or async).
    requires_response_body = True

    def __init__(self, base_url: str, grant: dict[str, Any]) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_token = str(grant["access_token"])
        self.refresh_token = str(grant.get("refresh_token") or "")

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header, for a request or a client that does not renew."""
        return {"Authorization": f"Bearer {self.access_token}"}

    @classmethod
    def login(cls, base_url: str, username: str, password: str) -> HubSession:
        """Log in (blocking): for tools that have no event loop at hand."""
        response = httpx.post(
            f"{base_url.rstrip('/')}{LOGIN_PATH}",
            data={"username": username, "password": password},
            timeout=30,
        )
        return cls._granted(base_url, username, response)

    @classmethod
    async def login_async(
        cls, http: httpx.AsyncClient, username: str, password: str, base_url: str | None = None
    ) -> HubSession:
        """Log in with ``http``, at ``base_url`` or else the client's own."""
        base = (base_url or str(http.base_url)).rstrip("/")
        response = await http.post(
            f"{base}{LOGIN_PATH}", data={"username": username, "password": password}
        )
        return cls._granted(base, username, response)

    @classmethod
    def _granted(cls, base_url: str, username: str, response: httpx.Response) -> HubSession:
        if response.status_code != 200:
            raise HubSessionError(
                f"login as {username} refused: {response.status_code} {response.text[:200]}",
                response.status_code,
            )
        return cls(base_url, response.json())

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.access_token}"
        response = yield request
        if response.status_code != 401 or not self.refresh_token:
            return
        renewed = yield httpx.Request(
            "POST",
            f"{self.base_url}/api/auth/refresh",
            json={"refresh_token": self.refresh_token},
        )
        if renewed.status_code != 200:
            return
        grant = renewed.json()
        self.access_token = str(grant["access_token"])
        self.refresh_token = str(grant["refresh_token"])
        request.headers["Authorization"] = f"Bearer {self.access_token}"
        yield request
