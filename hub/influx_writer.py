"""Store-first forwarding of committed events to InfluxDB.

Ingest commits events to the state store with ``influx_written`` false; the
writer sends them in batches of line protocol and marks them written only
after InfluxDB answered 204. While InfluxDB is down the rows wait and the
writer retries with backoff, so nothing is lost.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence

import structlog

from hub.errors import InfluxError, RejectedPoints, StoreError
from hub.influx import Influx, event_line
from hub.metrics import HubMetrics
from hub.store import Store
from riverguard.mqtt import Backoff
from riverguard.wire.models import Event

log = structlog.get_logger()

# Lines built between two yields to the event loop (~15 us each: a few ms per slice).
LINES_PER_SLICE = 250


class InfluxWriter:
    """Forwards committed events to InfluxDB, store-first, in batches.

    Ingest hands over the events it has just committed, so in the steady
    state they are written from memory, not read back from the store and
    parsed again. The store stays the record: after a start with a backlog,
    or when InfluxDB is away long enough for the hand-over to overflow, the
    writer reads what is unwritten from the store until it has caught up.
    """

    def __init__(
        self,
        store: Store,
        influx: Influx,
        metrics: HubMetrics,
        *,
        batch_size: int = 5000,
        retry_cap_s: float = 5.0,
        linger_s: float = 0.2,
        memory_limit: int = 10_000,  # ~10-20 MB of events; past it, the store has them
        report: Callable[[bool, str], None] | None = None,
    ) -> None:
        self.store = store
        self.influx = influx
        self.metrics = metrics
        self.batch_size = batch_size
        self.backoff = Backoff(initial=0.1, cap=retry_cap_s)
        self.linger_s = linger_s
        self.memory_limit = memory_limit
        self.backlog = 0
        self._wake = asyncio.Event()
        # Committed events not yet written, in commit order, while ``_from_store`` is off.
        self._handed: deque[Event] = deque()
        self._from_store = True  # until a pass over the store finds it caught up
        # Whether ``_handed`` holds every event committed since the last store read began.
        self._handed_whole = False
        # Points that are not events (site_risk): kept in memory until written. Bounded:
        # they are a chart's history, not a record, and the newest matter most.
        self._extra: deque[str] = deque(maxlen=10_000)
        # Told each write's outcome (ok, error): the consoles' InfluxDB link state.
        self.report: Callable[[bool, str], None] = report or (lambda ok, detail: None)

    def add_points(self, lines: list[str]) -> None:
        self._extra.extend(lines)
        self._wake.set()

    def notify(self, committed: Sequence[Event]) -> None:
        """Ingest committed these new events: write them soon."""
        self.backlog += len(committed)
        self.metrics.influx_backlog.set(self.backlog)
        if len(self._handed) + len(committed) > self.memory_limit:
            # Too far behind to hold in memory: the store has them all.
            self._handed.clear()
            self._handed_whole = False
            self._from_store = True
        else:
            self._handed.extend(committed)
        self._wake.set()

    async def run(self) -> None:
        self.backlog = await self.store.events.count_influx_pending()
        self.metrics.influx_backlog.set(self.backlog)
        self._wake.set()
        while True:
            await self._wake.wait()
            # Let a few ingest batches gather: fewer, larger writes to InfluxDB, and
            # fewer store transactions competing with ingest for SQLite's write lock.
            await asyncio.sleep(self.linger_s)
            self._wake.clear()
            await self.drain()

    async def _pending(self) -> list[Event]:
        if not self._from_store:
            return [self._handed[i] for i in range(min(self.batch_size, len(self._handed)))]
        # Whatever commits after this read starts is handed over: once the store is
        # caught up, the hand-over alone has everything still to write.
        self._handed.clear()
        self._handed_whole = True
        while True:
            try:
                return await self.store.events.influx_pending(self.batch_size)
            except StoreError as exc:
                delay = self.backoff.next_delay()
                log.warning("cannot read the influx backlog", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)

    async def drain(self) -> None:
        """Write pending events until caught up, retrying until InfluxDB takes them."""
        while True:
            from_store = self._from_store
            events = await self._pending()
            extra = list(self._extra)
            if not events and not extra:
                self._caught_up(from_store)
                return
            if not await self._write(events, extra):
                continue  # InfluxDB away: the same events again, after a backoff
            for _ in extra:
                if self._extra:
                    self._extra.popleft()
            if not from_store and not self._from_store:
                for _ in events:
                    self._handed.popleft()
            elif self._handed:
                # Read from the store, but some were committed (and handed over) while
                # the read ran: written now, they must not count or go out again.
                written = {event.id for event in events}
                self._handed = deque(event for event in self._handed if event.id not in written)
            if not events:
                continue
            try:
                await self.store.events.mark_influx_written([event.id for event in events])
            except StoreError as exc:
                # Written but not marked: written again after a restart, onto themselves.
                log.warning("cannot mark events written", error=str(exc))
            self.metrics.influx_written.inc(len(events))
            self.backlog = max(0, self.backlog - len(events))
            self.metrics.influx_backlog.set(self.backlog)
            if len(events) < self.batch_size:
                self._caught_up(from_store)
                return

    def _caught_up(self, from_store: bool) -> None:
        """What ingest commits from now waits for the next linger."""
        if from_store and self._from_store and self._handed_whole:
            # From memory from now on: the hand-over holds what the store reads missed.
            self._from_store = False
        self.backlog = len(self._handed) if not self._from_store else 0
        self.metrics.influx_backlog.set(self.backlog)

    async def _write(self, events: list[Event], extra: list[str]) -> bool:
        """One write; False if it is worth retrying (InfluxDB unreachable or failing)."""
        lines = []
        for index, event in enumerate(events):
            if index and not index % LINES_PER_SLICE:
                # A backlog of thousands: let ingest and the consoles in between slices.
                await asyncio.sleep(0)
            try:
                lines.append(event_line(event))
            except ValueError as exc:
                log.warning("event cannot be written to influx", event_id=event.id, error=str(exc))
                self.metrics.influx_errors.inc()
        try:
            with self.metrics.influx_write_latency.time():
                await self.influx.write(lines + extra)
        except RejectedPoints as exc:
            log.warning(
                "influx refused points; not retrying them", error=str(exc), batch=len(lines)
            )
            self.metrics.influx_errors.inc()
        except InfluxError as exc:
            self.metrics.influx_errors.inc()
            self.report(False, str(exc)[:300])
            delay = self.backoff.next_delay()
            log.warning(
                "influx write failed", error=str(exc), pending=len(events), retry_in=round(delay, 2)
            )
            await asyncio.sleep(delay)
            return False
        self.report(True, "")
        self.backoff.reset()
        return True
