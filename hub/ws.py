"""The console WebSocket ``/api/ws`` (PROTOCOL 4.1).

``?token=`` authenticates (browsers cannot set headers on a WebSocket);
``?since=<seq>`` resumes; ``?events=site,site|*`` subscribes to events at
once, so a resumed client gets the events it missed too; ``?batch=1`` makes
every frame a JSON array of the messages queued for the client at that moment
(in a storm one frame and one socket write carry a whole ingest batch instead
of one each). Close codes: 4401 bad token, 4008 too slow to keep up, 4400 a
malformed client message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, cast

import structlog
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from hub.auth import has_role
from hub.broadcaster import Client, encode
from hub.hub import Hub
from hub.store import UserRow
from riverguard.wire.models import CLIENT_OP, SubscribeOp
from riverguard.wire.times import utcnow

log = structlog.get_logger()

router = APIRouter()

CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4008
CLOSE_BAD_MESSAGE = 4400
CLOSE_FORBIDDEN = 4403
# The least role for each client operation; both read-only today, so every role may.
OP_ROLES = {"subscribe": "viewer", "ping": "viewer"}
RECENT_ANNOUNCEMENTS = timedelta(hours=1)
# How long a closing handshake may take before the hub gives up on the client.
CLOSE_TIMEOUT_S = 5.0
# Messages per frame at most for a ``batch`` client: bounds a frame to a few MB.
BATCH_MAX = 500


class _TooSlow(Exception):
    """The client's queue overflowed."""


class _BadMessage(Exception):
    """The client sent something that is not a client operation."""


class _Forbidden(Exception):
    """The client's role may not do that operation."""


async def hello_data(hub: Hub, user: UserRow, seq: int) -> dict[str, Any]:
    picture = hub.picture
    return {
        "seq": seq,
        "user": {"username": user.username, "name": user.name, "role": user.role},
        "alarms": [a.model_dump(mode="json") for a in picture.active_alarms()],
        "sites": picture.site_items(),
        "devices": picture.device_items(),
        "edges": picture.edge_items(),
        "announcements": await hub.announcer.recent(utcnow() - RECENT_ANNOUNCEMENTS),
        "links": hub.links.data(),
    }


@router.websocket("/api/ws")
async def console_socket(
    websocket: WebSocket,
    token: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[int | None, Query(ge=0)] = None,
    events: Annotated[str | None, Query(max_length=2000)] = None,
    batch: bool = False,
) -> None:
    hub = cast(Hub, websocket.state.hub)
    await websocket.accept()
    user = await hub.auth.user_for(token)
    if user is None:
        await websocket.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return
    sites = {s for s in (events or "").split(",") if s}
    client = Client(hub.settings.ws_queue_size, sites)
    seq, replay = hub.broadcaster.attach(client, since)
    code, reason = 1000, ""
    try:
        frame = _batch_frame if batch else _single_frame
        size = BATCH_MAX if batch else 1
        if replay is None:
            await websocket.send_text(
                frame([encode(seq, "hello", await hello_data(hub, user, seq))])
            )
        else:
            wanted = [envelope.text for envelope in replay if client.wants(envelope)]
            for start in range(0, len(wanted), size):
                await websocket.send_text(frame(wanted[start : start + size]))
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                _send(websocket, client, frame, size), name=f"ws[{user.username}].send"
            )
            tasks.create_task(
                _receive(websocket, client, user), name=f"ws[{user.username}].receive"
            )
            tasks.create_task(_watch(client), name=f"ws[{user.username}].watch")
    except* _TooSlow:
        code, reason = CLOSE_TOO_SLOW, "too slow"
        log.warning("websocket client too slow, closing", username=user.username)
    except* _BadMessage:
        code, reason = CLOSE_BAD_MESSAGE, "bad message"
    except* _Forbidden:
        code, reason = CLOSE_FORBIDDEN, "forbidden"
    except* WebSocketDisconnect:
        code = 0
    finally:
        hub.broadcaster.detach(client)
    if code:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await websocket.close(code, reason)
        except (TimeoutError, RuntimeError, WebSocketDisconnect):
            pass


def _single_frame(texts: list[str]) -> str:
    (text,) = texts
    return text


def _batch_frame(texts: list[str]) -> str:
    return f"[{','.join(texts)}]"


async def _send(
    websocket: WebSocket, client: Client, frame: Callable[[list[str]], str], size: int
) -> None:
    """Live messages: each frame carries what is queued, up to ``size`` messages."""
    while True:
        texts = [(await client.queue.get()).text]
        while len(texts) < size and not client.queue.empty():
            texts.append(client.queue.get_nowait().text)
        await websocket.send_text(frame(texts))


async def _watch(client: Client) -> None:
    await client.overflowed.wait()
    raise _TooSlow


async def _receive(websocket: WebSocket, client: Client, user: UserRow) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            raise _BadMessage
        try:
            op = CLIENT_OP.validate_json(text)
        except ValidationError:
            raise _BadMessage from None
        if not has_role(user.role, OP_ROLES[op.op]):
            raise _Forbidden
        if isinstance(op, SubscribeOp):
            client.sites = set(op.events)
        # A ping needs no answer beyond keeping the connection alive.
