"""The interface of a vendor adapter ("source"); see docs/adapters.md.

A source turns one vendor's raw MQTT messages into ``Adapted`` events
(PROTOCOL 2.1). It may keep state (Frigate tracks its events across
new/update/end), but does no I/O: the agent subscribes to its topic filters,
hands it every matching message with the edge's clock reading, and takes
care of everything after (duplicates, clock skew, correlation, the outbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

from edge.adapters import Adapted, LateSnapshot


@dataclass(frozen=True, slots=True)
class Raw:
    """One MQTT message as the broker delivered it."""

    topic: str
    payload: bytes
    # A retained message is the broker's memory, not news: it may be hours old.
    retained: bool = False


class Source(Protocol):
    # The ``source`` value of the configured devices this adapter serves.
    source: ClassVar[str]

    def subscriptions(self) -> list[str]:
        """Topic filters the edge subscribes to (QoS 1) for this source."""
        ...

    def matches(self, topic: str) -> bool:
        """Whether a message on ``topic`` is for this source."""
        ...

    def handle(self, raw: Raw, edge_ts: datetime) -> list[Adapted | LateSnapshot]:
        """Events made from one message: none, one or several.

        A ``LateSnapshot`` is a picture of an event the source made earlier
        without one; the edge publishes it on the event's snapshot topic.

        Raises ``Rejected`` for bad input (logged as a warning and counted) and
        ``Skipped`` for good input that makes no event (counted, logged at debug).
        """
        ...
