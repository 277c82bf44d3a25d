"""Local deterrence: the edge plays the site's default warning by itself.

On a fence breach or a critical event in one of the site's
``auto_warning_zones`` (every zone when empty), depending on the site's
``auto_warning``:

- ``never``: nothing;
- ``always``: the warning plays at once;
- ``when_hub_unreachable``: it plays if the hub has not committed the event
  within ``auto_warning_grace_s`` (or at once when the edge already knows the
  hub is not committing), so an officer who is there answers first;

never during the site's ``quiet_hours`` (local time in its ``timezone``) and
at most once per zone per ``auto_warning_cooldown_s``. It plays on every
speaker of the site covering the zone, as an announcement with id
``edge-auto-…``, priority ``AUTO_PRIORITY`` (below an officer's default, so
an officer's announcement preempts it), and acknowledged like any other
(PROTOCOL 2.4) with ``received`` carrying the detail ``edge-auto``: that is
how the hub learns the edge warned by itself. Each decision is counted in
``riverguard_edge_auto_warnings_total{outcome}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from edge.metrics import EdgeMetrics
from edge.speakers import Acks, SpeakerDriver
from riverguard.config import Device, Site
from riverguard.mqtt_client import Client
from riverguard.policy import quiet_hours_cover
from riverguard.wire.models import Announce, AudioRef, Event

log = structlog.get_logger()

REQUESTED_BY = "edge-auto"
AUTO_PRIORITY = 3
AUTO_REPEAT = 2
AUTO_VOLUME = 90
AUTO_EXPIRES_S = 60.0


@dataclass(frozen=True, slots=True)
class _Trigger:
    event_id: str
    zone: str
    at: float  # monotonic


class Deterrence:
    def __init__(
        self,
        site: Site,
        devices: Mapping[str, Device],
        *,
        speakers: Mapping[str, SpeakerDriver],
        acks: Acks,
        metrics: EdgeMetrics,
        clock: Callable[[], datetime],
        committed: Callable[[str], bool],
        hub_silent: Callable[[], bool],
    ) -> None:
        self.site = site
        self.devices = devices
        self.speakers = speakers
        self.acks = acks
        self.metrics = metrics
        self.clock = clock
        self.committed = committed
        self.hub_silent = hub_silent
        # Set once the warning is rendered; until then nothing can be played.
        self.warning: AudioRef | None = None
        self._triggers: asyncio.Queue[_Trigger] = asyncio.Queue()
        self._last_played: dict[str, float] = {}
        try:
            self._zone = ZoneInfo(site.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown site timezone; quiet hours in UTC", timezone=site.timezone)
            self._zone = ZoneInfo("UTC")

    @property
    def enabled(self) -> bool:
        return self.site.auto_warning != "never"

    def observe(self, event: Event) -> None:
        """Note an accepted event; a trigger is handled by ``run``."""
        if not self.enabled:
            return
        if event.kind != "fence.breach" and event.severity != "critical":
            return
        zones = self.site.auto_warning_zones
        if zones and event.zone not in zones:
            return
        self._triggers.put_nowait(_Trigger(event.id, event.zone, time.monotonic()))

    async def run(self, client: Client) -> None:
        while True:
            trigger = await self._triggers.get()
            outcome = await self._decide(trigger)
            self.metrics.auto_warnings.labels(outcome).inc()
            log.info("auto warning", outcome=outcome, event_id=trigger.event_id, zone=trigger.zone)
            if outcome == "played":
                await self._play(client, trigger)

    async def _decide(self, trigger: _Trigger) -> str:
        if self.warning is None:
            return "no_audio"
        if quiet_hours_cover(self.site.quiet_hours, self.clock().astimezone(self._zone).time()):
            return "quiet_hours"
        last = self._last_played.get(trigger.zone)
        if last is not None and time.monotonic() - last < self.site.auto_warning_cooldown_s:
            return "cooldown"
        if self.site.auto_warning == "when_hub_unreachable" and not self.hub_silent():
            deadline = trigger.at + self.site.auto_warning_grace_s
            # Triggers come in time order: waiting for this one's deadline delays no other.
            while time.monotonic() < deadline:
                if self.committed(trigger.event_id):
                    return "hub_answered"
                await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            if self.committed(trigger.event_id):
                return "hub_answered"
        return "played"

    async def _play(self, client: Client, trigger: _Trigger) -> None:
        assert self.warning is not None  # checked by _decide
        self._last_played[trigger.zone] = time.monotonic()
        now = self.clock()
        for speaker_id, speaker in self.speakers.items():
            zones = self.devices[speaker_id].zones
            if zones and trigger.zone not in zones:
                continue
            announce = Announce(
                id=f"{REQUESTED_BY}-{trigger.zone}-{int(now.timestamp() * 1000)}"[:100],
                audio=self.warning,
                repeat=AUTO_REPEAT,
                volume=AUTO_VOLUME,
                priority=AUTO_PRIORITY,
                requested_by=REQUESTED_BY,
                expires_at=now + timedelta(seconds=AUTO_EXPIRES_S),
            )
            # To the hub once it has the event that raised it, so that it joins the alarm.
            await self.acks.send(
                speaker_id, announce.id, "received", REQUESTED_BY, after_event=trigger.event_id
            )
            await speaker.announce(client, announce)
