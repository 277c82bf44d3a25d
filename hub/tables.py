"""The state store's schema (SQLAlchemy Core), shared by the store and Alembic.

Portable types only: the same schema runs on SQLite and PostgreSQL.
Times are stored as UTC and come back timezone-aware.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)

if TYPE_CHECKING:
    from sqlalchemy.sql.type_api import _BindProcessorType


def as_utc(value: datetime) -> datetime:
    """A time as the store keeps it: in UTC; a naive one is refused."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the state store")
    if value.utcoffset():  # already UTC on the hot path: skip the conversion
        value = value.astimezone(UTC)
    return value


@functools.lru_cache(maxsize=4096)
def sqlite_time(value: datetime | None) -> str | None:
    """A time as stored in SQLite: UTC, in the text of SQLAlchemy's SQLite DATETIME.

    Cached: a batch's events share their receipt time, and events of one
    millisecond their times. Equal instants in other zones give the same text.
    """
    if value is None:
        return None
    value = as_utc(value)
    # SQLAlchemy's own storage format, %-formatted as it does: 1.6x faster than
    # replace() + isoformat(), three times per event.
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime; SQLite keeps no offset, so it is re-attached.

    The one conversion of a time into what is stored: every statement binds
    through it, the SQLite ingest writer's hand-made INSERT too.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> _BindProcessorType[datetime] | None:
        if dialect.name == "sqlite":
            # In place of SQLAlchemy's own (process_bind_param, then DATETIME's
            # formatting): the same text, cached (see sqlite_time).
            return sqlite_time
        return super().bind_processor(dialect)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value) if value is not None else None

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

events = Table(
    "events",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("site", String(63), nullable=False),
    Column("device", String(63), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("zone", String(63), nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
    Column("edge_ts", UTCDateTime(), nullable=False),
    Column("severity", String(10), nullable=False),
    # The whole event (2.1) as received, for exact replay.
    Column("payload", JSON, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("alarm_id", String(40), nullable=True),
    # Store-first forwarding: false until InfluxDB has acknowledged the point.
    Column("influx_written", Boolean, nullable=False, default=False),
    Index("ix_events_influx_written", "influx_written"),
    Index("ix_events_site_ts", "site", "ts"),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("site", String(63), nullable=False),
    Column("jpeg", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
)

alarms = Table(
    "alarms",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("site", String(63), nullable=False),
    Column("zone", String(63), nullable=False),
    Column("state", String(20), nullable=False),
    # The full alarm object (PROTOCOL 5); the columns above are for queries.
    Column("data", JSON, nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_alarms_state", "state"),
    Index("ix_alarms_site_zone_state", "site", "zone", "state"),
    Index("ix_alarms_updated_at", "updated_at"),
)

announcements = Table(
    "announcements",
    metadata,
    # As long as an Announce id may be (3.1): the edge's own "edge-auto-<zone>-<ms>" too.
    Column("id", String(100), primary_key=True),
    Column("alarm_id", String(40), nullable=True),
    Column("site", String(63), nullable=False),
    Column("requested_by", String(63), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("clip", JSON, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("repeat", Integer, nullable=False),
    Column("volume", Integer, nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("history", JSON, nullable=False),
    # Counts toward its site's routine limit (not life-safety, not scheduled): the limit
    # is read from here, so it holds across a restart and across replicas.
    Column("routine", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_announcements_created_at", "created_at"),
    Index("ix_announcements_site_created_at", "site", "created_at"),
)

announcement_speakers = Table(
    "announcement_speakers",
    metadata,
    Column(
        "announcement_id",
        String(100),
        ForeignKey("announcements.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("speaker", String(63), primary_key=True),
    Column("state", String(20), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("updated_at", UTCDateTime(), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("username", String(63), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    # sha256 of the opaque token: a leaked database does not leak sessions.
    Column("token_hash", String(64), primary_key=True),
    Column(
        "username", String(63), ForeignKey("users.username", ondelete="CASCADE"), nullable=False
    ),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # "access" (bearer, minutes) or "refresh" (renews the access token, once each).
    Column("kind", String(10), nullable=False, server_default="access"),
    # The login the token belongs to: logout and a disabled user end every token of it.
    Column("session_id", String(64), nullable=False),
    Index("ix_tokens_expires_at", "expires_at"),
    Index("ix_tokens_session_id", "session_id"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("site", String(63), nullable=False),
    Column("online", Boolean, nullable=True),
    Column("battery", Float, nullable=True),
    Column("rssi", Integer, nullable=True),
    Column("status_ts", UTCDateTime(), nullable=True),
    Column("last_seen", UTCDateTime(), nullable=True),
)

edges = Table(
    "edges",
    metadata,
    Column("site", String(63), primary_key=True),
    Column("online", Boolean, nullable=False),
    # online | offline | stopped (PROTOCOL 7.10): a clean shutdown is not a lost edge.
    Column("state", String(10), nullable=False, server_default="offline"),
    Column("version", String(100), nullable=False),
    Column("outbox", Integer, nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
)

# Dead letters: messages refused by ingest, kept for inspection.
rejected = Table(
    "rejected",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(300), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Index("ix_rejected_received_at", "received_at"),
)

# Who did what to which alarm, written in the transaction of the change itself
# (before it takes effect for anyone else): logins, acks, resolves, escalations,
# announcements, suggestions.
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UTCDateTime(), nullable=False),
    # A username, or "system" for the hub's own actions (escalation, suggestions).
    Column("username", String(63), nullable=False),
    Column("action", String(40), nullable=False),
    Column("alarm_id", String(40), nullable=True),
    Column("target", String(200), nullable=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_audit_ts", "ts"),
    Index("ix_audit_username_ts", "username", "ts"),
    Index("ix_audit_alarm_id", "alarm_id"),
    Index("ix_audit_action_ts", "action", "ts"),
)

# The notification outbox: one row per message to a responder over one channel,
# queued in the transaction of the escalation that calls them (or of the resolve
# or call-off that stands them down) and sent by hub.notify.outbox. ``key``
# (alarm/level/responder/channel, or alarm/stand_down/responder/channel) makes an
# alarm call each responder once per channel and level, and stand them down once
# per channel, however often it is planned.
notifications = Table(
    "notifications",
    metadata,
    # The delivery id a signed webhook carries: the same on every attempt.
    Column("id", String(40), primary_key=True),
    Column("key", String(250), nullable=False, unique=True),
    Column("alarm_id", String(40), nullable=False),
    Column("level", Integer, nullable=False),
    Column("responder_id", String(63), nullable=False),
    Column("channel_index", Integer, nullable=False),
    Column("channel_label", String(100), nullable=False),
    Column("channel_key", String(100), nullable=False),
    Column("channel_limit", Integer, nullable=True),
    # call, or stand_down: the alarm was resolved or the responder called off.
    Column("purpose", String(12), nullable=False, server_default="call"),
    # queued, sending (an attempt under way), sent, failed (refused for good),
    # given_up (retries exhausted), withdrawn (never sent: the alarm was resolved or
    # the responder called off).
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # When a queued notification is due (its next attempt, or its rate limit's end).
    Column("due_at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_notifications_state_due_at", "state", "due_at"),
    Index("ix_notifications_alarm_id", "alarm_id"),
)

# Responders sent to alarms (hub/dispatch.py): one row per alarm and responder, made
# with the escalation that called them, moved on by their link or by an officer.
dispatches = Table(
    "dispatches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("alarm_id", String(40), nullable=False),
    Column("responder_id", String(63), nullable=False),
    Column("level", Integer, nullable=False),
    Column("state", String(12), nullable=False),
    Column("notified_at", UTCDateTime(), nullable=False),
    Column("accepted_at", UTCDateTime(), nullable=True),
    Column("departed_at", UTCDateTime(), nullable=True),
    Column("arrived_at", UTCDateTime(), nullable=True),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("overdue_at", UTCDateTime(), nullable=True),
    Column("note", Text, nullable=True),
    Index("ix_dispatches_alarm_id", "alarm_id"),
    Index("ix_dispatches_state", "state"),
)

# Responders, rotas and call lists replaced through the admin API
# (hub/responder_layer.py), laid over the configuration file's: ``key`` is
# ``responder/<id>`` or ``rota/<id>`` (the whole entry, ``null`` once removed) or
# ``call/<site>/<level>`` (that level's call list).
responder_changes = Table(
    "responder_changes",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("username", String(63), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Incident timelines read an alarm's events and announcements by alarm id.
Index("ix_events_alarm_id", events.c.alarm_id)
Index("ix_announcements_alarm_id", announcements.c.alarm_id)
