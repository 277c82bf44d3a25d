"""The signed generic webhook: a JSON POST an integrator can trust (docs/responders.md).

Apprise's ``json://`` posts JSON but signs nothing, so a receiver on the open
internet could not tell our call from anyone's. Each request carries

- ``X-Riverguard-Timestamp``: the Unix time of sending, in seconds;
- ``X-Riverguard-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with
  the webhook's secret, of the timestamp, a dot and the exact body bytes;
- ``X-Riverguard-Delivery``: the notification's id, the same on every retry,

so a receiver refuses a forged or altered body, a replay outside its time
window, and a second copy of one delivery inside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import datetime
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict

from hub.notify.message import Message, Notice
from hub.notify.outcome import Outcome, failed, of_http_status, retry
from riverguard.responders import Language, Webhook
from riverguard.wire.models import EventKind, Severity
from riverguard.wire.times import Timestamp

SIGNATURE_HEADER = "X-Riverguard-Signature"
TIMESTAMP_HEADER = "X-Riverguard-Timestamp"
DELIVERY_HEADER = "X-Riverguard-Delivery"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookAlarm(_Body):
    id: str
    site: str
    site_name: str
    zone: str
    zone_name: str
    severity: Severity
    kinds: list[EventKind]
    opened_at: Timestamp
    level: int
    level_name: str


class WebhookLinks(_Body):
    respond: str
    snapshot: str | None


class WebhookCall(_Body):
    """The body of one call (docs/responders.md)."""

    type: Literal["responder.call", "responder.stand_down"] = "responder.call"
    delivery: str
    sent_at: Timestamp
    responder: str
    language: Language
    title: str
    text: str
    alarm: WebhookAlarm
    links: WebhookLinks


class WebhookStandDown(WebhookCall):
    """The body of one stand-down: the alarm a call was about is resolved, and the
    responder need not come (docs/responders.md, docs/protocol.md 7.44). It has every
    field of a call, so a receiver written before stand-downs that reads every body
    as a call still reads this one, and shows its words."""

    type: Literal["responder.call", "responder.stand_down"] = "responder.stand_down"
    resolved_at: Timestamp | None


def call_body(
    notice: Notice, message: Message, responder_id: str, delivery: str, sent_at: datetime
) -> WebhookCall:
    english = message.language == "en"
    alarm = WebhookAlarm(
        id=notice.alarm_id,
        site=notice.site_id,
        site_name=(english and notice.site_name_en) or notice.site_name,
        zone=notice.zone_id,
        zone_name=(english and notice.zone_name_en) or notice.zone_name,
        severity=notice.severity,
        kinds=list(notice.kinds),
        opened_at=notice.opened_at,
        level=notice.level,
        level_name=notice.level_name,
    )
    call = WebhookCall(
        delivery=delivery,
        sent_at=sent_at,
        responder=responder_id,
        language=message.language,
        title=message.title,
        text=message.body,
        alarm=alarm,
        links=WebhookLinks(respond=notice.respond_url, snapshot=notice.snapshot_url),
    )
    if notice.purpose == "stand_down":
        return WebhookStandDown(**call.model_dump(exclude={"type"}), resolved_at=notice.resolved_at)
    return call


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def signed_request(
    webhook: Webhook, call: WebhookCall, now: datetime
) -> tuple[bytes, dict[str, str]]:
    """The exact body bytes and the headers that sign them."""
    body = json.dumps(call.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")
    timestamp = str(int(now.timestamp()))
    secret = webhook.secret.get_secret_value().encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        DELIVERY_HEADER: call.delivery,
    }
    return body, headers


class WebhookSender:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send(
        self, webhook: Webhook, call: WebhookCall, now: datetime, timeout_s: float
    ) -> Outcome:
        body, headers = signed_request(webhook, call, now)
        try:
            # httpx's timeout bounds each phase; this bounds the whole exchange (a
            # receiver dripping its answer byte by byte).
            async with asyncio.timeout(timeout_s):
                response = await self._http.post(
                    webhook.url, content=body, headers=headers, timeout=timeout_s
                )
        except (TimeoutError, httpx.TimeoutException):
            return retry(f"webhook {webhook.id}: no answer within {timeout_s:g} s")
        except httpx.TransportError as exc:
            return retry(f"webhook {webhook.id}: {type(exc).__name__}: {exc}")
        except httpx.HTTPError as exc:
            return failed(f"webhook {webhook.id}: {type(exc).__name__}: {exc}")
        return of_http_status(response.status_code, f"webhook {webhook.id}")
