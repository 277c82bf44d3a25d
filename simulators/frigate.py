"""Frigate NVR messages as Frigate 0.13+ publishes them on ``{prefix}/events`` (PROTOCOL 1.3).

One tracked object is one Frigate event id with a stream of messages:
``new`` (usually before it reaches a zone), ``update`` as it walks into
zones, ``end`` when it is gone. ``FrigateTrack`` builds that stream.
"""

from __future__ import annotations

import random
import string
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from riverguard.testing import frigate_message, frigate_object

FrigateMessageType = Literal["new", "update", "end"]


def frigate_event_id(now: float | None = None) -> str:
    """An id shaped like Frigate's: ``<start time>-<6 random characters>``."""
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=6))
    return f"{now or time.time():.6f}-{suffix}"


@dataclass
class FrigateTrack:
    """One object Frigate tracks on one camera."""

    camera: str
    label: str = "person"
    score: float = 0.84
    start_time: float = field(default_factory=time.time)
    id: str = ""
    zones: list[str] = field(default_factory=list)
    _entered: list[str] = field(default_factory=list)
    _previous: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.id = self.id or frigate_event_id(self.start_time)

    def message(self, kind: FrigateMessageType, zones: list[str] | None = None) -> dict[str, Any]:
        """The next message of the track; ``zones`` are the zones the object is in now."""
        now = time.time()
        if zones is not None:
            self.zones = zones
            self._entered += [z for z in zones if z not in self._entered]
        after = frigate_object(
            self.id,
            self.camera,
            label=self.label,
            score=round(self.score * random.uniform(0.9, 1.0), 4),
            top_score=self.score,
            start_time=self.start_time,
            frame_time=now,
            end_time=now if kind == "end" else None,
            current_zones=self.zones,
            entered_zones=self._entered,
            has_snapshot=True,
        )
        message = frigate_message(kind, after, self._previous)
        self._previous = after
        return message
