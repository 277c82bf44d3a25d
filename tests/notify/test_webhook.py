"""The signed webhook reaches a real HTTP receiver, which verifies it as an integrator
would (docs/responders.md) with its own code: a tampered body, a replayed request
and a wrong key fail; a refusing or absent receiver is a retry or a failure."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import httpx
import pytest

from hub.notify.notifier import Notifier
from hub.notify.outcome import Outcome
from riverguard.config import Config
from riverguard.responders import WebhookChannel
from riverguard.services import free_port
from tests.notify.receivers import HttpReceiver, Received, http_receiver
from tests.notify.support import notice, notify, responder

pytestmark = pytest.mark.integration

SECRET = "integrator-shared-secret-0123"
NOW = datetime(2026, 7, 18, 11, 10, tzinfo=UTC)
WINDOW_S = 300


def verified(request: Received, secret: str, now: datetime) -> bool:
    """What a receiver does: the signature over "<timestamp>.<body>" with the shared
    key, and a timestamp within its window."""
    timestamp = request.headers["x-riverguard-timestamp"]
    if abs(now.timestamp() - int(timestamp)) > WINDOW_S:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256)
    return hmac.compare_digest(
        "sha256=" + mac.hexdigest(), request.headers["x-riverguard-signature"]
    )


async def _call(config: Config, url: str, language: str = "zh-CN") -> Outcome:
    settings = notify(webhooks=[{"id": "dispatch", "url": url, "secret": SECRET}], timeout_s=2)
    async with httpx.AsyncClient() as http:
        notifier = Notifier(settings, http, clock=lambda: NOW)
        return await notifier.send(
            responder(language, channels=[{"kind": "webhook", "webhook": "dispatch"}]),
            WebhookChannel(webhook="dispatch"),
            notice(config),
            delivery="n-42",
        )


async def test_a_call_arrives_signed_with_the_alarm_and_the_links(example_config: Config) -> None:
    async with http_receiver() as receiver:
        outcome = await _call(example_config, f"{receiver.url}/hooks/riverguard", "en")
    assert outcome.sent, outcome
    [request] = receiver.received
    assert ("POST", "/hooks/riverguard") == (request.method, request.target)
    assert request.headers["content-type"].startswith("application/json")
    assert "n-42" == request.headers["x-riverguard-delivery"]
    assert str(int(NOW.timestamp())) == request.headers["x-riverguard-timestamp"]
    assert verified(request, SECRET, NOW)
    body = json.loads(request.body)
    assert "responder.call" == body["type"]
    assert "n-42" == body["delivery"]
    assert "wang" == body["responder"]
    assert "en" == body["language"]
    assert {
        "id": "a-1",
        "site": "danshui-bridge",
        "site_name": "Danshui Bridge, east bank",
        "zone": "z1",
        "zone_name": "Under-bridge waterside deck",
        "severity": "critical",
        "kinds": ["fence.breach", "camera.water_entry"],
        "opened_at": "2026-07-18T11:05:12.000Z",
        "level": 1,
        "level_name": "grid officer",
    } == body["alarm"]
    assert {
        "respond": "https://riverguard.example.cn/respond/tok-123",
        "snapshot": "https://riverguard.example.cn/respond/tok-123/snapshot",
    } == body["links"]
    assert body["title"].startswith("[CRITICAL] Danshui Bridge")


async def test_a_tampered_body_a_replay_and_a_wrong_key_fail_verification(
    example_config: Config,
) -> None:
    async with http_receiver() as receiver:
        assert (await _call(example_config, receiver.url)).sent
    [request] = receiver.received
    body = json.loads(request.body)
    assert "淡水大桥东岸" == body["alarm"]["site_name"]
    tampered = json.dumps(body | {"responder": "attacker"}, ensure_ascii=False).encode()
    assert not verified(
        Received(request.method, request.target, request.headers, tampered), SECRET, NOW
    )
    later = datetime.fromtimestamp(NOW.timestamp() + WINDOW_S + 1, UTC)
    assert not verified(request, SECRET, later)
    assert not verified(request, "another-secret-0123456", NOW)
    assert verified(request, SECRET, NOW)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(500, "retry"), (503, "retry"), (429, "retry"), (401, "failed"), (404, "failed")],
)
async def test_a_refusing_receiver_is_retried_or_failed_by_its_status(
    example_config: Config, status: int, kind: str
) -> None:
    async with http_receiver(HttpReceiver(status=status)) as receiver:
        outcome = await _call(example_config, receiver.url)
    assert kind == outcome.kind
    assert f"HTTP {status}" in outcome.reason
    assert 1 == len(receiver.received)


async def test_a_receiver_that_is_down_is_a_retry(example_config: Config) -> None:
    outcome = await _call(example_config, f"http://127.0.0.1:{free_port()}/hook")
    assert "retry" == outcome.kind
    assert "ConnectError" in outcome.reason


async def test_a_receiver_that_never_answers_is_a_retry_after_the_timeout(
    example_config: Config,
) -> None:
    async with http_receiver(HttpReceiver(hold=True)) as receiver:
        outcome = await _call(example_config, receiver.url)
        assert receiver.arrived.is_set()
    assert "retry" == outcome.kind
    assert "no answer within 2 s" in outcome.reason
