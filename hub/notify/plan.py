"""Which notifications one escalation makes: every responder on call for the
site's new level, on every one of their channels.

Each planned notification has a key (alarm, level, responder, channel) that
the outbox keeps unique: an alarm reaching a level calls each responder once
per channel however many events it gathers, and planning the same escalation
twice (a retried transaction) queues nothing new.

Each responder called is audited (``audit_calls``), in the transaction that
queues their messages: who, at which level, on which channels, and by whom.

A resolve, or an officer's call-off, stands down each responder it calls off who
was sent a call (``stand_downs``): one message on each channel that carried one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from hub.dispatch import Dispatch, dispatch_id
from hub.notify.notifier import channel_key, channel_label, channel_limit
from hub.store.rows import AuditEntry, NotificationRow, PlannedCall
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


def audit_calls(
    config: Config, calls: Sequence[PlannedCall], by: str, at: datetime
) -> list[AuditEntry]:
    """A ``dispatch`` entry for each responder ``calls`` reach at each level, as the
    dispatch they make (state ``notified``) with the responder's name and the
    channels: by ``by`` (``system`` for a timer, or the officer)."""
    channels: dict[tuple[str, str, int], list[str]] = {}
    for call in calls:
        channels.setdefault((call.alarm_id, call.responder_id, call.level), []).append(
            call.channel_label
        )
    entries = []
    for (alarm_id, responder_id, level), labels in channels.items():
        responder = config.responder_by_id.get(responder_id)
        called = Dispatch(
            id=dispatch_id(alarm_id, responder_id),
            alarm_id=alarm_id,
            responder_id=responder_id,
            level=level,
            state="notified",
            notified_at=at,
        )
        entries.append(
            AuditEntry(
                ts=at,
                username=by,
                action="dispatch",
                alarm_id=alarm_id,
                target=responder_id,
                before=None,
                after=called.shape()
                | {"responder_name": responder.name if responder else None, "channels": labels},
                detail=f"called at level {level}" if level else "sent by an officer",
            )
        )
    return entries


def stand_downs(
    dispatches: Sequence[Dispatch], carried: Sequence[NotificationRow]
) -> list[PlannedCall]:
    """A stand-down for each responder of ``dispatches`` (called off by a resolve or an
    officer) on each channel that carried them a call (``carried``: sent, or under
    way then); none for a responder never sent one. On the channel as the call was,
    at the level of the last call on it."""
    called_off = {dispatch.responder_id for dispatch in dispatches}
    by_channel: dict[tuple[str, int], PlannedCall] = {}
    for row in carried:
        call = row.call
        if call.responder_id not in called_off:
            continue
        known = by_channel.get((call.responder_id, call.channel_index))
        if known is None or call.level > known.level:
            by_channel[(call.responder_id, call.channel_index)] = dataclasses.replace(
                call, purpose="stand_down"
            )
    return list(by_channel.values())
