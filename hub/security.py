"""HTTP hardening of the hub: response headers, the console's mount, data file modes.

Content Security Policy: the console loads only its own scripts, styles and
pictures (no inline script, no inline style, no framing); the printable
timeline page gets a policy of its own (one inline style block, no script).
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PRINTABLE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# The OpenAPI page (only with openapi_access "open"): FastAPI's Swagger UI comes
# from a CDN and starts with an inline script.
DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; frame-ancestors 'none'"
)

_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # For browsers older than CSP's frame-ancestors.
    "X-Frame-Options": "DENY",
}


class BodyLimit:
    """Refuses request bodies over a limit (413 JSON) without reading them: a declared
    Content-Length at once, a streamed body as soon as it passes the limit. ``limits``
    gives some paths (uploads) a limit of their own."""

    def __init__(self, app: ASGIApp, default: int, limits: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            status = 413 if declared.isdigit() else 400
            code = "too_large" if status == 413 else "bad_request"
            detail = f"request body over {limit} bytes" if status == 413 else "bad Content-Length"
            response = JSONResponse({"error": code, "detail": detail}, status_code=status)
            # Nothing of the body is read: the connection cannot be reused.
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Handled as any HTTPException: a 413 JSON answer (hub/app.py).
                    raise HTTPException(413, f"request body over {limit} bytes")
            return message

        await self.app(scope, limited, send)


class SecurityHeaders:
    """Adds the security headers to every HTTP response (a route's own CSP stays)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers[name] = value
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = CONSOLE_CSP
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Paths the console never serves: the API's own answers (404 JSON, 405 with the
# route's Allow) must not be shadowed by the static files.
_NOT_CONSOLE = ("/api/", "/api", "/healthz", "/metrics")


class ConsoleMount(Mount):
    """The console's static files at /, for every path that is not the API's."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if scope["type"] == "http" and any(
            path == prefix or (prefix.endswith("/") and path.startswith(prefix))
            for prefix in _NOT_CONSOLE
        ):
            return Match.NONE, {}
        return super().matches(scope)


# The state store's files (SQLite database, write-ahead log, shared memory).
_STORE_FILES = ("hub.db", "hub.db-wal", "hub.db-shm", "hub.db-journal")


def secure_data_dir(data_dir: Path) -> None:
    """Make the data folder 0700 and the SQLite files in it 0600, creating the
    database file 0600 before SQLite does: SQLite gives its -wal and -shm files the
    database file's mode, so they are born private too."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    database = data_dir / "hub.db"
    if not database.exists():
        os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
    for name in _STORE_FILES:
        path = data_dir / name
        if path.exists():
            path.chmod(0o600)
