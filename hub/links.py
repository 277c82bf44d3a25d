"""The hub's own links, part of the picture consoles see (PROTOCOL 7.13).

Three links: the broker (can the hub hear the field at all), the state store
(can it commit what it hears, and so raise alarms) and InfluxDB (the event
history). A link is down while any of its checks fails: the broker while
ingest is not connected; the store and InfluxDB while their last ping failed,
or their last commit or write failed and none has succeeded since. Per site,
when the hub last heard the site's edge: an edge is *heard* while the broker
link is up and something came from it less than ``silent_after_s`` ago (two of
its status intervals: it refreshes its status every interval), whatever its
last retained status says.

Every change of a link's ``up`` or an edge's ``heard`` is logged, set in the
metrics and pushed to consoles as a ``links`` message; ``data()`` is the same
shape, for ``hello``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog

from hub.broadcaster import Broadcaster
from hub.clock import Clock
from hub.influx import Influx
from hub.metrics import HubMetrics
from hub.store import EdgeRow, Store
from riverguard.config import Config
from riverguard.wire.times import format_ts

log = structlog.get_logger()

LinkName = Literal["broker", "store", "influx"]
LINKS: tuple[LinkName, ...] = ("broker", "store", "influx")


@dataclass(slots=True)
class LinkState:
    up: bool
    # When ``up`` last changed (the hub's start for a link that never changed).
    since: datetime
    # Why it is down: the failing checks' errors; empty while up.
    detail: str = ""


@dataclass(slots=True)
class EdgeLink:
    since: datetime
    last_heard: datetime | None = None
    heard: bool = False


class Links:
    def __init__(
        self,
        config: Config,
        broadcaster: Broadcaster,
        metrics: HubMetrics,
        clock: Clock,
        *,
        silent_after_s: float,
        check_interval_s: float,
    ) -> None:
        self.broadcaster = broadcaster
        self.metrics = metrics
        self.clock = clock
        self.silent_after = timedelta(seconds=silent_after_s)
        self.check_interval_s = check_interval_s
        now = clock.now()
        # Each link's failing checks: check name -> error.
        self._faults: dict[LinkName, dict[str, str]] = {
            "broker": {"connection": "not connected yet"},
            "store": {},
            "influx": {},
        }
        self.states = {
            name: LinkState(not faults, now, "; ".join(faults.values()))
            for name, faults in self._faults.items()
        }
        self.edges = {site.id: EdgeLink(since=now) for site in config.sites}
        # When the hub last committed a new event (its own clock).
        self.last_event_at: datetime | None = None
        self._wake = asyncio.Event()
        for name, state in self.states.items():
            metrics.link_up.labels(name).set(1 if state.up else 0)
        metrics.edges_unheard.set(len(self.edges))

    def load(self, edges: Iterable[EdgeRow]) -> None:
        """Edge statuses stored before a restart: each edge was heard at its status time."""
        now = self.clock.now()
        for row in edges:
            edge = self.edges.get(row.site)
            if edge is not None:
                edge.last_heard = min(row.ts, now)

    # --- what the hub learns -------------------------------------------------------

    def report(self, link: LinkName, check: str, ok: bool, detail: str = "") -> None:
        """The outcome of one of ``link``'s checks (cheap when nothing changes)."""
        faults = self._faults[link]
        if ok:
            if check not in faults:
                return
            del faults[check]
        else:
            if faults.get(check) == detail:
                return
            faults[check] = detail or "failed"
        state = self.states[link]
        up = not faults
        state.detail = "; ".join(faults.values())
        if up == state.up:
            return  # another reason for a link already down: not news
        state.up = up
        state.since = self.clock.now()
        self.metrics.link_up.labels(link).set(1 if up else 0)
        if up:
            log.info("hub link up", link=link)
        else:
            log.warning("hub link down", link=link, detail=state.detail)
        if link == "broker":
            self._check_edges(publish=False)
        self._publish()

    def heard(self, site: str, at: datetime) -> None:
        """Something came from ``site``'s edge, sent at ``at`` (the hub's clock)."""
        edge = self.edges.get(site)
        if edge is None or (edge.last_heard is not None and at <= edge.last_heard):
            return
        edge.last_heard = at
        if not edge.heard:
            self._check_edges()

    def event_committed(self) -> None:
        self.last_event_at = self.clock.now()

    # --- watching ------------------------------------------------------------------

    async def run(self, influx: Influx, store: Store) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._ping(influx, store), name="hub.links.ping")
            tasks.create_task(self._watch_edges(), name="hub.links.edges")

    async def _ping(self, influx: Influx, store: Store) -> None:
        while True:
            self.report("influx", "ping", await influx.ping(), "InfluxDB does not answer")
            self.report("store", "ping", await store.ping(), "the state store does not answer")
            await asyncio.sleep(self.check_interval_s)

    async def _watch_edges(self) -> None:
        """Turns an edge unheard once its silence reaches ``silent_after``."""
        while True:
            self._wake.clear()
            self._check_edges()
            due = [
                edge.last_heard + self.silent_after
                for edge in self.edges.values()
                if edge.heard and edge.last_heard is not None
            ]
            await self.clock.wait(min(due) if due else None, self._wake)

    def _check_edges(self, publish: bool = True) -> None:
        now = self.clock.now()
        broker_up = self.states["broker"].up
        changed = False
        for site, edge in self.edges.items():
            heard = (
                broker_up
                and edge.last_heard is not None
                and now - edge.last_heard < self.silent_after
            )
            if heard == edge.heard:
                continue
            edge.heard = heard
            edge.since = now
            changed = True
            if heard:
                log.info("edge heard", site=site)
            elif broker_up:
                last = format_ts(edge.last_heard) if edge.last_heard else None
                log.warning("edge not heard", site=site, last_heard=last)
        if not changed:
            return
        self.metrics.edges_unheard.set(sum(1 for e in self.edges.values() if not e.heard))
        self._wake.set()  # a newly heard edge has a deadline of its own
        if publish:
            self._publish()

    # --- what consoles see ---------------------------------------------------------

    def data(self) -> dict[str, Any]:
        return {
            **{
                name: {"up": state.up, "since": format_ts(state.since), "detail": state.detail}
                for name, state in self.states.items()
            },
            "last_event_at": format_ts(self.last_event_at) if self.last_event_at else None,
            "edge_silent_after_s": self.silent_after.total_seconds(),
            "edges": [
                {
                    "site": site,
                    "heard": edge.heard,
                    "since": format_ts(edge.since),
                    "last_heard": format_ts(edge.last_heard) if edge.last_heard else None,
                }
                for site, edge in self.edges.items()
            ],
        }

    def _publish(self) -> None:
        self.broadcaster.publish("links", self.data())
