"""Notifications to responders: what a message says and the channels that carry it.

- ``message``: the text of a call, in the responder's language.
- ``links``: the links a message carries (the responder page, the snapshot).
- ``outcome``: what one send came to (sent, retry later, failed for good).
- ``chat``: Apprise URLs (Feishu, Telegram, Slack, ntfy, e-mail, ...).
- ``robots``: WeCom and DingTalk group robots (configured as Apprise URLs).
- ``webhook``: the signed generic webhook (docs/responders.md).
- ``sms``: the deployment's HTTP SMS gateway template.
- ``notifier``: one responder, one channel, one notice: render and send.
- ``send_process``: the process the outbox sends from, away from the alarm path.
- ``outbox``: the queued notifications sent as they come due, retried, settled.
- ``check``: the configuration's Apprise URLs, as Apprise reads them.
- ``plan``: the notifications one escalation makes, one per alarm, level,
  responder and channel.
- ``backoff``: when to try a failed notification again, and when to give up.
- ``rate_limit``: sends per responder and per channel in any minute.

A send never raises for what the far end does: a refused, slow or absent
receiver is an ``Outcome`` with its reason. Only a configuration Apprise
cannot read is an error (``riverguard.config.ConfigError``, from ``check``).
"""
