"""The thread the outbox sends from: an asyncio loop of its own, with its own HTTP client.

Why a thread: rendering, signing and the HTTP exchange of a call (httpx, a
connection per receiver) took a third of the hub's event loop during a storm of
500 escalating alarms, and the alarm path's callbacks queued behind theirs: its
p99 was several times the same storm's with nobody to call (bench/notify_latency,
docs/performance.md). Here they queue on this loop instead. The outbox keeps the
store (claims, settlements, the reads of a pass) on the hub's loop and hands each
claimed call over as it is; ``send`` returns its ``Outcome`` there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from types import TracebackType
from typing import Self

import httpx

from hub.notify.message import Notice
from hub.notify.notifier import Notifier
from hub.notify.outcome import Outcome
from riverguard.responders import Channel, Notify, Responder
from riverguard.wire.times import utcnow


class SendThread:
    """``async with SendThread(notify) as sender``: the thread runs while the block does;
    leaving it cancels the sends still under way and closes the HTTP client."""

    def __init__(self, notify: Notify, clock: Callable[[], datetime] = utcnow) -> None:
        self._notify = notify
        self._clock = clock
        self._thread = threading.Thread(target=self._run, name="hub.notify-sends", daemon=True)
        # Set from the thread once its loop and client are up (or failed to be).
        self._started: Future[tuple[asyncio.AbstractEventLoop, Notifier, asyncio.Event]] = Future()

    async def __aenter__(self) -> Self:
        self._thread.start()
        await asyncio.wrap_future(self._started)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        loop, _, stop = self._started.result()
        loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(self._thread.join)

    def send(
        self, responder: Responder, channel: Channel, notice: Notice, delivery: str
    ) -> asyncio.Future[Outcome]:
        """Hand ``Notifier.send`` to the thread's loop at once; await the ``Outcome``
        on the caller's. Cancelling the wait cancels the send."""
        loop, notifier, _ = self._started.result()
        sending = asyncio.run_coroutine_threadsafe(
            notifier.send(responder, channel, notice, delivery), loop
        )
        return asyncio.wrap_future(sending)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            if not self._started.done():
                self._started.set_exception(exc)
            raise

    async def _serve(self) -> None:
        stop = asyncio.Event()
        async with httpx.AsyncClient() as http:
            notifier = Notifier(self._notify, http, clock=self._clock)
            self._started.set_result((asyncio.get_running_loop(), notifier, stop))
            await stop.wait()
            # Sends still under way end before their client closes.
            under_way = asyncio.all_tasks() - {asyncio.current_task()}
            for task in under_way:
                task.cancel()
            await asyncio.gather(*under_way, return_exceptions=True)
