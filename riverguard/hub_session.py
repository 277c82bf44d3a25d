"""A logged-in session on the hub's REST API for tools (simulators, benchmarks).

Access tokens live minutes (PROTOCOL 7.16): a tool that runs longer renews its
token with the session's refresh token when the hub answers 401, and retries
the request once. Used as httpx's ``auth=``, sync or async.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx


class HubSessionError(Exception):
    """The hub refused the login."""


class HubSession(httpx.Auth):
    # The refresh answer is read in the flow (httpx reads bodies first, sync or async).
    requires_response_body = True

    def __init__(self, base_url: str, grant: dict[str, Any]) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_token = str(grant["access_token"])
        self.refresh_token = str(grant.get("refresh_token") or "")

    @classmethod
    def login(cls, base_url: str, username: str, password: str) -> HubSession:
        """Log in (blocking): for tools that have no event loop at hand."""
        response = httpx.post(
            f"{base_url.rstrip('/')}/api/auth/token",
            data={"username": username, "password": password},
            timeout=30,
        )
        if response.status_code != 200:
            raise HubSessionError(f"login as {username} refused: {response.text[:200]}")
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
