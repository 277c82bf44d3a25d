"""One site's device reports -> new, correlated events: adapters, duplicate filter, correlation.

No I/O: the agent hands it a topic, the payload and the edge's clock reading,
and gets an ``Adapted`` event back or ``Rejected``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from edge.adapters import Adapted, adapt_report, adapt_status
from edge.correlation import Correlator
from edge.dedup import DEFAULT_WINDOW, RecentSeqs
from edge.errors import Rejected
from edge.sources import Raw, Source
from riverguard.config import Config, Device, Site
from riverguard.wire.models import DeviceStatus
from riverguard.wire.topics import FieldTopic


class Normalizer:
    """The stateful part of ingest for one site."""

    def __init__(
        self, site: Site, devices: Mapping[str, Device], dedup_window: int = DEFAULT_WINDOW
    ) -> None:
        self.site = site
        self.devices = dict(devices)
        self._seqs = RecentSeqs(dedup_window)
        self._correlator = Correlator(site.correlation_window_s)

    @classmethod
    def for_site(cls, config: Config, site_id: str) -> Normalizer:
        site = config.site(site_id)
        return cls(site, {device.id: device for device in config.devices_of(site.id)})

    def report(self, topic: FieldTopic, payload: bytes, edge_ts: datetime) -> Adapted:
        """A generic fence's or camera's report (PROTOCOL 1.1, 1.2)."""
        return self._accept(adapt_report(topic, payload, self.site, self.devices, edge_ts))

    def vendor(self, source: Source, raw: Raw, edge_ts: datetime) -> list[Adapted]:
        """What a vendor adapter makes of one of its messages."""
        return [self._accept(adapted) for adapted in source.handle(raw, edge_ts)]

    def _accept(self, adapted: Adapted) -> Adapted:
        device = adapted.event.device
        if adapted.seq is not None:
            if self._seqs.seen(device, adapted.seq):
                raise Rejected("duplicate", f"{adapted.event.id} was already accepted")
            self._seqs.add(device, adapted.seq)
        event = self._correlator.observe(adapted.event)
        if event is adapted.event:
            return adapted
        return dataclasses.replace(adapted, event=event)

    def status(self, topic: FieldTopic, payload: bytes, edge_ts: datetime) -> DeviceStatus:
        return adapt_status(topic, payload, self.site, self.devices, edge_ts)
