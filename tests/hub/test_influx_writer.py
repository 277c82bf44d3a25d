"""The InfluxDB writer on a real store and a real influxd: events handed over by
ingest are written from memory; a hand-over that overflows falls back to the
store, and nothing is lost or left unmarked either way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub.influx import Influx
from hub.influx_writer import InfluxWriter
from hub.metrics import HubMetrics
from hub.store import Batch, Store
from riverguard.services import Influxd
from riverguard.wire.models import Event
from tests.hub.conftest import event_payload, unique_seq

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    try:
        yield opened
    finally:
        await opened.close()


async def _commit(store: Store, count: int) -> list[Event]:
    events = [Event.model_validate(event_payload(unique_seq())) for _ in range(count)]
    batch = Batch(events=events)
    batch.received_at = {e.id: e.edge_ts for e in events}
    committed = await store.batches.commit(batch)
    return committed.new


async def _points(influxd: Influxd, database: str) -> int:
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{influxd.url}/query",
            params={"db": database, "q": "SELECT count(id) FROM events"},
        )
    series = response.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


async def test_handed_over_events_are_written_and_an_overflow_reads_the_store(
    store: Store, influxd: Influxd, influx_database: str
) -> None:
    metrics = HubMetrics()
    async with httpx.AsyncClient() as http:
        writer = InfluxWriter(
            store, Influx(http, influxd.url, influx_database), metrics, memory_limit=10
        )
        # A start with a backlog: read from the store.
        await _commit(store, 7)
        await writer.drain()
        assert await _points(influxd, influx_database) == 7
        assert not writer._from_store

        # The steady state: from memory, marked written in the store all the same.
        writer.notify(await _commit(store, 6))
        assert len(writer._handed) == 6
        await writer.drain()
        assert await _points(influxd, influx_database) == 13
        assert not writer._handed
        assert await store.events.count_influx_pending() == 0

        # More than the hand-over holds (InfluxDB away, say): back to the store.
        for _ in range(3):
            writer.notify(await _commit(store, 5))
        assert writer._from_store
        await writer.drain()
        assert await _points(influxd, influx_database) == 28
        assert await store.events.count_influx_pending() == 0
        assert not writer._from_store
        assert writer.backlog == 0


async def test_events_committed_while_the_store_is_read_are_written_once(
    store: Store, influxd: Influxd, influx_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics = HubMetrics()
    async with httpx.AsyncClient() as http:
        writer = InfluxWriter(store, Influx(http, influxd.url, influx_database), metrics)
        await _commit(store, 3)
        read_store = store.events.influx_pending

        async def read_while_ingest_commits(limit: int) -> list[Event]:
            # Ingest commits and hands over just as the writer's read begins: the read
            # sees these events too.
            writer.notify(await _commit(store, 2))
            monkeypatch.setattr(store.events, "influx_pending", read_store)
            return await read_store(limit)

        monkeypatch.setattr(store.events, "influx_pending", read_while_ingest_commits)
        await writer.drain()

        assert (5, 5.0, 0, 0.0, 0) == (
            await _points(influxd, influx_database),
            metrics.influx_written._value.get(),
            writer.backlog,
            metrics.influx_backlog._value.get(),
            len(writer._handed),
        )
