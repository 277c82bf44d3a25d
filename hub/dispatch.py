"""Dispatch rules, as pure functions over frozen ``Dispatch`` values.

A dispatch sends one responder to one alarm (the escalation reaching a level
makes one per responder on call there; an officer may make one for anyone).

- The way forward is ``notified -> accepted -> on_the_way -> on_scene ->
  finished``. A responder may skip ahead (pressing *on scene* straight from
  the message): the steps skipped take the same time. Nothing goes back.
- ``declined`` (only before accepting), ``no_answer`` (the accept timer ran
  out), ``cancelled`` (an officer called it off) and ``finished`` end it.
- Timers per site: not accepted within ``dispatch_accept_s`` of the call is
  ``no_answer``; not on scene ``dispatch_arrive_s`` after accepting is
  *overdue* (still on the way, but no longer counted on).
- A level needs the next one called when none of its dispatches is counted
  on any more and no officer called one off (``level_given_up``).

Anything else is a ``DispatchTransitionError``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from hub.errors import DispatchTransitionError
from riverguard.config import Site
from riverguard.wire.times import format_ts

DispatchState = Literal[
    "notified",
    "accepted",
    "on_the_way",
    "on_scene",
    "finished",
    "declined",
    "no_answer",
    "cancelled",
]
# A responder's buttons, and the officer's cancel.
DispatchAction = Literal["accept", "depart", "arrive", "finish", "decline", "cancel"]

FORWARD: tuple[DispatchState, ...] = ("notified", "accepted", "on_the_way", "on_scene", "finished")
ENDED: frozenset[DispatchState] = frozenset({"finished", "declined", "no_answer", "cancelled"})
_REACHES: dict[DispatchAction, DispatchState] = {
    "accept": "accepted",
    "depart": "on_the_way",
    "arrive": "on_scene",
    "finish": "finished",
}
MAX_NOTE = 2000


# The note of a dispatch its alarm's resolve called off (hub.dispatcher).
RESOLVED_NOTE = "alarm resolved"


def dispatch_id(alarm_id: str, responder_id: str) -> str:
    """The id of a responder's dispatch to an alarm, the subject of their link: the
    same for every message of that alarm to that responder, at any level."""
    digest = hashlib.sha256(f"{alarm_id}\n{responder_id}".encode()).digest()
    return "d-" + digest[:15].hex()


@dataclass(frozen=True)
class Dispatch:
    id: str
    alarm_id: str
    responder_id: str
    # The escalation level that called the responder; 0 when an officer did.
    level: int
    state: DispatchState
    notified_at: datetime
    accepted_at: datetime | None = None
    departed_at: datetime | None = None
    arrived_at: datetime | None = None
    ended_at: datetime | None = None
    # When the arrival timer ran out (the responder may still come).
    overdue_at: datetime | None = None
    note: str | None = None

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    def shape(self) -> dict[str, object]:
        """As the console and the responder page get it (docs/protocol.md 7.35)."""
        times = {
            name: format_ts(value) if value is not None else None
            for name, value in (
                ("notified_at", self.notified_at),
                ("accepted_at", self.accepted_at),
                ("departed_at", self.departed_at),
                ("arrived_at", self.arrived_at),
                ("ended_at", self.ended_at),
                ("overdue_at", self.overdue_at),
            )
        }
        return {
            "id": self.id,
            "alarm_id": self.alarm_id,
            "responder": self.responder_id,
            "level": self.level,
            "state": self.state,
            "note": self.note,
            # The hub's own note, for a console to say in its reader's language (7.44).
            "note_code": "alarm_resolved"
            if self.state == "cancelled" and self.note == RESOLVED_NOTE
            else None,
        } | times


def act(
    dispatch: Dispatch, action: DispatchAction, now: datetime, note: str | None = None
) -> Dispatch:
    """``dispatch`` after ``action`` at ``now``."""
    if dispatch.ended:
        raise DispatchTransitionError(f"dispatch {dispatch.id} is {dispatch.state}: it has ended")
    if note is not None and len(note) > MAX_NOTE:
        raise DispatchTransitionError(f"a note is at most {MAX_NOTE} characters")
    if action == "decline":
        if dispatch.state != "notified":
            raise DispatchTransitionError(
                f"dispatch {dispatch.id} was accepted: finish or cancel it"
            )
        return dataclasses.replace(dispatch, state="declined", ended_at=now, note=note)
    if action == "cancel":
        return dataclasses.replace(dispatch, state="cancelled", ended_at=now, note=note)
    target = _REACHES[action]
    here, there = FORWARD.index(dispatch.state), FORWARD.index(target)
    if there <= here:
        raise DispatchTransitionError(f"dispatch {dispatch.id} is already {dispatch.state}")
    passed = FORWARD[here + 1 : there + 1]
    finished = target == "finished"
    return dataclasses.replace(
        dispatch,
        state=target,
        accepted_at=now if "accepted" in passed else dispatch.accepted_at,
        departed_at=now if "on_the_way" in passed else dispatch.departed_at,
        arrived_at=now if "on_scene" in passed else dispatch.arrived_at,
        ended_at=now if finished else None,
        note=note if finished else dispatch.note,
    )


def accept_by(dispatch: Dispatch, site: Site) -> datetime | None:
    if dispatch.state != "notified":
        return None
    return dispatch.notified_at + timedelta(seconds=site.dispatch_accept_s)


def arrive_by(dispatch: Dispatch, site: Site) -> datetime | None:
    if dispatch.state not in ("accepted", "on_the_way") or dispatch.accepted_at is None:
        return None
    return dispatch.accepted_at + timedelta(seconds=site.dispatch_arrive_s)


def next_timer(dispatch: Dispatch, site: Site) -> datetime | None:
    """When this dispatch's next timer runs out, if one is running."""
    if dispatch.overdue_at is not None:
        return None
    return accept_by(dispatch, site) or arrive_by(dispatch, site)


def run_timers(dispatch: Dispatch, site: Site, now: datetime) -> Dispatch:
    """``dispatch`` with its timers applied at ``now``: unaccepted in time is
    ``no_answer``, not arrived in time is overdue."""
    accept = accept_by(dispatch, site)
    if accept is not None and accept <= now:
        return dataclasses.replace(dispatch, state="no_answer", ended_at=accept)
    arrive = arrive_by(dispatch, site)
    if arrive is not None and arrive <= now and dispatch.overdue_at is None:
        return dataclasses.replace(dispatch, overdue_at=arrive)
    return dispatch


def counted_on(dispatch: Dispatch) -> bool:
    """Someone is answering: waiting for an accept, on the way in time, there, done."""
    if dispatch.state in ("declined", "no_answer", "cancelled"):
        return False
    return dispatch.overdue_at is None or dispatch.state in ("on_scene", "finished")


def level_given_up(dispatches: Iterable[Dispatch]) -> bool:
    """True when a level called people and none of them is counted on any more: the
    next level is to be called. Not for a level that called nobody (its escalation
    time climbs it), nor once an officer called one of them off (they took over)."""
    called = list(dispatches)
    if not called or any(d.state == "cancelled" for d in called):
        return False
    return not any(counted_on(d) for d in called)
