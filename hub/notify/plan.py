"""Which notifications one escalation makes: every responder on call for the
site's new level, on every one of their channels.

Each planned notification has a key (alarm, level, responder, channel) that
the outbox keeps unique: an alarm reaching a level calls each responder once
per channel however many events it gathers, and planning the same escalation
twice (a retried transaction) queues nothing new.
"""

from __future__ import annotations

from datetime import datetime

from hub.notify.notifier import channel_key, channel_label, channel_limit
from hub.store.rows import PlannedCall
from riverguard.config import Config
from riverguard.on_call import on_call
from riverguard.responders import Responder


def plan_calls(
    config: Config, alarm_id: str, site_id: str, level: int, at: datetime
) -> list[PlannedCall]:
    """The notifications for ``alarm_id`` reaching ``level`` at ``at``; none at
    level 0 (the duty officer's console) or when nobody is on call."""
    return [
        call
        for responder in on_call(config, site_id, level, at)
        for call in calls_to(config, alarm_id, level, responder)
    ]


def calls_to(config: Config, alarm_id: str, level: int, responder: Responder) -> list[PlannedCall]:
    """One notification per channel of ``responder`` (level 0: sent by an officer)."""
    return [
        PlannedCall(
            alarm_id=alarm_id,
            level=level,
            responder_id=responder.id,
            channel_index=index,
            channel_label=channel_label(channel),
            channel_key=channel_key(channel),
            channel_limit=channel_limit(channel, config.notify),
        )
        for index, channel in enumerate(responder.channels)
    ]
