"""The configuration's Apprise URLs as Apprise reads them, checked when the hub
starts: ``riverguard.config`` only knows they look like URLs, Apprise knows
each service's tokens (a WeCom robot key, a DingTalk token and secret)."""

from __future__ import annotations

from hub.notify.chat import ChatSender
from riverguard.config import Config, ConfigError
from riverguard.responders import AppriseChannel

# Any address: the check builds the mail plugin, it sends nothing.
_SOME_RECIPIENT = "check@example.invalid"


def check_channels(config: Config, chat: ChatSender) -> None:
    """Raise ConfigError naming every Apprise URL Apprise cannot use."""
    timeout_s = config.notify.timeout_s
    problems: list[str] = []
    for responder in config.responders:
        for number, channel in enumerate(responder.channels, start=1):
            if isinstance(channel, AppriseChannel) and chat.plugin(channel.url, timeout_s) is None:
                scheme = channel.url.split("://", 1)[0]
                problems.append(
                    f"responder {responder.id} channel {number}: Apprise cannot use this "
                    f"{scheme}:// URL"
                )
    email = config.notify.email
    if email is not None and chat.plugin(email, timeout_s, [_SOME_RECIPIENT]) is None:
        problems.append("notify.email: Apprise cannot use this mail URL")
    if problems:
        raise ConfigError("; ".join(problems))
