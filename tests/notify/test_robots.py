"""WeCom and DingTalk group robots checked against the request shapes their
documentation gives (hub/notify/robots.py), at a local receiver, and their
refusals (an errcode in an HTTP 200) told apart from deliveries.

The endpoints are the robots' real HTTPS hosts: the sender goes through a local
proxy (HTTPS_PROXY) that terminates the tunnel with a certificate from a test
CA (SSL_CERT_FILE), so nothing leaves the machine and nothing in the sender is
pointed elsewhere for the test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
import trustme

from hub.notify.notifier import Notifier
from hub.notify.outcome import Outcome
from riverguard.config import Config
from riverguard.responders import AppriseChannel
from tests.notify.receivers import HttpReceiver, Received, http_receiver
from tests.notify.support import notice, notify, responder

pytestmark = pytest.mark.integration

WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DINGTALK_TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
DINGTALK_SECRET = "SEC7f3c2b1a0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1"


@pytest.fixture
async def robots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HttpReceiver]:
    """A proxy answering for both robot hosts; HTTP clients made in the test use it."""
    ca = trustme.CA()
    certificate = ca.issue_cert("qyapi.weixin.qq.com", "oapi.dingtalk.com")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with http_receiver(HttpReceiver(tunnel_tls=context)) as proxy:
        for name in ("HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        yield proxy


async def _send(config: Config, url: str, language: str = "zh-CN", timeout_s: float = 5) -> Outcome:
    async with httpx.AsyncClient() as http:
        return await Notifier(notify(timeout_s=timeout_s), http).send(
            responder(language, channels=[{"kind": "apprise", "url": url}]),
            AppriseChannel(url=url),
            notice(config),
            delivery="n-7",
        )


def _only(proxy: HttpReceiver) -> tuple[Received, dict[str, list[str]], dict[str, object]]:
    [request] = proxy.received
    return request, parse_qs(urlsplit(request.target).query), json.loads(request.body)


async def test_a_wecom_group_robot_gets_its_documented_text_message(
    example_config: Config, robots: HttpReceiver
) -> None:
    outcome = await _send(example_config, f"wecombot://{WECOM_KEY}")
    assert outcome.sent, outcome
    request, query, body = _only(robots)
    assert "qyapi.weixin.qq.com:443" == request.tunnel
    assert "POST" == request.method
    assert "/cgi-bin/webhook/send" == urlsplit(request.target).path
    assert {"key": [WECOM_KEY]} == query
    assert request.headers["content-type"].startswith("application/json")
    assert {"msgtype", "text"} == set(body)
    assert "text" == body["msgtype"]
    text = body["text"]
    assert isinstance(text, dict)
    assert {"content"} == set(text)
    content = text["content"]
    assert isinstance(content, str)
    assert len(content.encode("utf-8")) <= 2048
    # A robot message has no title field: the title leads the content.
    assert content.startswith("【紧急】淡水大桥东岸 桥下亲水平台")
    assert "接受任务并上报进展：https://riverguard.example.cn/respond/tok-123" in content


async def test_a_dingtalk_robot_gets_a_signed_text_message_mentioning_the_responder(
    example_config: Config, robots: HttpReceiver
) -> None:
    url = f"dingtalk://{DINGTALK_SECRET}@{DINGTALK_TOKEN}/13800000001"
    outcome = await _send(example_config, url, "en")
    assert outcome.sent, outcome
    request, query, body = _only(robots)
    assert "oapi.dingtalk.com:443" == request.tunnel
    assert ("POST", "/robot/send") == (request.method, urlsplit(request.target).path)
    assert [DINGTALK_TOKEN] == query["access_token"]
    [stamp] = query["timestamp"]
    assert abs(time.time() * 1000 - int(stamp)) < 3600 * 1000
    mac = hmac.new(DINGTALK_SECRET.encode(), f"{stamp}\n{DINGTALK_SECRET}".encode(), hashlib.sha256)
    # The raw query still holds the URL-encoded form DingTalk asks for.
    raw_sign = next(p for p in urlsplit(request.target).query.split("&") if p.startswith("sign="))
    assert base64.b64encode(mac.digest()).decode() == unquote(raw_sign.removeprefix("sign="))
    assert "text" == body["msgtype"]
    assert {"atMobiles": ["13800000001"], "isAtAll": False} == body["at"]
    text = body["text"]
    assert isinstance(text, dict)
    content = text["content"]
    assert isinstance(content, str)
    assert content.startswith("[CRITICAL] Danshui Bridge, east bank, Under-bridge waterside deck")
    assert "Triggered by: fence breach, person entering water" in content
    # DingTalk shows a mention only when the content names the phone too.
    assert content.endswith(" @13800000001")


async def test_a_dingtalk_robot_without_signing_gets_no_timestamp_or_sign(
    example_config: Config, robots: HttpReceiver
) -> None:
    assert (await _send(example_config, f"dingtalk://{DINGTALK_TOKEN}/")).sent
    _, query, body = _only(robots)
    assert {"access_token": [DINGTALK_TOKEN]} == query
    assert {"atMobiles": [], "isAtAll": False} == body["at"]


@pytest.mark.parametrize(
    ("url", "errcode", "kind"),
    [
        (f"wecombot://{WECOM_KEY}", 45009, "retry"),
        (f"wecombot://{WECOM_KEY}", 93000, "failed"),
        (f"dingtalk://{DINGTALK_TOKEN}/", 130101, "retry"),
        (f"dingtalk://{DINGTALK_TOKEN}/", 310000, "failed"),
        (f"dingtalk://{DINGTALK_TOKEN}/", -1, "retry"),
    ],
)
async def test_a_refusal_in_an_http_200_is_not_taken_for_a_delivery(
    example_config: Config, robots: HttpReceiver, url: str, errcode: int, kind: str
) -> None:
    robots.answer = json.dumps({"errcode": errcode, "errmsg": "refused"}).encode()
    outcome = await _send(example_config, url)
    assert kind == outcome.kind
    assert f"errcode {errcode} refused" in outcome.reason


async def test_a_robot_answer_that_is_not_json_is_a_failure(
    example_config: Config, robots: HttpReceiver
) -> None:
    robots.answer = b"<html>gateway</html>"
    outcome = await _send(example_config, f"wecombot://{WECOM_KEY}")
    assert "failed" == outcome.kind
    assert "without an errcode" in outcome.reason


async def test_a_robot_endpoint_answering_500_is_a_retry_with_the_reason(
    example_config: Config, robots: HttpReceiver
) -> None:
    robots.status = 500
    outcome = await _send(example_config, f"wecombot://{WECOM_KEY}")
    assert "retry" == outcome.kind
    assert "500" in outcome.reason
    assert 1 == len(robots.received)


async def test_a_robot_endpoint_that_never_answers_is_a_retry_after_the_timeout(
    example_config: Config, robots: HttpReceiver
) -> None:
    robots.hold = True
    outcome = await _send(example_config, f"dingtalk://{DINGTALK_TOKEN}/", timeout_s=1)
    assert robots.arrived.is_set()
    assert "retry" == outcome.kind
    assert "no answer within 1 s" in outcome.reason
