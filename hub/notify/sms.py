"""The generic HTTP SMS gateway: one request per message, built from the
deployment's template (``riverguard.responders.SmsGateway``).

Apprise speaks many SMS services, but the gateways of Chinese carriers and
government messaging platforms are each their own small HTTP API; a template
(URL, headers, a JSON or form body with placeholders) reaches them without a
client per vendor. Values are substituted into the parsed template and then
encoded, so a message's quotes, ampersands or newlines cannot change the
request's shape.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from pydantic import JsonValue

from hub.notify.outcome import Outcome, failed, of_http_status, retry
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
        return of_http_status(response.status_code, f"sms gateway {gateway.id}")
