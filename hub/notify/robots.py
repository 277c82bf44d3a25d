"""WeCom and DingTalk group robots, sent by us rather than by Apprise.

Configured as the Apprise URLs ``wecombot://KEY`` and
``dingtalk://[SECRET@]TOKEN[/PHONE...]`` (Apprise parses them), but sent here,
because Apprise 2.3's plugins get both robots wrong where it matters to us:

- both robots answer a refusal with HTTP 200 and an ``errcode`` in the body
  (rate limited, bad key, wrong signature); Apprise looks at the status only
  and reports every refusal as sent;
- Apprise URL-encodes DingTalk's ``sign`` and then hands it to requests as a
  parameter, which encodes it again: a robot with signing on answers
  ``310000 sign not match``, which Apprise again reports as sent.

Request shapes as documented. WeCom: POST
``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY``,
``{"msgtype": "text", "text": {"content": ...}}``, content at most 2048 bytes.
DingTalk: POST ``https://oapi.dingtalk.com/robot/send?access_token=TOKEN``
(with signing ``&timestamp=MS&sign=SIGN``, SIGN the base64 HMAC-SHA256 keyed
with the secret over ``MS + "\\n" + SECRET``, URL-encoded once),
``{"msgtype": "text", "text": {"content": ...}, "at": {"atMobiles": [...]}}``;
a mentioned phone must also appear as ``@PHONE`` in the content.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from hub.notify.chat import parse_apprise_url
from hub.notify.message import Message
from hub.notify.outcome import SENT, Outcome, failed, of_http_status, retry

WECOM_SEND = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
DINGTALK_SEND = "https://oapi.dingtalk.com/robot/send"
WECOM_MAX_BYTES = 2048
DINGTALK_MAX_BYTES = 20000

# errcodes that mean "not now": -1 system busy (both), WeCom 45009 and DingTalk
# 130101 / 410100 sending too fast (both robots take 20 messages a minute).
_TRY_AGAIN = frozenset({-1, 45009, 130101, 410100})
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")


@dataclass(frozen=True)
class RobotRequest:
    url: str
    params: dict[str, str]
    body: dict[str, Any]
    what: str


def _content(message: Message, limit: int, suffix: str = "") -> str:
    """Title and body; the one-line form when that is too long for the robot (it
    keeps the link to the responder page)."""
    for content in (f"{message.title}\n{message.body}{suffix}", f"{message.short}{suffix}"):
        if len(content.encode("utf-8")) <= limit:
            return content
    return message.short.encode("utf-8")[:limit].decode("utf-8", "ignore")


def wecom_request(key: str, message: Message) -> RobotRequest:
    content = _content(message, WECOM_MAX_BYTES)
    return RobotRequest(
        WECOM_SEND,
        {"key": key},
        {"msgtype": "text", "text": {"content": content}},
        "WeCom robot",
    )


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature, not yet URL-encoded (the HTTP client encodes it, once)."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def dingtalk_request(
    token: str, secret: str | None, phones: list[str], message: Message, timestamp_ms: int
) -> RobotRequest:
    params = {"access_token": token}
    if secret:
        params |= {"timestamp": str(timestamp_ms), "sign": dingtalk_sign(secret, timestamp_ms)}
    mentions = "".join(f" @{phone}" for phone in phones)
    body = {
        "msgtype": "text",
        "text": {"content": _content(message, DINGTALK_MAX_BYTES, mentions)},
        "at": {"atMobiles": phones, "isAtAll": False},
    }
    return RobotRequest(DINGTALK_SEND, params, body, "DingTalk robot")


def answer_outcome(status: int, content: bytes, what: str) -> Outcome:
    """A robot's answer: HTTP status first, then the errcode in a 200's body."""
    if not 200 <= status < 300:
        return of_http_status(status, what)
    try:
        answer = json.loads(content)
        code = int(answer["errcode"])
    except (ValueError, TypeError, KeyError):
        return failed(f"{what} answered HTTP {status} without an errcode")
    if code == 0:
        return SENT
    reason = f"{what} refused: errcode {code} {str(answer.get('errmsg', ''))[:200]}".rstrip()
    return retry(reason) if code in _TRY_AGAIN else failed(reason)


class RobotSender:
    SCHEMES = frozenset({"wecombot", "dingtalk"})

    def __init__(self, http: httpx.AsyncClient, clock_ms: Callable[[], int]) -> None:
        self._http = http
        self._clock_ms = clock_ms

    def handles(self, url: str) -> bool:
        return url.split("://", 1)[0] in self.SCHEMES

    def request(self, url: str, message: Message) -> RobotRequest | None:
        parsed = parse_apprise_url(url)
        if parsed is None:
            return None
        if parsed["schema"] == "wecombot":
            key = parsed.get("key")
            return wecom_request(str(key), message) if key else None
        token = parsed.get("token")
        phones = [str(target) for target in parsed.get("targets") or []]
        if not token or not all(_PHONE.match(phone) for phone in phones):
            return None
        secret = parsed.get("secret")
        return dingtalk_request(
            str(token), str(secret) if secret else None, phones, message, self._clock_ms()
        )

    async def send(self, url: str, message: Message, timeout_s: float) -> Outcome:
        request = self.request(url, message)
        if request is None:
            return failed(f"cannot read the robot URL {url.split('://', 1)[0]}://")
        try:
            # httpx's timeout bounds each phase; this bounds the whole exchange.
            async with asyncio.timeout(timeout_s):
                response = await self._http.post(
                    request.url, params=request.params, json=request.body, timeout=timeout_s
                )
        except (TimeoutError, httpx.TimeoutException):
            return retry(f"{request.what}: no answer within {timeout_s:g} s")
        except httpx.TransportError as exc:
            return retry(f"{request.what}: {type(exc).__name__}: {exc}")
        except httpx.HTTPError as exc:
            return failed(f"{request.what}: {type(exc).__name__}: {exc}")
        return answer_outcome(response.status_code, response.content, request.what)
