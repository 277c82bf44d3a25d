"""The responders sent to the active alarms, in memory: what a console's
``hello`` carries so that every alarm card shows who was called and how far
they have got without a request per card (docs/protocol.md 7.38).

Fed by the dispatcher with each dispatch it makes, moves on or first sees,
as the picture is fed with alarms; loaded from the state store once at
start-up. An alarm's dispatches are dropped once it is no longer active.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class DispatchBoard:
    def __init__(self) -> None:
        # alarm id -> dispatch id -> the dispatch as consoles get it, in the order
        # the responders were called.
        self._by_alarm: dict[str, dict[str, dict[str, Any]]] = {}

    def knows(self, dispatch_id: str, alarm_id: str) -> bool:
        return dispatch_id in self._by_alarm.get(alarm_id, {})

    def put(self, shaped: dict[str, Any]) -> None:
        """Keep ``shaped`` (a dispatch as ``Dispatcher.shape`` makes it)."""
        self._by_alarm.setdefault(shaped["alarm_id"], {})[shaped["id"]] = shaped

    def all(self) -> list[dict[str, Any]]:
        """Every dispatch kept, of the alarms active when last asked."""
        return [shaped for kept in self._by_alarm.values() for shaped in kept.values()]

    def of_alarms(self, active: Iterable[str]) -> list[dict[str, Any]]:
        """The dispatches of the ``active`` alarms; those of any other alarm are
        dropped (it was resolved: its card is gone and nobody will ask again)."""
        wanted = set(active)
        for gone in self._by_alarm.keys() - wanted:
            del self._by_alarm[gone]
        return [
            shaped
            for alarm_id in sorted(wanted & self._by_alarm.keys())
            for shaped in self._by_alarm[alarm_id].values()
        ]
