"""The generic HTTP SMS gateway: one request per message, built from the
deployment's template (``riverguard.responders.SmsGateway``).

Apprise speaks many SMS services, but the gateways of Chinese carriers and
government messaging platforms are each their own small HTTP API; a template
(URL, headers, a JSON or form body with placeholders) reaches them without a
client per vendor. Values are substituted into the parsed template and then
encoded, so a message's quotes, ampersands or newlines cannot change the
request's shape.

Many of them answer a refusal (a rate limit, an unapproved signature, a bad
key) with HTTP 200 and a code in a JSON body: Aliyun's
``{"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": ...}`` against
``{"Code": "OK"}``. A gateway with ``success_path`` is taken at its body's
word; anything else there (another code, no JSON, no such field) is tried
again, its answer kept as the reason.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from pydantic import JsonValue

from hub.notify.outcome import SENT, Outcome, failed, of_http_status, retry
from riverguard.responders import SmsGateway

_PLACEHOLDER = re.compile(r"\{(phone|text|responder)\}")


@dataclass(frozen=True)
class SmsRequest:
    method: str
    url: str
    headers: dict[str, str]
    json: JsonValue | None
    form: dict[str, str] | None


def _fill(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: values[match[1]], template)


def _fill_json(template: JsonValue, values: Mapping[str, str]) -> JsonValue:
    if isinstance(template, str):
        return _fill(template, values)
    if isinstance(template, dict):
        return {key: _fill_json(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [_fill_json(item, values) for item in template]
    return template


def sms_request(gateway: SmsGateway, phone: str, text: str, responder: str) -> SmsRequest:
    values = {"phone": phone, "text": text, "responder": responder}
    in_url = {key: quote(value, safe="") for key, value in values.items()}
    # A header value is one line: a newline in the text would start a new header.
    in_header = {key: " ".join(value.splitlines()) for key, value in values.items()}
    headers = {name: _fill(value, in_header) for name, value in gateway.headers.items()}
    json_body: JsonValue | None = None
    form: dict[str, str] | None = None
    if gateway.method == "POST":
        if gateway.body_encoding == "json":
            json_body = _fill_json(dict(gateway.body), values)
        else:
            form = {key: str(_fill_json(value, values)) for key, value in gateway.body.items()}
    return SmsRequest(gateway.method, _fill(gateway.url, in_url), headers, json_body, form)


class SmsSender:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send(
        self, gateway: SmsGateway, phone: str, text: str, responder: str, timeout_s: float
    ) -> Outcome:
        request = sms_request(gateway, phone, text, responder)
        try:
            # httpx's timeout bounds each phase; this bounds the whole exchange.
            async with asyncio.timeout(timeout_s):
                response = await self._http.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    json=request.json,
                    data=request.form,
                    timeout=timeout_s,
                )
        except (TimeoutError, httpx.TimeoutException):
            return retry(f"sms gateway {gateway.id}: no answer within {timeout_s:g} s")
        except httpx.TransportError as exc:
            return retry(f"sms gateway {gateway.id}: {type(exc).__name__}: {exc}")
        except httpx.HTTPError as exc:
            return failed(f"sms gateway {gateway.id}: {type(exc).__name__}: {exc}")
        outcome = of_http_status(response.status_code, f"sms gateway {gateway.id}")
        if not outcome.sent or gateway.success_path is None:
            return outcome
        return answered(gateway, response.text)


# How much of a refusing answer the reason keeps: enough for the gateway's code and
# message, never a whole page of HTML.
ANSWER_EXCERPT = 300


def answered(gateway: SmsGateway, body: str) -> Outcome:
    """A 2xx answer of a gateway with ``success_path``: sent when the JSON body holds
    one of ``success_values`` there, otherwise a retry with the answer as reason."""
    path = gateway.success_path or ""
    value = _at(body, path)
    if value in gateway.success_values:
        return SENT
    excerpt = " ".join(body.split())[:ANSWER_EXCERPT]
    found = "nothing" if value is None else repr(value)
    return retry(f"sms gateway {gateway.id} answered {found} at {path}: {excerpt}")


def _at(body: str, path: str) -> str | None:
    """The value at ``path`` in a JSON ``body``, as JSON writes a number or true/false;
    None when the body is not JSON or has nothing there."""
    try:
        value: JsonValue = json.loads(body)
    except (ValueError, RecursionError):
        return None
    for key in path.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdecimal() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list) or value is None:
        return None
    return json.dumps(value)
