"""One site's device reports -> new, clean, correlated events.

In order: the adapter (generic or a vendor source); the zone check (a device
reports only for the zones it covers, else ``wrong_zone``: a fence's login
must not raise or clear another zone's alarm); the duplicate filter and
device restarts (``edge.dedup.Sequences``: ids get a boot suffix after a
restart); the id's key tag (``edge.event_ids``); clock skew (a device time
more than ``clock_ahead_max_s`` ahead of the edge clock, or
``clock_behind_max_s`` behind it, or outside the wire's range (2000-2100), is
replaced by the edge time and kept in ``attrs.device_ts``; reports buffered by
a device during an outage are legitimately late, hence the looser bound
behind); the debounce (a report of the same device, zone and kind within the
site's ``debounce_s`` of the last accepted one is dropped as ``debounced``);
correlation.

The clock bounds default to none (unit tests of other steps use fixed edge
times); the agent passes its settings'.

No I/O: the agent hands it a topic, the payload and the edge's clock reading,
and gets an ``Adapted`` event back or ``Rejected``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import datetime

from edge.adapters import Adapted, LateSnapshot, adapt_report, adapt_status, event_id
from edge.correlation import Correlator
from edge.dedup import DEFAULT_WINDOW, Sequences
from edge.errors import Rejected
from edge.event_ids import EventIds
from edge.sources import Raw, Source
from riverguard.config import Config, Device, Site
from riverguard.wire.models import DeviceStatus, Event
from riverguard.wire.times import format_ts
from riverguard.wire.topics import FieldTopic


class Normalizer:
    """The stateful part of ingest for one site."""

    def __init__(
        self,
        site: Site,
        devices: Mapping[str, Device],
        dedup_window: int = DEFAULT_WINDOW,
        *,
        clock_ahead_max_s: float = math.inf,
        clock_behind_max_s: float = math.inf,
    ) -> None:
        self.site = site
        self.devices = dict(devices)
        self.sequences = Sequences(dedup_window)
        # Plain derived ids until the agent loads its key (``edge.event_ids``).
        self.ids = EventIds()
        self.clock_ahead_max_s = clock_ahead_max_s
        self.clock_behind_max_s = clock_behind_max_s
        self._correlator = Correlator(site.correlation_window_s)
        # (device, zone, kind) -> edge time of the last accepted event.
        self._last: dict[tuple[str, str, str], datetime] = {}

    @classmethod
    def for_site(cls, config: Config, site_id: str) -> Normalizer:
        site = config.site(site_id)
        return cls(site, {device.id: device for device in config.devices_of(site.id)})

    def report(self, topic: FieldTopic, payload: bytes, edge_ts: datetime) -> Adapted:
        """A generic fence's or camera's report (PROTOCOL 1.1, 1.2)."""
        return self._accept(adapt_report(topic, payload, self.site, self.devices, edge_ts))

    def vendor(self, source: Source, raw: Raw, edge_ts: datetime) -> list[Adapted | LateSnapshot]:
        """What a vendor adapter makes of one of its messages (late snapshots pass as they are)."""
        return [
            self._accept(made)
            if isinstance(made, Adapted)
            else dataclasses.replace(made, event_id=self.ids.mint(made.event_id))
            for made in source.handle(raw, edge_ts)
        ]

    def _accept(self, adapted: Adapted) -> Adapted:
        event = adapted.event
        device = self.devices.get(event.device)
        if device is None:
            raise Rejected("unknown_device", f"{event.device} is not a device of {self.site.id}")
        if not device.covers(event.zone):
            # Before the duplicate filter: a refused report takes no seq of the device's.
            raise Rejected("wrong_zone", f"{event.device} does not cover zone {event.zone}")
        restarted = False
        derived = event.id
        if adapted.seq is not None:
            content = (event.kind, event.zone)
            # The device's own time, also where the event has the edge's: a redelivery has it.
            device_ts = adapted.device_ts or event.ts
            accepted = self.sequences.accept(event.device, adapted.seq, device_ts, content)
            restarted = accepted.restarted
            if accepted.boot:
                derived = event_id(event.device, adapted.seq, accepted.boot)
        minted = self.ids.mint(derived)
        if minted != event.id:
            event = event.model_copy(update={"id": minted})
        event, skewed = self._unskew(event, adapted.skew_s, adapted.device_ts)
        self._debounce(event)
        event = self._correlator.observe(event)
        if event is adapted.event:
            return adapted
        return dataclasses.replace(adapted, event=event, restarted=restarted, clock_replaced=skewed)

    def _unskew(
        self, event: Event, skew_s: float, out_of_range: datetime | None
    ) -> tuple[Event, bool]:
        """The event with the edge's time if the device's is out of bounds.

        ``out_of_range``: a device time the wire cannot carry, already replaced by
        the adapter; kept in ``attrs.device_ts`` all the same.
        """
        if out_of_range is None and -self.clock_behind_max_s <= skew_s <= self.clock_ahead_max_s:
            return event, False
        device_ts = event.ts if out_of_range is None else out_of_range
        attrs = {**event.attrs, "device_ts": format_ts(device_ts)}
        return event.model_copy(update={"ts": event.edge_ts, "attrs": attrs}), True

    def _debounce(self, event: Event) -> None:
        window = self.site.debounce_s
        if window <= 0:
            return
        key = (event.device, event.zone, event.kind)
        last = self._last.get(key)
        if last is not None and 0 <= (event.edge_ts - last).total_seconds() < window:
            raise Rejected("debounced", f"{event.kind} of {event.device} in {event.zone} again")
        self._last[key] = event.edge_ts

    def status(self, topic: FieldTopic, payload: bytes, edge_ts: datetime) -> DeviceStatus:
        return adapt_status(topic, payload, self.site, self.devices, edge_ts)
