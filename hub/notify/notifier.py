"""One call: a notice to one responder over one of their channels, in their language."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

import httpx

from hub.notify.chat import ChatSender
from hub.notify.message import Message, Notice, render
from hub.notify.outcome import Outcome, failed
from hub.notify.robots import RobotSender
from hub.notify.sms import SmsSender
from hub.notify.webhook import WebhookSender, call_body
from riverguard.responders import (
    AppriseChannel,
    Channel,
    EmailChannel,
    Notify,
    Responder,
    SmsChannel,
    WebhookChannel,
)
from riverguard.wire.times import utcnow


def channel_label(channel: Channel) -> str:
    """How a channel is named to the console and in the outbox: no secrets."""
    if isinstance(channel, AppriseChannel):
        return channel.url.split("://", 1)[0]
    if isinstance(channel, SmsChannel):
        return f"sms:{channel.gateway}"
    if isinstance(channel, WebhookChannel):
        return f"webhook:{channel.webhook}"
    return "email"


def channel_key(channel: Channel) -> str:
    """The far end a channel reaches, for its rate limit: one WeCom group robot
    used by three responders is one robot with one limit. An Apprise URL holds
    secrets, so it is named by a digest."""
    if isinstance(channel, AppriseChannel):
        digest = hashlib.sha256(channel.url.encode()).hexdigest()[:16]
        return f"{channel_label(channel)}:{digest}"
    return channel_label(channel)


# WeCom and DingTalk group robots take 20 messages a minute each.
ROBOT_PER_MINUTE = 20


def channel_limit(channel: Channel, notify: Notify) -> int | None:
    """Sends a minute the channel's far end takes, where it limits them."""
    if isinstance(channel, AppriseChannel):
        return ROBOT_PER_MINUTE if channel.url.startswith(("wecombot:", "dingtalk:")) else None
    if isinstance(channel, SmsChannel):
        gateway = next((g for g in notify.sms_gateways if g.id == channel.gateway), None)
        return gateway.per_minute if gateway else None
    if isinstance(channel, WebhookChannel):
        webhook = next((w for w in notify.webhooks if w.id == channel.webhook), None)
        return webhook.per_minute if webhook else None
    return None


class Notifier:
    def __init__(
        self,
        notify: Notify,
        http: httpx.AsyncClient,
        chat: ChatSender | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._notify = notify
        self._chat = chat or ChatSender()
        self._robots = RobotSender(http, lambda: int(clock().timestamp() * 1000))
        self._webhook = WebhookSender(http)
        self._sms = SmsSender(http)
        self._clock = clock
        self._webhooks = {webhook.id: webhook for webhook in notify.webhooks}
        self._gateways = {gateway.id: gateway for gateway in notify.sms_gateways}

    async def send(
        self, responder: Responder, channel: Channel, notice: Notice, delivery: str
    ) -> Outcome:
        """Send ``notice`` to ``responder`` over ``channel``; ``delivery`` names this
        notification (the same on every retry: a receiver can drop duplicates)."""
        message = render(notice, responder.language)
        if isinstance(channel, AppriseChannel):
            if self._robots.handles(channel.url):
                return await self._robots.send(channel.url, message, self._notify.timeout_s)
            return await self._chat.send(channel.url, message, self._notify.timeout_s)
        if isinstance(channel, EmailChannel):
            return await self._email(responder, message)
        if isinstance(channel, SmsChannel):
            return await self._text(responder, channel, message)
        return await self._post(responder, channel, notice, message, delivery)

    async def _email(self, responder: Responder, message: Message) -> Outcome:
        if self._notify.email is None or responder.email is None:
            # The configuration refuses an e-mail channel without both.
            return failed("no mail server or no address")
        return await self._chat.send(
            self._notify.email, message, self._notify.timeout_s, recipients=[responder.email]
        )

    async def _text(self, responder: Responder, channel: SmsChannel, message: Message) -> Outcome:
        gateway = self._gateways.get(channel.gateway)
        if gateway is None or responder.phone is None:
            return failed(f"no sms gateway {channel.gateway} or no phone")
        return await self._sms.send(
            gateway, responder.phone, message.short, responder.id, self._notify.timeout_s
        )

    async def _post(
        self,
        responder: Responder,
        channel: WebhookChannel,
        notice: Notice,
        message: Message,
        delivery: str,
    ) -> Outcome:
        webhook = self._webhooks.get(channel.webhook)
        if webhook is None:
            return failed(f"no webhook {channel.webhook}")
        now = self._clock()
        call = call_body(notice, message, responder.id, delivery, now)
        return await self._webhook.send(webhook, call, now, self._notify.timeout_s)
