"""The outbox's sends run on a loop of their own: a call goes out while the hub's loop
is kept busy, and leaving the thread ends a send still under way instead of waiting
for a hung receiver."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.notify.send_thread import SendThread
from riverguard.config import Config
from riverguard.responders import WebhookChannel
from tests.notify.receivers import HttpReceiver, http_receiver_in_thread
from tests.notify.support import notice, notify, responder

pytestmark = pytest.mark.integration

SECRET = "send-thread-test-secret-0123"
TIMEOUT_S = 30


async def test_a_call_goes_out_while_the_hubs_loop_is_busy(example_config: Config) -> None:
    with http_receiver_in_thread() as receiver:
        settings = notify(
            webhooks=[{"id": "duty", "url": receiver.url, "secret": SECRET}], timeout_s=TIMEOUT_S
        )
        async with SendThread(settings) as sender:
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


async def test_leaving_the_thread_ends_a_send_held_by_a_hung_receiver(
    example_config: Config,
) -> None:
    with http_receiver_in_thread(HttpReceiver(hold=True)) as receiver:
        settings = notify(
            webhooks=[{"id": "duty", "url": receiver.url, "secret": SECRET}], timeout_s=TIMEOUT_S
        )
        started = time.monotonic()
        async with SendThread(settings) as sender:
            outcome = sender.send(
                responder(channels=[{"kind": "webhook", "webhook": "duty"}]),
                WebhookChannel(webhook="duty"),
                notice(example_config),
                delivery="n-hung",
            )
            async with asyncio.timeout(10):
                while True:
                    if receiver.received:
                        break
                    await asyncio.sleep(0.01)  # the receiver's thread sets no event of ours
        with pytest.raises(asyncio.CancelledError):
            await outcome
        # Well inside the send's own timeout: the stop did not wait for the receiver.
        assert time.monotonic() - started < TIMEOUT_S / 2
