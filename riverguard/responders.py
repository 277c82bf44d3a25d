"""Responders and the channels that reach them.

A responder is a person the escalation of an unacknowledged alarm calls (a
grid officer, the village police, the street's duty leader), with the
channels that reach them, each one of:

- ``apprise``: any Apprise URL (WeCom and DingTalk group robots, Feishu,
  Telegram, ntfy, Slack, e-mail, many SMS services). A chat handle goes in
  the URL where the service has one (DingTalk's ``dingtalk://token/phone``
  mentions that phone's owner in the group).
- ``email``: the deployment's mail server (``notify.email``) to the
  responder's ``email``.
- ``sms``: one of the deployment's HTTP SMS gateways to the responder's
  ``phone``.
- ``webhook``: one of the deployment's signed webhooks (docs/responders.md).

The deployment's shared channels (``notify``) hold the secrets; a responder
names them. Nothing here is sent to an edge (``riverguard.config.site_part``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    field_validator,
    model_validator,
)

from riverguard.wire.models import Ident

Language = Literal["zh-CN", "en"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL with a host")
    return value


# An Apprise URL: a service scheme and what follows. Apprise itself checks the
# rest when the hub starts (hub.notify.check), as only it knows each service.
_APPRISE_URL = re.compile(r"^[a-z][a-z0-9+.-]{1,31}://\S+$")


def _apprise_url(value: str) -> str:
    if not _APPRISE_URL.match(value):
        raise ValueError("not an Apprise URL (service://...)")
    return value


HttpUrl = Annotated[str, Field(max_length=2000), AfterValidator(_http_url)]
AppriseUrl = Annotated[str, Field(max_length=2000), AfterValidator(_apprise_url)]


class AppriseChannel(_Config):
    kind: Literal["apprise"] = "apprise"
    url: AppriseUrl


class EmailChannel(_Config):
    kind: Literal["email"] = "email"


class SmsChannel(_Config):
    kind: Literal["sms"] = "sms"
    gateway: Ident


class WebhookChannel(_Config):
    kind: Literal["webhook"] = "webhook"
    webhook: Ident


Channel = Annotated[
    AppriseChannel | EmailChannel | SmsChannel | WebhookChannel, Field(discriminator="kind")
]


class Responder(_Config):
    id: Ident
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{5,20}$")
    email: str | None = Field(
        default=None, max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
    )
    language: Language = "zh-CN"
    # Every channel is tried for each call (a phone may be off, a group muted).
    channels: list[Channel] = Field(min_length=1, max_length=10)


# The placeholders an SMS gateway's URL, headers and body may hold.
SMS_PLACEHOLDERS = frozenset({"phone", "text", "responder"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER.findall(template))


def _template_strings(value: JsonValue) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _template_strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _template_strings(item)]
    return []


# Where a gateway's JSON answer says whether it took the message: keys joined by
# dots, a list's item by its index ("Response.SendStatusSet.0.Code").
_ANSWER_PATH = re.compile(r"^[^.\s]{1,100}(\.[^.\s]{1,100}){0,9}$")


class SmsGateway(_Config):
    """An HTTP SMS gateway: ``{phone}``, ``{text}`` and ``{responder}`` in the URL
    (URL-encoded there), header values and the body's string values are replaced
    per message. The body is a table sent as JSON or as a form, so a message can
    never break its syntax. A 2xx answer counts as sent; with ``success_path``,
    only a 2xx whose JSON answer holds one of ``success_values`` there does (many
    gateways answer 200 to a refusal, with its code in the body)."""

    id: Ident
    url: HttpUrl
    # Messages a minute the gateway takes from us, if it limits them.
    per_minute: int | None = Field(default=None, ge=1, le=100_000)
    # GET carries everything in the URL; POST sends ``body`` too.
    method: Literal["POST", "GET"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, JsonValue] = Field(default_factory=dict)
    body_encoding: Literal["json", "form"] = "json"
    # Aliyun: "Code", ["OK"]; Tencent Cloud: "Response.SendStatusSet.0.Code", ["Ok"].
    # A number or true/false is compared as JSON writes it ("0", "true").
    success_path: str | None = Field(default=None, pattern=_ANSWER_PATH.pattern)
    success_values: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=20
    )

    @field_validator("headers")
    @classmethod
    def _known_header_placeholders(cls, value: dict[str, str]) -> dict[str, str]:
        _known(list(value.values()))
        return value

    @field_validator("body")
    @classmethod
    def _known_body_placeholders(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        _known(_template_strings(value))
        return value

    @field_validator("url")
    @classmethod
    def _known_url_placeholders(cls, value: str) -> str:
        _known([value])
        return value

    @model_validator(mode="after")
    def _body_fits(self) -> SmsGateway:
        if self.method == "GET" and self.body:
            raise ValueError(f"sms gateway {self.id}: a GET sends no body, put it in the url")
        if self.body_encoding == "form" and any(
            isinstance(value, dict | list) for value in self.body.values()
        ):
            raise ValueError(f"sms gateway {self.id}: a form body holds no tables or lists")
        if (self.success_path is None) != (not self.success_values):
            raise ValueError(f"sms gateway {self.id}: success_path and success_values go together")
        return self


def _known(templates: list[str]) -> None:
    for template in templates:
        unknown = placeholders(template) - SMS_PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"unknown placeholders {sorted(unknown)} in {template!r} "
                f"(known: {', '.join(sorted(SMS_PLACEHOLDERS))})"
            )


class Webhook(_Config):
    """A receiver of signed JSON notifications (docs/responders.md)."""

    id: Ident
    url: HttpUrl
    # The HMAC-SHA256 key shared with the receiver.
    secret: SecretStr = Field(min_length=16, max_length=200)
    # Calls a minute the receiver takes from us, if it limits them.
    per_minute: int | None = Field(default=None, ge=1, le=100_000)


class Notify(_Config):
    """The deployment's shared channels and how long one send may take."""

    # An Apprise mail URL (mailto:// or mailtos://, the server, its login and
    # ?from=); each message goes to the responder's own address.
    email: AppriseUrl | None = None
    webhooks: list[Webhook] = Field(default_factory=list)
    sms_gateways: list[SmsGateway] = Field(default_factory=list)
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Messages a minute to one responder, all channels together.
    responder_per_minute: int = Field(default=30, ge=1, le=10_000)
    # A notification is tried this many times at most; the second try comes
    # retry_first_s after the first failure, each next wait doubles up to retry_cap_s.
    max_attempts: int = Field(default=8, ge=1, le=100)
    retry_first_s: float = Field(default=10.0, gt=0, le=3600)
    retry_cap_s: float = Field(default=600.0, gt=0, le=86400)

    @field_validator("email")
    @classmethod
    def _mail_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("mailto", "mailtos"):
            raise ValueError("notify.email is a mailto:// or mailtos:// Apprise URL")
        return value
