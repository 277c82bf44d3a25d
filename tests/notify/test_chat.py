"""Any other Apprise service: a call reaches a real receiver through Apprise's own
client (its generic JSON service, which takes a local host), and a receiver that
refuses, is absent or hangs comes back as a retry within the timeout."""

from __future__ import annotations

import json

import httpx
import pytest

from hub.notify.chat import ChatSender
from hub.notify.check import check_channels
from hub.notify.notifier import Notifier
from hub.notify.outcome import Outcome
from riverguard.config import Config, ConfigError
from riverguard.responders import AppriseChannel
from riverguard.services import free_port
from tests.notify.receivers import HttpReceiver, http_receiver
from tests.notify.support import notice, notify, responder

pytestmark = pytest.mark.integration


async def _send(config: Config, url: str, timeout_s: float = 5) -> Outcome:
    async with httpx.AsyncClient() as http:
        return await Notifier(notify(timeout_s=timeout_s), http).send(
            responder("en", channels=[{"kind": "apprise", "url": url}]),
            AppriseChannel(url=url),
            notice(config),
            delivery="n-3",
        )


async def test_a_call_reaches_an_apprise_service_with_title_and_lines(
    example_config: Config,
) -> None:
    async with http_receiver() as receiver:
        outcome = await _send(example_config, f"json://127.0.0.1:{receiver.port}/notify")
    assert outcome.sent, outcome
    [request] = receiver.received
    assert ("POST", "/notify") == (request.method, request.target)
    body = json.loads(request.body)
    assert body["title"].startswith("[CRITICAL] Danshui Bridge, east bank")
    assert "Escalation: level 1 (grid officer)" in body["message"].splitlines()


async def test_an_apprise_service_answering_500_is_a_retry_with_the_status(
    example_config: Config,
) -> None:
    async with http_receiver(HttpReceiver(status=500)) as receiver:
        outcome = await _send(example_config, f"json://127.0.0.1:{receiver.port}/")
    assert "retry" == outcome.kind
    assert "500" in outcome.reason


async def test_an_apprise_service_that_is_down_is_a_retry(example_config: Config) -> None:
    outcome = await _send(example_config, f"json://127.0.0.1:{free_port()}/")
    assert "retry" == outcome.kind


async def test_an_apprise_service_that_hangs_is_a_retry_after_the_timeout(
    example_config: Config,
) -> None:
    async with http_receiver(HttpReceiver(hold=True)) as receiver:
        outcome = await _send(example_config, f"json://127.0.0.1:{receiver.port}/", 1)
        assert receiver.arrived.is_set()
    assert "retry" == outcome.kind


async def test_a_url_apprise_cannot_use_is_a_failure_not_a_retry(
    example_config: Config,
) -> None:
    outcome = await _send(example_config, "nosuchservice://abc")
    assert "failed" == outcome.kind
    assert "nosuchservice://" in outcome.reason


def test_the_configuration_check_names_every_url_apprise_cannot_use(
    example_config: Config,
) -> None:
    people = [
        responder(id="good", channels=[{"kind": "apprise", "url": "ntfy://riverguard"}]),
        responder(id="bad", channels=[{"kind": "apprise", "url": "wecombot://not.a.key"}]),
        responder(id="odd", channels=[{"kind": "apprise", "url": "nosuchservice://abc"}]),
    ]
    config = example_config.model_copy(update={"responders": people})
    with pytest.raises(ConfigError) as refused:
        check_channels(config, ChatSender())
    assert "responder bad channel 1" in str(refused.value)
    assert "responder odd channel 1" in str(refused.value)
    assert "good" not in str(refused.value)
    check_channels(example_config, ChatSender())
