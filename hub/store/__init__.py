"""The state store: events, alarms, devices, announcements, users, the audit trail, and
responders' notifications and dispatches.

One repository per kind of data, reached as attributes of the ``Store``
(``store.alarms.get(alarm_id)``, ``store.events.existing_ids(ids)``); each
method is one transaction. An ingest batch, which touches several kinds at
once, is committed by ``store.batches`` through the ingest writer chosen when
the store opens (``hub.store.ingest_writer``), and so are the outbox's claims
and settlements (``store.notifications``). Rows go in and come out as the
frozen types of ``hub.store.rows``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.errors import StoreError
from hub.store.alarms import Alarms
from hub.store.announcements import Announcements
from hub.store.audit import Audit
from hub.store.batches import Batches
from hub.store.db import Database
from hub.store.devices import Devices
from hub.store.dispatches import Dispatches
from hub.store.events import Events
from hub.store.ingest_writer import IngestWriter, open_writer
from hub.store.notifications import Notifications
from hub.store.responder_changes import ResponderChanges
from hub.store.rows import (
    AlarmChanges,
    AnnouncementRow,
    AuditEntry,
    Batch,
    CommittedBatch,
    DeviceRow,
    EdgeRow,
    NotificationRow,
    PlannedCall,
    Rejection,
    RoutineLimit,
    Snapshot,
    TokenOwner,
    TokenRow,
    UserRow,
)
from hub.store.users import Users
from riverguard import sqlite_checkpoints

__all__ = [
    "AlarmChanges",
    "AnnouncementRow",
    "AuditEntry",
    "Batch",
    "CommittedBatch",
    "DeviceRow",
    "EdgeRow",
    "NotificationRow",
    "PlannedCall",
    "Rejection",
    "RoutineLimit",
    "Snapshot",
    "Store",
    "TokenOwner",
    "TokenRow",
    "UserRow",
]


class Store:
    def __init__(self, database: Database, writer: IngestWriter) -> None:
        self._database = database
        self._writer = writer
        self.events = Events(database, writer)
        self.batches = Batches(writer)
        self.alarms = Alarms(database)
        self.devices = Devices(database)
        self.announcements = Announcements(database)
        self.users = Users(database)
        self.audit = Audit(database)
        self.notifications = Notifications(database, writer)
        self.dispatches = Dispatches(database)
        self.responder_changes = ResponderChanges(database)

    @classmethod
    async def open(cls, url: str | URL, connect_args: Mapping[str, Any] | None = None) -> Store:
        """Connect, configure and migrate to the newest schema; ``connect_args`` go to
        the driver (hub/database.py: PostgreSQL's TLS)."""
        database = await Database.open(url, connect_args)
        return cls(database, open_writer(database))

    @property
    def engine(self) -> AsyncEngine:
        return self._database.engine

    @property
    def ingest_writer(self) -> IngestWriter:
        return self._writer

    async def run_checkpoints(self, every_s: float = sqlite_checkpoints.CHECKPOINT_EVERY_S) -> None:
        """Keep the database file up to date with its write-ahead log (SQLite: every
        ``every_s``, never returns; nothing to do on PostgreSQL)."""
        await self._writer.run_checkpoints(every_s)

    async def ping(self) -> bool:
        try:
            async with self._database.read() as conn:
                await conn.execute(text("SELECT 1"))
        except StoreError:
            return False
        return True

    async def close(self) -> None:
        await self.batches.close()
        await self._writer.close()
        await self._database.close()
