"""The process the outbox sends from: an interpreter, asyncio loop and HTTP client of
its own.

Why a process: rendering, signing and the HTTP exchange of a call (httpx, a
connection per receiver) took a third of the hub's event loop during a storm of
500 escalating alarms, and the alarm path's p99 was several times the same
storm's with nobody to call. On a thread of the hub's own, the same work still
held the GIL against the alarm path, whose p99 while the calls went out stayed
two to five times the quiet run's; in a process of its own it waits for
nobody's GIL
(bench/notify_latency, docs/performance.md). The outbox keeps the store
(claims, settlements, the reads of a pass) in the hub and hands each claimed
call over through a pipe; ``send`` resolves with its ``Outcome``.

The child ends when the hub does: when the hub closes the pipe, and when the
pipe breaks because the hub died (a killed hub's child must not go on sending by
itself). Should the child die first, ``send`` raises ``SenderGone``: the outbox,
an essential task, dies with it, and the hub stops for its supervisor to start
it again (what was claimed and not settled is queued again then).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import socket
import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Self

import httpx

from hub.errors import SenderGone
from hub.notify.message import Notice
from hub.notify.notifier import Notifier
from hub.notify.outcome import Outcome, OutcomeKind
from riverguard.responders import Channel, Notify, Responder
from riverguard.wire.times import utcnow

# How long the child may take to finish once its pipe is closed, before it is killed.
STOP_S = 5.0
# The child's entry point (``main`` below).
MODULE = "hub.notify.send_process"


@dataclass(frozen=True)
class _Call:
    number: int
    responder: Responder
    channel: Channel
    notice: Notice
    delivery: str
    # The hub's clock at the hand-over: the signed timestamp of a webhook's request.
    at: datetime


class SendProcess:
    """``async with SendProcess(notify) as sender``: the child runs while the block does;
    leaving it ends the sends still under way."""

    def __init__(self, notify: Notify, clock: Callable[[], datetime] = utcnow) -> None:
        self._notify = notify
        self._clock = clock
        self._numbers = itertools.count(1)
        self._answers: dict[int, asyncio.Future[Outcome]] = {}
        self._gone: str | None = None

    async def __aenter__(self) -> Self:
        # A fresh interpreter: not a fork (the hub has threads, the store's, a fork
        # would copy mid-flight), nor multiprocessing's spawn (it runs the hub's main
        # module again in the child).
        hub_end, child_end = socket.socketpair()
        with child_end:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", MODULE, str(child_end.fileno()), pass_fds=[child_end.fileno()]
            )
        self._pipe = Connection(hub_end.detach())
        self._pipe.send(self._notify)
        self._loop = asyncio.get_running_loop()
        ready = self._loop.create_future()
        self._answers[0] = ready
        self._loop.add_reader(self._pipe.fileno(), self._answered)
        await ready
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._ended("the hub is stopping")
        try:
            async with asyncio.timeout(STOP_S):
                await self._process.wait()
        except TimeoutError:
            self._process.kill()
            await self._process.wait()

    def send(
        self, responder: Responder, channel: Channel, notice: Notice, delivery: str
    ) -> asyncio.Future[Outcome]:
        """Hand the call to the child at once; await the ``Outcome`` here."""
        if self._gone is not None:
            raise SenderGone(self._gone)
        number = next(self._numbers)
        answer: asyncio.Future[Outcome] = self._loop.create_future()
        self._answers[number] = answer
        # At most the outbox's few sends at once are in the pipe: far below its
        # buffer, so this write does not block the loop.
        self._pipe.send(_Call(number, responder, channel, notice, delivery, self._clock()))
        return answer

    def _answered(self) -> None:
        try:
            while self._pipe.poll():
                number, kind, reason = self._pipe.recv()
                answer = self._answers.pop(number, None)
                if answer is not None and not answer.done():
                    answer.set_result(Outcome(kind, reason))
        except (EOFError, OSError):
            self._ended(f"the sending process ended (exit code {self._process.returncode})")

    def _ended(self, why: str) -> None:
        if self._gone is not None:
            return
        self._gone = why
        self._loop.remove_reader(self._pipe.fileno())
        self._pipe.close()
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(SenderGone(why))
        self._answers.clear()


def main() -> None:
    """The child: the hub's ``Notify`` first, then calls, each sent as it comes and its
    outcome sent back, until the pipe closes."""
    # The hub stops it by closing the pipe; a Ctrl-C to the hub's terminal is the hub's.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pipe = Connection(int(sys.argv[1]))
    notify: Notify = pipe.recv()
    asyncio.run(_serve(pipe, notify))


async def _serve(pipe: Connection, notify: Notify) -> None:
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()
    sent_at: ContextVar[datetime] = ContextVar("sent_at")
    under_way: set[asyncio.Task[None]] = set()

    def answer(number: int, kind: OutcomeKind, reason: str) -> None:
        try:
            pipe.send((number, kind, reason))
        except OSError:
            closed.set()  # the hub is gone: nobody to tell

    async with httpx.AsyncClient() as http:
        notifier = Notifier(notify, http, clock=sent_at.get)

        async def send(call: _Call) -> None:
            sent_at.set(call.at)
            outcome = await notifier.send(call.responder, call.channel, call.notice, call.delivery)
            answer(call.number, outcome.kind, outcome.reason)

        def arrived() -> None:
            try:
                while pipe.poll():
                    call: _Call = pipe.recv()
                    task = loop.create_task(send(call), name=f"send[{call.number}]")
                    under_way.add(task)
                    task.add_done_callback(under_way.discard)
            except (EOFError, OSError):
                closed.set()

        loop.add_reader(pipe.fileno(), arrived)
        answer(0, "sent", "ready")
        await closed.wait()
        loop.remove_reader(pipe.fileno())
        for task in under_way:
            task.cancel()
        await asyncio.gather(*under_way, return_exceptions=True)
    pipe.close()


if __name__ == "__main__":
    main()
