"""The hub's live picture: active alarms, device and edge statuses, clips.

Kept in memory (loaded from the state store at start-up, updated after each
commit) so a console's ``hello`` and the REST lists never wait on the store.
Also renders the console-facing shapes (``GET /api/sites`` items and so on).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict

from hub import alarms as rules
from hub.audio import Clip
from hub.risk import Assessment, assess_site
from hub.store import DeviceRow, EdgeRow
from riverguard.config import Config, Device
from riverguard.wire.models import Alarm, RiskColour
from riverguard.wire.times import format_ts, utcnow


class UnguardedReason(TypedDict):
    """Why a zone is unguarded: ``edge`` (the site's edge is not online; ``device``
    None) or ``device`` (that fence or camera covering it reports offline)."""

    kind: Literal["edge", "device"]
    device: str | None


class DeviceCounts(TypedDict):
    online: int
    offline: int
    unknown: int  # never reported a status
    total: int


def _ts(value: datetime | None) -> str | None:
    return format_ts(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class DeviceState:
    online: bool | None = None
    battery: float | None = None
    rssi: int | None = None
    status_ts: datetime | None = None
    last_seen: datetime | None = None


class Picture:
    def __init__(self, config: Config, clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.clock = clock
        # Each site's recent events as (hub time, count) per ingest batch, and their sum:
        # the event-rate input of its risk. One entry per batch, not per event, so a
        # flood costs no more memory than a trickle of batches.
        self.recent: dict[str, deque[tuple[datetime, int]]] = {s.id: deque() for s in config.sites}
        self.recent_total: dict[str, int] = {s.id: 0 for s in config.sites}
        self.active: dict[tuple[str, str], Alarm] = {}
        self.devices: dict[str, DeviceState] = {d.id: DeviceState() for d in config.devices}
        # Each site's devices in configuration order: a site's list and counts without
        # walking the whole fleet (20,000 devices at city scale).
        self._site_devices: dict[str, list[Device]] = {s.id: [] for s in config.sites}
        for device in config.devices:
            self._site_devices[device.site].append(device)
        # Each site's fences and cameras that report offline: what ``unguarded`` reads,
        # kept as statuses arrive instead of walking every device of the site each time.
        self._offline_guards: dict[str, set[str]] = {s.id: set() for s in config.sites}
        self.edges: dict[str, EdgeRow] = {}
        self.clips: dict[str, Clip] = {}
        # Default warning clip id per site.
        self.site_clip: dict[str, str] = {}

    # --- loading -------------------------------------------------------------

    def load(
        self, active: Iterable[Alarm], devices: Iterable[DeviceRow], edges: Iterable[EdgeRow]
    ) -> None:
        for alarm in active:
            self.active[(alarm.site, alarm.zone)] = alarm
        for row in devices:
            if row.id in self.devices:
                self.set_status(
                    row.id,
                    DeviceState(row.online, row.battery, row.rssi, row.status_ts, row.last_seen),
                )
        for edge in edges:
            if edge.site in self.config.site_by_id:
                self.edges[edge.site] = edge

    def add_clip(self, site: str, clip: Clip) -> None:
        self.clips[clip.id] = clip
        self.site_clip[site] = clip.id

    # --- alarms --------------------------------------------------------------

    def put_alarm(self, alarm: Alarm) -> None:
        key = (alarm.site, alarm.zone)
        if alarm.state in rules.ACTIVE_STATES:
            self.active[key] = alarm
        elif key in self.active and self.active[key].id == alarm.id:
            del self.active[key]

    def active_alarms(self) -> list[Alarm]:
        return sorted(self.active.values(), key=lambda a: a.opened_at)

    def risk(self, site: str) -> RiskColour:
        return self.assess(site).colour

    def assess(self, site_id: str) -> Assessment:
        site = self.config.site(site_id)
        now = self.clock()
        recent = self.recent[site_id]
        horizon = now - timedelta(seconds=site.risk_window_s)
        while recent and recent[0][0] <= horizon:
            self.recent_total[site_id] -= recent.popleft()[1]
        active = [a for (s, _), a in self.active.items() if s == site_id]
        total = self.recent_total[site_id]
        return assess_site(site, active, self.unguarded(site_id), total, now)

    def risk_state(self, site_id: str) -> tuple[str, tuple[str, ...]]:
        """What a ``site`` message shows of the risk: the colour and each unguarded
        zone with why (``zone:kind:device``). A change of either is pushed."""
        gaps = tuple(
            f"{zone}:{reason['kind']}:{reason['device'] or ''}"
            for zone, reasons in self.unguarded_reasons(site_id).items()
            for reason in reasons
        )
        return self.assess(site_id).colour, gaps

    def shown_state(self, site_id: str) -> tuple[object, ...]:
        """Everything a ``site`` message shows that can change: the risk, the coverage
        and the device counts. A change of any is pushed."""
        counts = tuple(
            (kind, tuple(sorted(count.items())))
            for kind, count in sorted(self.device_counts(site_id).items())
        )
        return (*self.risk_state(site_id), counts)

    def count_events(self, site_id: str, count: int) -> None:
        recent = self.recent.get(site_id)
        if recent is not None:
            recent.append((self.clock(), count))
            self.recent_total[site_id] += count

    def unguarded(self, site_id: str) -> list[str]:
        """Zones of the site's fences and cameras that report offline; every zone of
        the site while its edge is not online (the hub hears none of them)."""
        edge = self.edges.get(site_id)
        if edge is not None and not edge.online:
            return sorted(zone.id for zone in self.config.site(site_id).zones)
        devices = self.config.device_by_id
        zones: set[str] = set()
        for device_id in self._offline_guards.get(site_id, ()):
            zones.update(devices[device_id].zones)
        return sorted(zones)

    def unguarded_reasons(self, site_id: str) -> dict[str, list[UnguardedReason]]:
        """Each unguarded zone of the site (sorted) with why: the site's edge not
        online, then each fence or camera covering it that reports offline (by id)."""
        reasons: dict[str, list[UnguardedReason]] = {}
        edge = self.edges.get(site_id)
        if edge is not None and not edge.online:
            for zone in self.config.site(site_id).zones:
                reasons[zone.id] = [{"kind": "edge", "device": None}]
        devices = self.config.device_by_id
        for device_id in sorted(self._offline_guards.get(site_id, ())):
            for zone_id in devices[device_id].zones:
                reasons.setdefault(zone_id, []).append({"kind": "device", "device": device_id})
        return dict(sorted(reasons.items()))

    # --- devices -------------------------------------------------------------

    def site_devices(self, site_id: str) -> list[Device]:
        return self._site_devices[site_id]

    def device_counts(self, site_id: str) -> dict[str, DeviceCounts]:
        """Per device type of the site: how many report online, offline, nothing yet."""
        counts: dict[str, DeviceCounts] = {}
        for device in self._site_devices[site_id]:
            count = counts.setdefault(
                device.type, {"online": 0, "offline": 0, "unknown": 0, "total": 0}
            )
            online = self.devices.get(device.id, DeviceState()).online
            count["total"] += 1
            count["online" if online is True else "offline" if online is False else "unknown"] += 1
        return counts

    def device(self, device_id: str) -> Device | None:
        return self.config.device_by_id.get(device_id)

    def touch(self, device_id: str, seen: datetime) -> None:
        state = self.devices.get(device_id)
        if state is not None and (state.last_seen is None or seen > state.last_seen):
            self.devices[device_id] = replace(state, last_seen=seen)

    def set_status(self, device_id: str, state: DeviceState) -> None:
        self.devices[device_id] = state
        device = self.config.device_by_id.get(device_id)
        if device is None or device.type not in ("fence", "camera"):
            return
        offline = self._offline_guards.setdefault(device.site, set())
        if state.online is False:
            offline.add(device_id)
        else:
            offline.discard(device_id)

    # --- shapes --------------------------------------------------------------

    def site_item(self, site_id: str) -> dict[str, Any]:
        site = self.config.site(site_id)
        assessment = self.assess(site_id)
        return {
            "id": site.id,
            "name": site.name,
            "name_en": site.name_en,
            "grid": site.grid,
            "risk": assessment.colour,
            "unguarded": list(assessment.unguarded),
            "unguarded_reasons": self.unguarded_reasons(site_id),
            "risk_reasons": list(assessment.reasons),
            "zones": [
                {"id": z.id, "name": z.name, "name_en": z.name_en, "area": z.area}
                for z in site.zones
            ],
            "map": site.map.model_dump() if site.map else None,
            "devices": self.device_counts(site_id),
            # The dispatch timers, which a console counts down beside each responder.
            "dispatch": {"accept_s": site.dispatch_accept_s, "arrive_s": site.dispatch_arrive_s},
        }

    def site_items(self) -> list[dict[str, Any]]:
        return [self.site_item(site.id) for site in self.config.sites]

    def device_item(self, device_id: str) -> dict[str, Any]:
        device = self.config.device_by_id[device_id]
        state = self.devices.get(device_id, DeviceState())
        return {
            "id": device.id,
            "site": device.site,
            "type": device.type,
            "source": device.source,
            "source_ref": device.source_ref,
            "zones": list(device.zones),
            "position": device.position,
            "online": state.online,
            "last_seen": _ts(state.last_seen),
            "battery": state.battery,
            "rssi": state.rssi,
        }

    def device_items(self) -> list[dict[str, Any]]:
        return [self.device_item(device.id) for device in self.config.devices]

    def edge_item(self, site: str) -> dict[str, Any]:
        edge = self.edges[site]
        return {
            "site": edge.site,
            "online": edge.online,
            "state": edge.state,
            "version": edge.version,
            "outbox": edge.outbox,
            "ts": format_ts(edge.ts),
        }

    def edge_items(self) -> list[dict[str, Any]]:
        return [self.edge_item(site) for site in sorted(self.edges)]

    def clip_item(self, clip: Clip, base_url: str) -> dict[str, Any]:
        site = next((s for s, c in self.site_clip.items() if c == clip.id), None)
        return {
            "id": clip.id,
            "title": clip.title,
            "site": site,
            "sha256": clip.sha256,
            "format": clip.format,
            "duration_ms": clip.duration_ms,
            "url": audio_url(base_url, clip),
        }


def audio_url(base_url: str, clip: Clip) -> str:
    return f"{base_url.rstrip('/')}/api/audio/{clip.sha256}.{clip.format}"
