"""Factories and waiting helpers shared by the simulators and the tests.

Kept in the package (as ``structlog.testing`` is) so a simulator and a test
build device payloads the same way.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar, overload

from riverguard.wire.times import format_ts, to_unix_ms, utcnow

# A valid 1x1 JPEG, small enough to inline; cameras attach something like it.
TINY_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////"
    "////////////////////////////////////////////////2wBDAf//////////////////"
    "////////////////////////////////////////////////////////////////////wAAR"
    "CAABAAEDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAP/xAAUEAEAAAAAAAAAAAAAAAAA"
    "AAAA/8QAFAEBAAAAAAAAAAAAAAAAAAAAAP/EABQRAQAAAAAAAAAAAAAAAAAAAAD/2gAMAwEAAhED"
    "EQA/AKAP/9k="
)


def fence_report(
    seq: int, zone: str, state: str = "breach", ts: datetime | None = None
) -> dict[str, Any]:
    """A PROTOCOL 1.1 fence payload (``ts`` as Unix ms, as controllers send it)."""
    return {"seq": seq, "ts": to_unix_ms(ts or utcnow()), "zone": zone, "state": state}


def camera_report(
    seq: int,
    zone: str,
    *,
    rule: str = "water_entry",
    confidence: float = 0.91,
    snapshot: bytes | None = None,
    ts: datetime | None = None,
) -> dict[str, Any]:
    """A PROTOCOL 1.2 camera payload (``ts`` as RFC 3339, as cameras send it)."""
    payload: dict[str, Any] = {
        "seq": seq,
        "ts": format_ts(ts or utcnow()),
        "zone": zone,
        "rule": rule,
        "object": "person",
        "confidence": confidence,
    }
    if snapshot is not None:
        payload["snapshot"] = base64.b64encode(snapshot).decode()
    return payload


def frigate_object(
    event_id: str,
    camera: str,
    *,
    label: str = "person",
    score: float = 0.8125,
    top_score: float = 0.83984375,
    start_time: float = 1722115265.123456,
    frame_time: float = 1722115267.45,
    end_time: float | None = None,
    current_zones: list[str] | None = None,
    entered_zones: list[str] | None = None,
    has_snapshot: bool = False,
    false_positive: bool = False,
) -> dict[str, Any]:
    """One tracked object as Frigate 0.13+ describes it in ``before`` and ``after``
    (PROTOCOL 1.3), every field Frigate sends, not only those the edge reads."""
    current = list(current_zones or [])
    return {
        "id": event_id,
        "camera": camera,
        "frame_time": frame_time,
        "snapshot": None,
        "label": label,
        "sub_label": None,
        "top_score": top_score,
        "false_positive": false_positive,
        "start_time": start_time,
        "end_time": end_time,
        "score": score,
        "box": [412, 188, 468, 336],
        "area": 8288,
        "ratio": 0.378378,
        "region": [280, 100, 600, 420],
        "stationary": False,
        "motionless_count": 0,
        "position_changes": 3,
        "current_zones": current,
        "entered_zones": list(entered_zones if entered_zones is not None else current),
        "has_clip": True,
        "has_snapshot": has_snapshot,
        "attributes": {},
        "current_attributes": [],
    }


def frigate_message(
    kind: str, after: dict[str, Any], before: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A message on ``{prefix}/events``: ``new``, ``update`` or ``end`` of one object."""
    return {"type": kind, "before": before or after, "after": after}


T = TypeVar("T")


@overload
async def wait_for(
    condition: Callable[[], Awaitable[T]],
    timeout: float = ...,  # noqa: ASYNC109
    interval: float = ...,
    what: str = ...,
) -> T: ...


@overload
async def wait_for(
    condition: Callable[[], T],
    timeout: float = ...,  # noqa: ASYNC109
    interval: float = ...,
    what: str = ...,
) -> T: ...


async def wait_for(
    condition: Callable[[], Any],
    timeout: float = 10.0,  # noqa: ASYNC109  # a polling deadline, not a cancel scope
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll ``condition`` (plain or async) until it gives something true, and return
    that; or fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
