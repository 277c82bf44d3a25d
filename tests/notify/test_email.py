"""E-mail reaches a real SMTP server (aiosmtpd on a free port) through Apprise, to
the responder's own address, in the responder's language."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from hub.notify.message import Notice
from hub.notify.notifier import Notifier
from hub.notify.outcome import Outcome
from riverguard.config import Config
from riverguard.responders import EmailChannel
from riverguard.services import free_port
from tests.notify.support import notice, notify, responder, stand_down_notice

pytestmark = pytest.mark.integration


class Mailbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        parser = BytesParser(policy=policy.default)
        messages = []
        for envelope in self.envelopes:
            assert isinstance(envelope.content, bytes)
            message = parser.parsebytes(envelope.content)
            assert isinstance(message, EmailMessage)
            messages.append(message)
        return messages


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


async def _mail(config: Config, port: int, language: str, about: Notice | None = None) -> Outcome:
    settings = notify(
        email=f"mailto://127.0.0.1:{port}?from=riverguard@example.cn&mode=insecure", timeout_s=5
    )
    async with httpx.AsyncClient() as http:
        return await Notifier(settings, http).send(
            responder(language), EmailChannel(), about or notice(config), delivery="n-1"
        )


async def test_an_email_in_chinese_reaches_the_responders_address(example_config: Config) -> None:
    with smtp_server() as (mailbox, port):
        outcome = await _mail(example_config, port, "zh-CN")
    assert outcome.sent, outcome
    [envelope] = mailbox.envelopes
    assert ["wang@example.cn"] == envelope.rcpt_tos
    assert "riverguard@example.cn" == envelope.mail_from
    [message] = mailbox.messages()
    assert "【紧急】淡水大桥东岸 桥下亲水平台 告警无人确认，请处置" == message["subject"]
    lines = _text(message).splitlines()
    assert "触发：围栏越界、有人下水" in lines
    assert "时间：2026-07-18 19:05:12 +08:00" in lines
    assert "接受任务并上报进展：https://riverguard.example.cn/respond/tok-123" == lines[-1]


async def test_an_email_in_english_for_an_english_speaking_responder(
    example_config: Config,
) -> None:
    with smtp_server() as (mailbox, port):
        outcome = await _mail(example_config, port, "en")
    assert outcome.sent, outcome
    [message] = mailbox.messages()
    assert message["subject"].startswith("[CRITICAL] Danshui Bridge, east bank")
    assert "Triggered by: fence breach, person entering water" in _text(message)


async def test_a_stand_down_email_in_english_reaches_the_responders_address(
    example_config: Config,
) -> None:
    with smtp_server() as (mailbox, port):
        outcome = await _mail(example_config, port, "en", stand_down_notice(example_config))
    assert outcome.sent, outcome
    [message] = mailbox.messages()
    assert message["subject"].startswith("[STAND DOWN] Danshui Bridge, east bank")
    assert "Resolved: 2026-07-18 19:09:40 +08:00" in _text(message).splitlines()


async def test_a_mail_server_that_is_down_is_a_retry(example_config: Config) -> None:
    outcome = await _mail(example_config, free_port(), "en")
    assert "retry" == outcome.kind
    assert "Connection error" in outcome.reason
