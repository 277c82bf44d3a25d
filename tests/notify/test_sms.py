"""The HTTP SMS gateway template: the request a real receiver gets carries the
responder's phone and the one-line text where the template says, encoded so the
text cannot change the request's shape; the gateway's refusals are told apart."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from hub.notify.notifier import Notifier
from hub.notify.outcome import Outcome
from hub.notify.sms import sms_request
from riverguard.config import Config
from riverguard.responders import SmsChannel, SmsGateway
from riverguard.services import free_port
from tests.notify.receivers import HttpReceiver, http_receiver
from tests.notify.support import notice, notify, responder

pytestmark = pytest.mark.integration


async def _text(config: Config, gateway: dict[str, Any], language: str = "zh-CN") -> Outcome:
    settings = notify(sms_gateways=[{"id": "gw"} | gateway], timeout_s=2)
    async with httpx.AsyncClient() as http:
        return await Notifier(settings, http).send(
            responder(language, channels=[{"kind": "sms", "gateway": "gw"}]),
            SmsChannel(gateway="gw"),
            notice(config),
            delivery="n-9",
        )


async def test_a_json_gateway_gets_the_phone_and_the_one_line_text(example_config: Config) -> None:
    async with http_receiver() as receiver:
        outcome = await _text(
            example_config,
            {
                "url": f"{receiver.url}/sms/send?account=river",
                "headers": {"Authorization": "Bearer gateway-token", "X-To": "{phone}"},
                "body": {"mobiles": ["{phone}"], "content": "{text}", "sign": "河长办"},
            },
        )
    assert outcome.sent, outcome
    [request] = receiver.received
    assert ("POST", "/sms/send?account=river") == (request.method, request.target)
    assert "Bearer gateway-token" == request.headers["authorization"]
    assert "+8613800000001" == request.headers["x-to"]
    body = json.loads(request.body)
    assert ["+8613800000001"] == body["mobiles"]
    assert "河长办" == body["sign"]
    assert body["content"].startswith("【紧急】淡水大桥东岸 桥下亲水平台 告警（19:05）")
    assert body["content"].endswith("https://riverguard.example.cn/respond/tok-123")


async def test_a_form_gateway_gets_a_form(example_config: Config) -> None:
    async with http_receiver() as receiver:
        outcome = await _text(
            example_config,
            {
                "url": receiver.url,
                "body": {"to": "{phone}", "msg": "{text}", "who": "{responder}"},
                "body_encoding": "form",
            },
            "en",
        )
    assert outcome.sent, outcome
    [request] = receiver.received
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = parse_qs(request.body.decode())
    assert ["+8613800000001"] == form["to"]
    assert ["wang"] == form["who"]
    assert form["msg"][0].startswith("[CRITICAL] Danshui Bridge, east bank")


async def test_a_get_gateway_gets_everything_url_encoded_in_the_query(
    example_config: Config,
) -> None:
    async with http_receiver() as receiver:
        outcome = await _text(
            example_config,
            {"url": f"{receiver.url}/send?to={{phone}}&text={{text}}", "method": "GET"},
        )
    assert outcome.sent, outcome
    [request] = receiver.received
    assert "GET" == request.method
    query = parse_qs(urlsplit(request.target).query)
    assert ["+8613800000001"] == query["to"]
    assert query["text"][0].endswith("https://riverguard.example.cn/respond/tok-123")


def test_quotes_ampersands_and_newlines_in_a_text_cannot_reshape_the_request() -> None:
    gateway = SmsGateway.model_validate(
        {
            "id": "gw",
            "url": "https://sms.example.cn/send?text={text}",
            "headers": {"X-Text": "{text}"},
            "body": {"content": "{text}"},
        }
    )
    text = 'a"b&c=d\r\nX-Evil: 1\n{phone}'
    request = sms_request(gateway, "+86138", text, "wang")
    assert {"content": text} == request.json
    assert "\n" not in request.headers["X-Text"]
    assert "\r" not in request.headers["X-Text"]
    assert [text] == parse_qs(urlsplit(request.url).query)["text"]


@pytest.mark.parametrize(("status", "kind"), [(500, "retry"), (429, "retry"), (400, "failed")])
async def test_a_gateway_refusal_is_retried_or_failed_by_its_status(
    example_config: Config, status: int, kind: str
) -> None:
    async with http_receiver(HttpReceiver(status=status)) as receiver:
        outcome = await _text(example_config, {"url": receiver.url, "body": {"t": "{text}"}})
    assert kind == outcome.kind
    assert f"sms gateway gw answered HTTP {status}" == outcome.reason


async def test_a_gateway_that_is_down_or_hangs_is_a_retry(example_config: Config) -> None:
    down = await _text(example_config, {"url": f"http://127.0.0.1:{free_port()}/"})
    assert "retry" == down.kind
    async with http_receiver(HttpReceiver(hold=True)) as receiver:
        hung = await _text(example_config, {"url": receiver.url})
    assert "retry" == hung.kind
    assert "no answer within 2 s" in hung.reason


ALIYUN = {"success_path": "Code", "success_values": ["OK"]}
TENCENT = {"success_path": "Response.SendStatusSet.0.Code", "success_values": ["Ok"]}
ALIYUN_LIMITED = (
    '{"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1",'
    ' "RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990"}'
)


@pytest.mark.parametrize(
    ("check", "answer"),
    [
        (ALIYUN, '{"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0"}'),
        (
            TENCENT,
            '{"Response": {"SendStatusSet": [{"SerialNo": "5000:1045710669157053657849499619",'
            ' "PhoneNumber": "+8613800000001", "Code": "Ok", "Message": "send success"}],'
            ' "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}}',
        ),
        ({"success_path": "code", "success_values": ["0"]}, '{"code": 0, "msg": "发送成功"}'),
    ],
)
async def test_a_gateway_whose_answer_says_it_took_the_message_is_sent(
    example_config: Config, check: dict[str, Any], answer: str
) -> None:
    async with http_receiver(HttpReceiver(answer=answer.encode())) as receiver:
        outcome = await _text(example_config, {"url": receiver.url} | check)
    assert outcome.sent, outcome


@pytest.mark.parametrize(
    ("check", "answer", "reason"),
    [
        (
            ALIYUN,
            ALIYUN_LIMITED,
            "sms gateway gw answered 'isv.BUSINESS_LIMIT_CONTROL' at Code: " + ALIYUN_LIMITED,
        ),
        (
            TENCENT,
            '{"Response": {"Error": {"Code": "AuthFailure.SignatureFailure",'
            ' "Message": "The provided credentials could not be validated."},'
            ' "RequestId": "a0aabda6"}}',
            "sms gateway gw answered nothing at Response.SendStatusSet.0.Code: "
            '{"Response": {"Error": {"Code": "AuthFailure.SignatureFailure",',
        ),
        (
            ALIYUN,
            "<html>" + "维护中 " * 500,
            "sms gateway gw answered nothing at Code: <html>维护中",
        ),
        (ALIYUN, "[" * 100_000, "sms gateway gw answered nothing at Code: [[["),
        (TENCENT, '{"Response": {"SendStatusSet": []}}', "answered nothing at"),
        (ALIYUN, '{"Code": {"OK": true}}', "answered nothing at Code"),
    ],
)
async def test_a_gateway_that_answers_200_with_a_refusal_is_a_retry_with_its_answer(
    example_config: Config, check: dict[str, Any], answer: str, reason: str
) -> None:
    async with http_receiver(HttpReceiver(answer=answer.encode())) as receiver:
        outcome = await _text(example_config, {"url": receiver.url} | check)
    assert 1 == len(receiver.received)
    assert "retry" == outcome.kind
    assert reason in outcome.reason
    assert len(outcome.reason) < 400


async def test_without_a_success_check_any_2xx_is_sent(example_config: Config) -> None:
    async with http_receiver(HttpReceiver(answer=ALIYUN_LIMITED.encode())) as receiver:
        outcome = await _text(example_config, {"url": receiver.url})
    assert outcome.sent


def test_a_success_check_needs_its_path_and_its_values() -> None:
    for half in ({"success_path": "Code"}, {"success_values": ["OK"]}):
        with pytest.raises(ValueError, match="success_path and success_values go together"):
            SmsGateway.model_validate({"id": "gw", "url": "https://sms.example.cn/"} | half)
    with pytest.raises(ValueError, match="success_path"):
        SmsGateway.model_validate(
            {"id": "gw", "url": "https://sms.example.cn/", "success_path": "a..b"}
            | {"success_values": ["OK"]}
        )
