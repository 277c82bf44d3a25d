"""Devices' and edges' last known statuses, loaded into the picture at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from hub import tables
from hub.store.db import Database, upsert_many
from hub.store.rows import DeviceRow, EdgeRow


class Devices:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def load(self) -> list[DeviceRow]:
        async with self._database.read() as conn:
            result = await conn.execute(select(tables.devices))
            return [
                DeviceRow(r.id, r.site, r.online, r.battery, r.rssi, r.status_ts, r.last_seen)
                for r in result
            ]

    async def load_edges(self) -> list[EdgeRow]:
        async with self._database.read() as conn:
            result = await conn.execute(select(tables.edges))
            return [
                EdgeRow(r.site, r.online, r.version, r.outbox, r.ts, state=r.state) for r in result
            ]

    async def save_edge(self, row: EdgeRow) -> None:
        values = {
            "online": row.online,
            "state": row.state,
            "version": row.version,
            "outbox": row.outbox,
            "ts": row.ts,
        }
        async with self._database.write() as conn:
            result = await conn.execute(
                update(tables.edges).where(tables.edges.c.site == row.site).values(**values)
            )
            if result.rowcount == 0:
                await conn.execute(insert(tables.edges).values(site=row.site, **values))


def upsert_devices(
    conn: Connection, rows: list[DeviceRow], stored: AbstractSet[str] = frozenset()
) -> set[Any]:
    """Whole device statuses; the keys stored once the transaction commits."""
    return upsert_many(conn, tables.devices, [_device_row(d) for d in rows], stored=stored)


def touch_devices(
    conn: Connection,
    last_seen: Mapping[str, tuple[str, datetime]],
    stored: AbstractSet[str] = frozenset(),
) -> set[Any]:
    """When each device was last heard of; a known device keeps its status columns."""
    rows = [{"id": d, "site": site, "last_seen": seen} for d, (site, seen) in last_seen.items()]
    return upsert_many(conn, tables.devices, rows, update_columns=("last_seen",), stored=stored)


def _device_row(row: DeviceRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "site": row.site,
        "online": row.online,
        "battery": row.battery,
        "rssi": row.rssi,
        "status_ts": row.status_ts,
        "last_seen": row.last_seen,
    }
