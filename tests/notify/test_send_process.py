"""The outbox's sends run in a process of their own: a call goes out while the hub's
loop is kept busy, leaving ends a send still under way instead of waiting for a hung
receiver, and a child that died is an error, not a silence."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from hub.errors import SenderGone
from hub.notify.outcome import Outcome
from hub.notify.send_process import NICENESS, SendProcess
from riverguard.config import Config
from riverguard.responders import Notify, WebhookChannel
from tests.notify.receivers import HttpReceiver, http_receiver_in_thread
from tests.notify.support import notice, notify, responder

pytestmark = pytest.mark.integration

SECRET = "send-process-test-secret-0123"
TIMEOUT_S = 30


def _settings(url: str) -> Notify:
    return notify(webhooks=[{"id": "duty", "url": url, "secret": SECRET}], timeout_s=TIMEOUT_S)


def _send(sender: SendProcess, config: Config, delivery: str) -> asyncio.Future[Outcome]:
    return sender.send(
        responder(channels=[{"kind": "webhook", "webhook": "duty"}]),
        WebhookChannel(webhook="duty"),
        notice(config),
        delivery=delivery,
    )


async def _until_received(receiver: HttpReceiver) -> None:
    async with asyncio.timeout(10):
        while True:
            if receiver.received:
                return
            await asyncio.sleep(0.01)  # the receiver's thread sets no event of ours


def _sending_process() -> int:
    """The pid of this process's sending child, found in /proc."""
    [pid] = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and _parent(entry) == os.getpid()
        and b"hub.notify.send_process" in _read(entry / "cmdline")
    ]
    return pid


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # a process that ended meanwhile
        return b""


def _parent(entry: Path) -> int:
    stat = _read(entry / "stat")
    # The fields after the command's name (in parentheses, which may hold spaces).
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else 0


async def test_a_call_goes_out_while_the_hubs_loop_is_busy(example_config: Config) -> None:
    with http_receiver_in_thread() as receiver:
        async with SendProcess(_settings(receiver.url)) as sender:
            await sender.ready()
            outcome = sender.send(
                responder(channels=[{"kind": "webhook", "webhook": "duty"}]),
                WebhookChannel(webhook="duty"),
                notice(example_config),
                delivery="n-busy",
            )
            # The hub's loop kept busy (a long ingest batch, say), never awaiting.
            busy_until = time.monotonic() + 10
            while not receiver.received and time.monotonic() < busy_until:
                pass
            assert 1 == len(receiver.received)
            assert (await outcome).sent
    assert "n-busy" == receiver.received[0].headers["x-riverguard-delivery"]


async def test_leaving_ends_a_send_held_by_a_hung_receiver(example_config: Config) -> None:
    with http_receiver_in_thread(HttpReceiver(hold=True)) as receiver:
        started = time.monotonic()
        async with SendProcess(_settings(receiver.url)) as sender:
            outcome = _send(sender, example_config, "n-hung")
            await _until_received(receiver)
        with pytest.raises(SenderGone):
            await outcome
        # Well inside the send's own timeout: the stop did not wait for the receiver.
        assert time.monotonic() - started < TIMEOUT_S / 2


async def test_a_sending_process_that_died_is_started_again_and_its_call_retried(
    example_config: Config,
) -> None:
    with http_receiver_in_thread(HttpReceiver(hold=True)) as receiver:
        async with SendProcess(_settings(receiver.url), restart_s=0.05) as sender:
            outcome = _send(sender, example_config, "n-lost")
            await _until_received(receiver)
            first = _sending_process()
            os.kill(first, signal.SIGKILL)
            async with asyncio.timeout(10):
                lost = await outcome
            # It may have reached the receiver (it did here): the outbox's backoff and
            # attempts decide, as for any failed send.
            assert "retry" == lost.kind
            assert "mid-send" in lost.reason
            receiver.hold = False
            async with asyncio.timeout(20):
                assert (await _send(sender, example_config, "n-next")).sent
            assert first != _sending_process()
            assert 1 == sender.restarts
    assert ["n-lost", "n-next"] == [
        request.headers["x-riverguard-delivery"] for request in receiver.received
    ]


async def test_calls_handed_over_before_the_child_is_ready_wait_for_it(
    example_config: Config,
) -> None:
    with http_receiver_in_thread() as receiver:
        async with SendProcess(_settings(receiver.url)) as sender:
            # No child is ready yet: entering the block does not wait for one.
            outcomes = [_send(sender, example_config, f"n-early-{i}") for i in range(3)]
            async with asyncio.timeout(20):
                assert all(outcome.sent for outcome in await asyncio.gather(*outcomes))
    assert 3 == len(receiver.received)


async def test_a_child_killed_before_it_was_ready_is_started_again_at_once(
    example_config: Config,
) -> None:
    with http_receiver_in_thread() as receiver:
        async with SendProcess(_settings(receiver.url), restart_s=0.05) as sender:
            outcome = _send(sender, example_config, "n-first")
            # Killed as soon as it exists, before it said it is ready.
            async with asyncio.timeout(10):
                while True:
                    with contextlib.suppress(ValueError):
                        os.kill(_sending_process(), signal.SIGKILL)
                        break
                    await asyncio.sleep(0.001)  # the child appears in /proc, no event of ours
            # The call waited for a child that got ready: well before the 30 s a silent
            # child is given.
            async with asyncio.timeout(10):
                assert (await outcome).sent
            assert 1 == sender.restarts


async def test_the_child_starts_with_the_first_call_not_before(example_config: Config) -> None:
    with http_receiver_in_thread() as receiver:
        async with SendProcess(_settings(receiver.url)) as sender:
            await asyncio.sleep(0.5)  # time a child would need to appear, had one started
            with pytest.raises(ValueError, match="not enough values"):
                _sending_process()
            async with asyncio.timeout(20):
                assert (await _send(sender, example_config, "n-first")).sent
            assert _sending_process() > 0


async def test_the_sending_process_gives_way_to_the_hub_for_cpu(example_config: Config) -> None:
    with http_receiver_in_thread() as receiver:
        async with SendProcess(_settings(receiver.url)) as sender:
            await sender.ready()
            ours = os.getpriority(os.PRIO_PROCESS, 0)
            assert min(ours + NICENESS, 19) == os.getpriority(os.PRIO_PROCESS, _sending_process())


async def test_a_call_handed_to_a_child_that_just_died_is_retried_not_raised(
    example_config: Config,
) -> None:
    with http_receiver_in_thread() as receiver:
        async with SendProcess(_settings(receiver.url), restart_s=0.05) as sender:
            await sender.ready()
            dead = _sending_process()
            os.kill(dead, signal.SIGKILL)
            # Gone, and the hub's loop not yet told (nothing here awaits).
            deadline = time.monotonic() + 10
            while _read(Path(f"/proc/{dead}/stat")).split(b") ")[-1][:1] not in {b"Z", b""}:
                assert time.monotonic() < deadline
                time.sleep(0.001)
            outcome = _send(sender, example_config, "n-at-the-death")
            async with asyncio.timeout(10):
                assert "retry" == (await outcome).kind
            async with asyncio.timeout(20):
                assert (await _send(sender, example_config, "n-next")).sent
