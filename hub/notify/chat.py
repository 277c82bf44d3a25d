"""Sending through Apprise: WeCom and DingTalk group robots, Feishu, e-mail, ntfy,
Telegram, Slack and the other services it speaks, one URL each.

Apprise's plugins are blocking (requests, smtplib); its ``async_notify`` runs
them on its own worker threads, so the event loop never waits on a chat
server. Its ``timeout`` bounds how long we wait; the URL's connect and read
timeouts (``cto``, ``rto``) are set to the same so the worker thread gives up
too instead of holding a socket to a hung server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from apprise import Apprise, AppriseResultStatus, NotifyFormat
from apprise.plugins import NotifyBase, url_to_dict

from hub.notify.message import Message
from hub.notify.outcome import SENT, Outcome, failed, retry

# Builds a plugin from Apprise's parsed URL; Apprise.instantiate unless a test
# needs the plugin it builds.
PluginFactory = Callable[[dict[str, Any]], NotifyBase | None]

# Apprise's URL parser carries no annotations; its result is the plugin's
# constructor arguments, or None for a URL no plugin reads.
_url_to_dict = cast(Callable[..., dict[str, Any] | None], url_to_dict)


def parse_apprise_url(url: str) -> dict[str, Any] | None:
    """An Apprise URL as its plugin's constructor arguments (secrets kept out of
    Apprise's log), or None when no plugin reads it."""
    return _url_to_dict(url, secure_logging=True)


def _instantiate(parsed: dict[str, Any]) -> NotifyBase | None:
    return Apprise.instantiate(parsed)


class ChatSender:
    def __init__(self, instantiate: PluginFactory = _instantiate) -> None:
        self._instantiate = instantiate

    def plugin(
        self, url: str, timeout_s: float, recipients: list[str] | None = None
    ) -> NotifyBase | None:
        """The plugin for ``url`` with our timeouts (and, for e-mail, the recipients
        in place of the URL's own), or None if Apprise cannot read the URL."""
        parsed = parse_apprise_url(url)
        if parsed is None:
            return None
        parsed = {**parsed, "cto": timeout_s, "rto": timeout_s}
        if recipients is not None:
            parsed["targets"] = recipients
        return self._instantiate(parsed)

    async def send(
        self,
        url: str,
        message: Message,
        timeout_s: float,
        recipients: list[str] | None = None,
    ) -> Outcome:
        plugin = self.plugin(url, timeout_s, recipients)
        if plugin is None:
            return failed(f"Apprise cannot use the URL for {url.split(':', 1)[0]}://")
        apprise = Apprise()
        apprise.add(plugin)
        # Our text is plain: said so, Apprise keeps its lines (it would read it as
        # HTML for an HTML service such as e-mail and run the lines together).
        result = await apprise.async_notify(
            body=message.body,
            title=message.title,
            body_format=NotifyFormat.TEXT,
            timeout=timeout_s,
        )
        if result.status == AppriseResultStatus.SUCCESS:
            return SENT
        if result.status == AppriseResultStatus.TIMEOUT:
            return retry(f"{plugin.service_name}: no answer within {timeout_s:g} s")
        # Apprise tells success from failure but not a refusal from an outage
        # (its plugins log the HTTP status): a failure is retried, and the
        # outbox's attempt limit ends one that never succeeds.
        reasons = [
            entry.message
            for service in result.results
            for entry in service.logs()
            if entry.level in ("WARNING", "ERROR")
        ]
        return retry(f"{plugin.service_name}: {'; '.join(reasons) or 'not delivered'}")
