"""A responder's phone, for scenarios: the signed webhook the demo's responders are
reached through (``riverguard up --webhook URL``, docs/responders.md), received as an
integrator would, so a scenario acts with the token of the link the hub sent.

The receiver checks each call as docs/responders.md tells integrators to (signature
over the raw body, a 5-minute window, a repeated delivery taken once) and keeps the
calls it took. Starlette and uvicorn serve it: the hub's own HTTP stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.errors import ScenarioError

DEMO_CONFIG = "config-with-responders.json"  # riverguard/demo_responders.py writes it
WINDOW_S = 300
STARTED_WITHIN_S = 10.0


@dataclass(frozen=True)
class Webhook:
    """Where the hub sends the demo responders' calls, and the secret signing them."""

    url: str
    secret: str

    @classmethod
    def of_stack(cls, data_dir: Path) -> Webhook:
        """The demo webhook of a stack started with ``--webhook``."""
        path = data_dir / DEMO_CONFIG
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            [webhook] = raw["notify"]["webhooks"]
            return cls(url=webhook["url"], secret=webhook["secret"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ScenarioError(
                f"no demo webhook in {path} ({exc}): responders are reached through one; "
                "start the stack with `riverguard up --webhook http://127.0.0.1:PORT/`"
            ) from None


@dataclass
class CallReceiver:
    """The calls taken, newest last; refusals counted by reason."""

    webhook: Webhook
    calls: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _deliveries: set[str] = field(default_factory=set)

    def _refuse(self, reason: str, status: int) -> Response:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        return Response(reason, status_code=status)

    async def take(self, request: Request) -> Response:
        body = await request.body()
        timestamp = request.headers.get("x-riverguard-timestamp", "")
        given = request.headers.get("x-riverguard-signature", "")
        mac = hmac.new(
            self.webhook.secret.encode("utf-8"), timestamp.encode() + b"." + body, hashlib.sha256
        )
        if not hmac.compare_digest("sha256=" + mac.hexdigest(), given):
            return self._refuse("signature", 401)
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > WINDOW_S:
            return self._refuse("timestamp", 401)
        delivery = request.headers.get("x-riverguard-delivery", "")
        if delivery in self._deliveries:
            return Response(status_code=204)  # a retry after a lost answer: taken once
        try:
            call = json.loads(body)
        except ValueError:
            return self._refuse("body", 400)
        if not isinstance(call, dict) or call.get("type") != "responder.call":
            return self._refuse("body", 400)
        self._deliveries.add(delivery)
        async with self.arrived:
            self.calls.append(call)
            self.arrived.notify_all()
        return Response(status_code=204)

    async def call_for(
        self, responder: str, alarm_id: str, within_s: float, level: int | None = None
    ) -> dict[str, Any]:
        """The newest call to ``responder`` about ``alarm_id`` (at ``level``), waiting for
        one up to ``within_s``."""

        def found() -> dict[str, Any] | None:
            for call in reversed(self.calls):
                alarm = call.get("alarm") or {}
                if (
                    call.get("responder") == responder
                    and alarm.get("id") == alarm_id
                    and (level is None or alarm.get("level") == level)
                ):
                    taken: dict[str, Any] = call
                    return taken
            return None

        async with self.arrived:
            try:
                await asyncio.wait_for(self.arrived.wait_for(found), within_s)
            except TimeoutError:
                taken = [
                    (c.get("responder"), (c.get("alarm") or {}).get("level")) for c in self.calls
                ]
                raise ScenarioError(
                    f"no call to {responder} about {alarm_id}"
                    f"{'' if level is None else f' at level {level}'} within {within_s}s "
                    f"(calls taken: {taken}, refused: {self.refused})"
                ) from None
        call = found()
        assert call is not None
        return call


def token_of(call: dict[str, Any]) -> str:
    """The token of the call's responder link (``…/respond/<token>``)."""
    respond = str((call.get("links") or {}).get("respond") or "")
    head, _, token = respond.rstrip("/").rpartition("/respond/")
    if not head or not token or "/" in token:
        raise ScenarioError(f"the call's responder link is not one: {respond!r}")
    return token


@contextlib.asynccontextmanager
async def receiving(webhook: Webhook) -> AsyncIterator[CallReceiver]:
    """A receiver listening where ``webhook.url`` points, for the block."""
    where = urlsplit(webhook.url)
    if where.hostname is None or where.port is None:
        raise ScenarioError(f"the demo webhook {webhook.url} names no local host and port")
    receiver = CallReceiver(webhook)
    app = Starlette(routes=[Route(where.path or "/", receiver.take, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=where.hostname, port=where.port, lifespan="off", log_level="warning"
        )
    )
    serving = asyncio.create_task(server.serve(), name="sim.responder_calls")
    deadline = time.monotonic() + STARTED_WITHIN_S
    while not server.started:
        if serving.done() or time.monotonic() > deadline:
            serving.cancel()
            raise ScenarioError(f"cannot receive the calls at {webhook.url}")
        await asyncio.sleep(0.05)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await serving
