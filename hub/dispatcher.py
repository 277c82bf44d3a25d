"""The dispatcher: moves responders' dispatches on, from their links or from an
officer, one at a time; audits each step in its own transaction and pushes it
to consoles as a ``dispatch`` message (docs/protocol.md 7.35)."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from hub import dispatch as rules
from hub.broadcaster import Broadcaster
from hub.clock import Clock
from hub.dispatch import Dispatch, DispatchAction
from hub.errors import DispatchNotFound
from hub.store import AuditEntry, Store
from riverguard.config import Config

log = structlog.get_logger()


def responder_actor(responder_id: str) -> str:
    """How a responder's own steps are audited: they have no login."""
    return f"responder:{responder_id}"


class Dispatcher:
    def __init__(
        self, store: Store, config: Config, broadcaster: Broadcaster, clock: Clock
    ) -> None:
        self._store = store
        self._config = config
        self._broadcaster = broadcaster
        self._clock = clock
        self._lock = asyncio.Lock()

    async def get(self, dispatch_id: str) -> Dispatch:
        dispatch = await self._store.dispatches.get(dispatch_id)
        if dispatch is None:
            raise DispatchNotFound(f"no dispatch {dispatch_id!r}")
        return dispatch

    def shape(self, dispatch: Dispatch) -> dict[str, Any]:
        """A dispatch with its responder's name, as consoles and the page get it."""
        responder = self._config.responder_by_id.get(dispatch.responder_id)
        return dispatch.shape() | {"responder_name": responder.name if responder else None}

    async def of_alarm(self, alarm_id: str) -> list[dict[str, Any]]:
        return [self.shape(d) for d in await self._store.dispatches.of_alarm(alarm_id)]

    async def act(
        self, dispatch_id: str, action: DispatchAction, by: str, note: str | None = None
    ) -> Dispatch:
        """Apply ``action`` by ``by`` (a username, or ``responder_actor``)."""
        async with self._lock:
            dispatch = await self.get(dispatch_id)
            changed = rules.act(dispatch, action, self._clock.now(), note)
            entry = AuditEntry(
                ts=self._clock.now(),
                username=by,
                action="dispatch",
                alarm_id=dispatch.alarm_id,
                target=dispatch.responder_id,
                before={"state": dispatch.state},
                after=self.shape(changed),
                detail=action,
            )
            await self._store.dispatches.save(changed, entry)
        self._broadcaster.publish("dispatch", self.shape(changed))
        log.info(
            "dispatch",
            id=changed.id,
            alarm_id=changed.alarm_id,
            responder=changed.responder_id,
            action=action,
            state=changed.state,
            by=by,
        )
        return changed
