"""Per-device sequence numbers: the duplicate filter, and device restarts and seq wraps.

Devices resend a report when they miss their broker's PUBACK, and the broker
redelivers to a persistent session after a reconnect: the same ``seq`` can
arrive twice, with the same device time and the same content (kind and zone).
That is a duplicate. A report with a seen ``seq`` and time but other content
is not: a forged report sent ahead of the real one (``clear`` where the fence
will say ``breach``) must not make the real one a "duplicate", so it counts
as a new boot like any other seen ``seq`` with a new meaning.

A device that restarts (or whose counter wraps) starts counting again, so a
new report reuses a ``seq`` of an old one; with ids ``{device}:{seq}`` the hub
would take the new event for the old one and drop it. ``Sequences`` detects
a new boot when

- a ``seq`` already seen arrives with another device time or content (a new
  report, not a redelivery), or
- the ``seq`` starts again from (near) zero, below ``RESTART_BELOW``, under the
  highest seen, with a device time later than that highest one's (counting
  from the start again while time moves forwards; a late or redelivered
  report has an earlier time). A backwards jump to a large ``seq`` is not
  taken as a restart: a device that starts at an arbitrary number (or two
  senders sharing a device id, as test tools do) continue with plain ids,
  which cannot collide with the small ones of a first boot,

and from then on derives ids with a boot suffix: ``{device}:{seq}`` in the
first boot the edge knows, ``{device}:{seq}:b{boot}`` after a restart, where
``boot`` is the device time (Unix seconds) of the first report of that boot
(made larger than the previous one if need be). The boot and the highest
``seq`` per device are small; ``state``/``load`` let the agent keep them on
disk so an edge restart does not forget them.

Known limits: a device that re-stamps a resent report with a new time is
taken as restarted (the event is then stored twice); one whose clock never
moves cannot be told to have restarted except through a seen ``seq``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.errors import Rejected

DEFAULT_WINDOW = 1024
# A restarted (or wrapped) counter starts again below this.
RESTART_BELOW = 1000


class RecentSeqs:
    """The last ``window`` sequence numbers accepted from each device, each with its mark:
    what a redelivery of that report has the same of (device time, kind, zone)."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self._seen: dict[str, OrderedDict[int, Hashable]] = {}

    def seen(self, device: str, seq: int) -> bool:
        return seq in self._seen.get(device, ())

    def mark_of(self, device: str, seq: int) -> Hashable:
        """The mark kept with ``seq`` (None if none, or not seen)."""
        seen = self._seen.get(device)
        return seen.get(seq) if seen is not None else None

    def add(self, device: str, seq: int, ts: Hashable = None) -> None:
        seen = self._seen.get(device)
        if seen is None:  # not setdefault: that builds a dict per call (the hot path)
            seen = self._seen[device] = OrderedDict()
        elif seq in seen:
            return
        if len(seen) >= self.window:
            seen.popitem(last=False)
        seen[seq] = ts

    def forget(self, device: str) -> None:
        self._seen.pop(device, None)


@dataclass(slots=True)
class DeviceBoot:
    boot: int = 0  # 0: the first boot this edge knows of the device
    max_seq: int | None = None
    max_ts: datetime | None = None  # device time of ``max_seq``


@dataclass(frozen=True, slots=True)
class Accepted:
    boot: int
    restarted: bool


# What nearly every report gets: shared rather than built per report.
_FIRST_BOOT = Accepted(0, restarted=False)


class Sequences:
    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self.recent = RecentSeqs(window)
        self.boots: dict[str, DeviceBoot] = {}

    def accept(self, device: str, seq: int, ts: datetime, content: Hashable = None) -> Accepted:
        """The boot a new report belongs to; ``Rejected("duplicate")`` for a redelivery.

        ``content``: what a redelivery has the same of besides its time (kind, zone).
        """
        state = self.boots.get(device)
        if state is None:  # not setdefault: that builds a DeviceBoot per call
            state = self.boots[device] = DeviceBoot()
        mark = (ts, content)
        if self.recent.seen(device, seq):
            if self.recent.mark_of(device, seq) == mark:
                raise Rejected("duplicate", f"{device} seq {seq} was already accepted")
            restarted = True
        else:
            restarted = (
                state.max_seq is not None
                and state.max_ts is not None
                and seq < min(state.max_seq, RESTART_BELOW)
                and ts > state.max_ts
            )
        if restarted:
            state.boot = max(int(ts.timestamp()), state.boot + 1)
            state.max_seq = state.max_ts = None
            self.recent.forget(device)
        self.recent.add(device, seq, mark)
        if state.max_seq is None or seq > state.max_seq:
            state.max_seq, state.max_ts = seq, ts
        if not state.boot and not restarted:
            return _FIRST_BOOT
        return Accepted(state.boot, restarted)

    def state(self) -> dict[str, Any]:
        """What to keep on disk across edge restarts (JSON-able)."""
        return {
            device: {
                "boot": boot.boot,
                "max_seq": boot.max_seq,
                "max_ts": boot.max_ts.timestamp() if boot.max_ts else None,
            }
            for device, boot in self.boots.items()
        }

    def load(self, state: dict[str, Any]) -> None:
        for device, value in state.items():
            max_ts = value.get("max_ts")
            self.boots[device] = DeviceBoot(
                boot=int(value.get("boot", 0)),
                max_seq=value.get("max_seq"),
                max_ts=datetime.fromtimestamp(max_ts, tz=UTC) if max_ts is not None else None,
            )
