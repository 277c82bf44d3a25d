"""The console WebSocket ``/api/ws`` (PROTOCOL 4.1).

The bearer token comes as the subprotocol ``bearer.<token>`` next to
``riverguard.v1``, or as a first message ``{"op": "auth", "token": …}``
(``riverguard/wire/socket_auth.py``), never in the URL: a ``?token=`` is refused
(4401). The socket is closed (4401) once its session ends (logout, a disabled
user, the session's end). ``?since=<seq>`` resumes; ``?events=site,site|*`` subscribes to events at
once, so a resumed client gets the events it missed too; ``?batch=1`` makes
every frame a JSON array of the messages queued for the client at that moment
(in a storm one frame and one socket write carry a whole ingest batch instead
of one each). Close codes: 4401 bad token, 4008 too slow to keep up, 4400 a
malformed client message. Every ``ws_heartbeat_s`` the hub sends a ``heartbeat``
(PROTOCOL 7.17) so a console can tell a hung hub from a quiet night.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from hub.announcer import Announcer
from hub.auth import Auth, Session, has_role
from hub.broadcaster import Client, encode
from hub.deps import (
    AnnouncerDep,
    AuthDep,
    BroadcasterDep,
    DispatcherDep,
    LinksDep,
    PictureDep,
    SettingsDep,
)
from hub.dispatch_board import DispatchBoard
from hub.links import Links
from hub.people import people
from hub.picture import Picture
from hub.store import UserRow
from riverguard.wire.models import CLIENT_OP, SubscribeOp
from riverguard.wire.socket_auth import SUBPROTOCOL, AuthOp, bearer_from
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
# How long a client without the bearer subprotocol has to send its auth message.
AUTH_TIMEOUT_S = 10.0
# How often an open socket's session is checked (logout, disabled user, session end).
SESSION_CHECK_S = 5.0
# Messages per frame at most for a ``batch`` client: bounds a frame to a few MB.
BATCH_MAX = 500


class _SessionEnded(Exception):
    """The socket's session was logged out, ran out, or its user was disabled."""


class _TooSlow(Exception):
    """The client's queue overflowed."""


class _BadMessage(Exception):
    """The client sent something that is not a client operation."""


class _Forbidden(Exception):
    """The client's role may not do that operation."""


async def hello_data(
    picture: Picture,
    announcer: Announcer,
    links: Links,
    board: DispatchBoard,
    *,
    user: UserRow,
    seq: int,
) -> dict[str, Any]:
    active = picture.active_alarms()
    return {
        "seq": seq,
        "user": {"username": user.username, "name": user.name, "role": user.role},
        "people": people(picture.config),
        "alarms": [a.model_dump(mode="json") for a in active],
        "dispatches": board.of_alarms(a.id for a in active),
        "sites": picture.site_items(),
        "edges": picture.edge_items(),
        "announcements": await announcer.recent(utcnow() - RECENT_ANNOUNCEMENTS),
        "links": links.data(),
    }


async def _authenticate(auth: Auth, websocket: WebSocket) -> Session | None:
    """Accept the socket and find its session: from the bearer subprotocol, else from
    a first ``auth`` message within ``AUTH_TIMEOUT_S``. None: closed with 4401."""
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    if "token" in websocket.query_params:
        await websocket.close(CLOSE_UNAUTHORIZED, "token in the URL refused")
        return None
    token = bearer_from(offered)
    if token is None:
        try:
            async with asyncio.timeout(AUTH_TIMEOUT_S):
                first = await websocket.receive_text()
            token = AuthOp.model_validate_json(first).token
        except (TimeoutError, ValidationError, KeyError, RuntimeError, WebSocketDisconnect):
            token = None
    session = await auth.session_for(token)
    if session is None:
        with contextlib.suppress(RuntimeError):  # the client may have gone already
            await websocket.close(CLOSE_UNAUTHORIZED, "unauthorized")
    return session


@router.websocket("/api/ws")
async def console_socket(
    websocket: WebSocket,
    *,
    auth: AuthDep,
    broadcaster: BroadcasterDep,
    settings: SettingsDep,
    picture: PictureDep,
    announcer: AnnouncerDep,
    links: LinksDep,
    dispatcher: DispatcherDep,
    since: Annotated[int | None, Query(ge=0)] = None,
    events: Annotated[str | None, Query(max_length=2000)] = None,
    batch: bool = False,
) -> None:
    session = await _authenticate(auth, websocket)
    if session is None:
        return
    user = session.user
    sites = {s for s in (events or "").split(",") if s}
    client = Client(settings.ws_queue_size, sites)
    seq, replay = broadcaster.attach(client, since)
    code, reason = 1000, ""
    # One writer at a time: live messages and heartbeats share the socket.
    sending = asyncio.Lock()
    try:
        frame = _batch_frame if batch else _single_frame
        size = BATCH_MAX if batch else 1
        if replay is None:
            hello = await hello_data(
                picture, announcer, links, dispatcher.board, user=user, seq=seq
            )
            await websocket.send_text(frame([encode(seq, "hello", hello)]))
        else:
            wanted = [envelope.text for envelope in replay if client.wants(envelope)]
            for start in range(0, len(wanted), size):
                await websocket.send_text(frame(wanted[start : start + size]))
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                _send(websocket, client, frame, size, sending), name=f"ws[{user.username}].send"
            )
            tasks.create_task(
                _heartbeat(websocket, frame, settings.ws_heartbeat_s, sending),
                name=f"ws[{user.username}].heartbeat",
            )
            tasks.create_task(
                _receive(websocket, client, user), name=f"ws[{user.username}].receive"
            )
            tasks.create_task(_watch(client), name=f"ws[{user.username}].watch")
            tasks.create_task(_watch_session(auth, session), name=f"ws[{user.username}].session")
    except* _SessionEnded:
        code, reason = CLOSE_UNAUTHORIZED, "session ended"
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
        broadcaster.detach(client)
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
    websocket: WebSocket,
    client: Client,
    frame: Callable[[list[str]], str],
    size: int,
    sending: asyncio.Lock,
) -> None:
    """Live messages: each frame carries what is queued, up to ``size`` messages."""
    while True:
        texts = [(await client.queue.get()).text]
        while len(texts) < size and not client.queue.empty():
            texts.append(client.queue.get_nowait().text)
        async with sending:
            await websocket.send_text(frame(texts))


async def _heartbeat(
    websocket: WebSocket, frame: Callable[[list[str]], str], interval_s: float, lock: asyncio.Lock
) -> None:
    """A ``heartbeat`` every ``interval_s``, outside the seq order (seq 0)."""
    text = frame([encode(0, "heartbeat", {"interval_s": interval_s})])
    while True:
        await asyncio.sleep(interval_s)
        async with lock:
            await websocket.send_text(text)


async def _watch_session(auth: Auth, session: Session) -> None:
    while True:
        await asyncio.sleep(SESSION_CHECK_S)
        if not await auth.session_alive(session):
            raise _SessionEnded


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
            if op.devices is not None:
                client.device_sites = set(op.devices)
        # A ping needs no answer beyond keeping the connection alive.
