"""Fence and camera correlation within a zone.

A fence breach and a camera's person detection in the same zone within the
site's correlation window mean a person is really there: the later of the two
becomes ``critical`` and names its partner in ``attrs.correlated``.

Times are the edge's receive times (``edge_ts``), one clock for every device:
cheap fence controllers' clocks drift, and a correlation is about what is
happening now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from riverguard.wire.models import Event

PERSON = "person"


@dataclass(frozen=True, slots=True)
class _Seen:
    event_id: str
    at: datetime


class Correlator:
    """Remembers the last breach and the last person detection per zone of one site."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._breach: dict[str, _Seen] = {}
        self._person: dict[str, _Seen] = {}

    def observe(self, event: Event) -> Event:
        """The event, raised to critical if it completes a pair, and remembered."""
        if is_fence_breach(event):
            mine, partners = self._breach, self._person
        elif is_person_detection(event):
            mine, partners = self._person, self._breach
        else:
            return event
        mine[event.zone] = _Seen(event.id, event.edge_ts)
        partner = partners.get(event.zone)
        if partner is None or abs((event.edge_ts - partner.at).total_seconds()) > self.window_s:
            return event
        return event.model_copy(
            update={
                "severity": "critical",
                "attrs": {**event.attrs, "correlated": [partner.event_id]},
            }
        )


def is_fence_breach(event: Event) -> bool:
    return event.kind == "fence.breach"


def is_person_detection(event: Event) -> bool:
    return event.device_type == "camera" and (event.object or "").lower() == PERSON
