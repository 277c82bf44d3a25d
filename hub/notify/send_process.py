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
itself). Should the child die first, the hub starts another, at once and then
after a growing pause while children keep dying: the calls it was sending come
back as to be tried again (the outbox's backoff and attempts hold as for any
failed send; a receiver may get such a call twice, as after a hub restart, and
the delivery id lets it tell), calls handed over meanwhile wait for the new
child. The alarm path never waits for any of this: a hub does not stop because
its sender did.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import sys
from asyncio import FIRST_COMPLETED
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Self

import httpx
import structlog

from hub.errors import SenderGone
from hub.notify.message import Notice
from hub.notify.notifier import Notifier
from hub.notify.outcome import Outcome, OutcomeKind, retry
from riverguard.responders import Channel, Notify, Responder
from riverguard.wire.times import utcnow

# How long the child may take to finish once its pipe is closed, before it is killed.
STOP_S = 5.0
# How long a new child may take to say it is ready (an interpreter and httpx, apprise
# imported: about a second on this machine) before it is killed and tried again.
READY_S = 30.0
# The pause before starting a child again after one died: doubled while children keep
# dying before they were ready, up to the cap; a child that got ready starts it afresh.
RESTART_S = 0.5
RESTART_CAP_S = 30.0
# How much the child gives way to the hub for CPU (``nice``; 0 to 19).
NICENESS = 10
# The child's entry point (``main`` below).
MODULE = "hub.notify.send_process"

log = structlog.get_logger()


@dataclass(frozen=True)
class _Call:
    number: int
    responder: Responder
    channel: Channel
    notice: Notice
    delivery: str
    # The hub's clock at the hand-over: the signed timestamp of a webhook's request.
    at: datetime


@dataclass
class _Child:
    """One sending process, its end of the pipe, and the calls handed to it."""

    process: asyncio.subprocess.Process
    pipe: Connection
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    under_way: set[int] = field(default_factory=set)


class SendProcess:
    """``async with SendProcess(notify) as sender``: a child runs while the block does,
    from the first call on (started again should it die); leaving it ends the sends
    still under way."""

    def __init__(
        self,
        notify: Notify,
        clock: Callable[[], datetime] = utcnow,
        *,
        restart_s: float = RESTART_S,
    ) -> None:
        self._notify = notify
        self._clock = clock
        self._restart_s = restart_s
        self._numbers = itertools.count(1)
        self._answers: dict[int, asyncio.Future[Outcome]] = {}
        # Calls handed over while no child is ready, oldest first.
        self._waiting: list[_Call] = []
        self._child: _Child | None = None
        self._child_ready = asyncio.Event()
        self._stopped: str | None = None
        # Children that died before the hub stopped them (a metric).
        self.restarts = 0

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._supervisor: asyncio.Task[None] | None = None
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped = "the hub is stopping"
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(SenderGone(self._stopped))
        self._answers.clear()
        self._waiting.clear()

    async def ready(self) -> None:
        """Start the child if it is not yet, and return once it is ready to send (the
        hub never needs to wait for it)."""
        self._start_once()
        await self._child_ready.wait()

    def _start_once(self) -> None:
        # The child starts with the first call, not with the hub: an interpreter with
        # httpx and apprise costs ~2 s of CPU, which a hub that never calls anyone
        # (most of the suite's, a deployment without responders) need not pay; the
        # first call after a start waits that long once.
        if self._supervisor is None:
            self._supervisor = self._loop.create_task(self._supervise(), name="hub.notify-sends")

    def send(
        self, responder: Responder, channel: Channel, notice: Notice, delivery: str
    ) -> asyncio.Future[Outcome]:
        """Hand the call to the child at once (or, while none is ready, as soon as one
        is); await the ``Outcome`` here."""
        if self._stopped is not None:
            raise SenderGone(self._stopped)
        number = next(self._numbers)
        answer: asyncio.Future[Outcome] = self._loop.create_future()
        self._answers[number] = answer
        call = _Call(number, responder, channel, notice, delivery, self._clock())
        self._start_once()
        if self._child is None:
            self._waiting.append(call)
        else:
            self._hand_over(self._child, call)
        return answer

    def _hand_over(self, child: _Child, call: _Call) -> None:
        child.under_way.add(call.number)
        # At most the outbox's few sends at once are in the pipe: far below its
        # buffer, so this write does not block the loop.
        try:
            child.pipe.send(call)
        except OSError:
            # The child died and its end-of-pipe is not read yet: when it is, the
            # call is answered "try again" with the rest it was sending.
            log.warning("sending process gone at hand-over", call=call.number)

    async def _supervise(self) -> None:
        pause = self._restart_s
        while True:
            try:
                child = await self._start()
            except OSError as exc:  # no process to be had (out of pids or memory)
                log.warning("sending process could not start", error=str(exc), retry_in_s=pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RESTART_CAP_S)
                continue
            try:
                if await self._ready(child):
                    pause = self._restart_s
                    self._child = child
                    self._child_ready.set()
                    waiting, self._waiting = self._waiting, []
                    for call in waiting:
                        self._hand_over(child, call)
                await child.ended.wait()
            finally:
                self._child = None
                self._child_ready.clear()
                await self._stop(child)
            lost = self._retry_under_way(child)
            self.restarts += 1
            log.warning(
                "sending process ended; starting another",
                exit_code=child.process.returncode,
                calls_to_retry=lost,
                calls_waiting=len(self._waiting),
                restart_in_s=pause,
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESTART_CAP_S)

    async def _start(self) -> _Child:
        # A fresh interpreter: not a fork (the hub has threads, the store's, a fork
        # would copy mid-flight), nor multiprocessing's spawn (it runs the hub's main
        # module again in the child).
        hub_end, child_end = socket.socketpair()
        with child_end:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", MODULE, str(child_end.fileno()), pass_fds=[child_end.fileno()]
            )
        child = _Child(process, Connection(hub_end.detach()))
        child.pipe.send(self._notify)
        self._loop.add_reader(child.pipe.fileno(), self._answered, child)
        return child

    async def _ready(self, child: _Child) -> bool:
        """Whether ``child`` said it is ready in time, rather than died or stayed silent
        (a silent one is killed)."""
        said = asyncio.ensure_future(child.ready.wait())
        died = asyncio.ensure_future(child.ended.wait())
        try:
            await asyncio.wait({said, died}, timeout=READY_S, return_when=FIRST_COMPLETED)
        finally:
            said.cancel()
            died.cancel()
        if not child.ready.is_set() and not child.ended.is_set():
            _kill(child.process)
        return child.ready.is_set() and not child.ended.is_set()

    def _answered(self, child: _Child) -> None:
        try:
            while child.pipe.poll():
                number, kind, reason = child.pipe.recv()
                if number == 0:
                    child.ready.set()
                    continue
                child.under_way.discard(number)
                answer = self._answers.pop(number, None)
                if answer is not None and not answer.done():
                    answer.set_result(Outcome(kind, reason))
        except (EOFError, OSError):
            self._loop.remove_reader(child.pipe.fileno())
            child.ended.set()

    async def _stop(self, child: _Child) -> None:
        if not child.pipe.closed:
            self._loop.remove_reader(child.pipe.fileno())
            child.pipe.close()
        try:
            async with asyncio.timeout(STOP_S):
                await child.process.wait()
        except TimeoutError:
            _kill(child.process)
            await child.process.wait()

    def _retry_under_way(self, child: _Child) -> int:
        """The calls a dead child was sending: to be tried again (it may have sent
        them before it died; it cannot say)."""
        why = f"the sending process ended (exit code {child.process.returncode}) mid-send"
        lost = 0
        for number in child.under_way:
            answer = self._answers.pop(number, None)
            if answer is not None and not answer.done():
                answer.set_result(retry(why))
                lost += 1
        child.under_way.clear()
        return lost


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        process.kill()


def main() -> None:
    """The child: the hub's ``Notify`` first, then calls, each sent as it comes and its
    outcome sent back, until the pipe closes."""
    # The hub stops it by closing the pipe; a Ctrl-C to the hub's terminal is the hub's.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # On a busy machine the hub's alarm path goes first: a call a few milliseconds
    # later matters less than a breach on the wall later (docs/performance.md).
    os.nice(NICENESS)
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
