"""The edge's own warnings (local deterrence, PROTOCOL 7.10), as the hub learns of them.

Their ids are ``edge-auto-<zone>-<ms>`` and they reach the hub only as
acknowledgements: the first one records the play as an announcement requested
by ``edge-auto``, linked to the zone's active alarm and audited, and every
speaker covering the zone that acks it joins it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from hub.clock import Clock
from hub.delivery import DEFAULT_EXPIRY, DeliveryTimeouts
from hub.errors import StoreError
from hub.picture import Picture
from hub.store import AnnouncementRow, AuditEntry, Store
from riverguard.wire.models import AnnouncementAck
from riverguard.wire.reject_reasons import RejectReason

log = structlog.get_logger()

# The edge's local warning (edge/deterrence.py, PROTOCOL 7.10). The hub learns of it
# only from acks, so priority, repeat and volume are the edge's documented values.
EDGE_AUTO = "edge-auto"
EDGE_AUTO_PREFIX = f"{EDGE_AUTO}-"
EDGE_AUTO_PRIORITY = 3
EDGE_AUTO_REPEAT = 2
EDGE_AUTO_VOLUME = 90


class EdgeWarnings:
    def __init__(
        self, store: Store, picture: Picture, clock: Clock, timeouts: DeliveryTimeouts
    ) -> None:
        self.store = store
        self.picture = picture
        self.clock = clock
        self.timeouts = timeouts
        # When a warning of an edge's own was last recorded, per site and zone (None:
        # a zone the site does not have).
        self._last: dict[tuple[str, str | None], datetime] = {}

    def refused(self, site: str, speaker: str, ann_id: str) -> RejectReason | None:
        """Why a warning of the edge's own, first heard of now, is not recorded, or None.

        The edge plays it on speakers covering its zone, and warns a zone at most
        once per the site's ``auto_warning_cooldown_s`` (edge/deterrence.py): more new
        ids than that are not its own, and would each make a record (and grow every
        console's ``hello``). At least a second apart.
        """
        if not self.covers(site, speaker, ann_id):
            return "unknown_speaker"
        config = self.picture.config.site(site)
        key = (site, edge_auto_zone(ann_id, config.zone_ids))
        now = self.clock.now()
        last = self._last.get(key)
        cooldown = timedelta(seconds=max(1.0, config.auto_warning_cooldown_s))
        if last is not None and now - last < cooldown:
            return "edge_auto_too_often"
        self._last[key] = now
        return None

    def covers(self, site: str, speaker: str, ann_id: str) -> bool:
        """Whether the edge's own warning ``ann_id`` may have played on ``speaker``.

        The edge plays it on the speakers covering the zone, or covering every zone
        (edge/deterrence.py); of a zone the site does not have, any of its speakers.
        """
        zone = edge_auto_zone(ann_id, self.picture.config.site(site).zone_ids)
        device = self.picture.config.device_by_id.get(speaker)
        if device is None or device.site != site:
            return False
        return zone is None or not device.zones or zone in device.zones

    async def record(self, site: str, speaker: str, ack: AnnouncementAck) -> AnnouncementRow | None:
        """Record the edge's own warning, first heard of in this ack; the stored record."""
        zone = edge_auto_zone(ack.id, self.picture.config.site(site).zone_ids)
        alarm = self.picture.active.get((site, zone)) if zone is not None else None
        alarm_id = alarm.id if alarm is not None else None
        clip = {"id": EDGE_AUTO, "sha256": "", "duration_ms": 0}
        record = AnnouncementRow(
            id=ack.id,
            alarm_id=alarm_id,
            site=site,
            requested_by=EDGE_AUTO,
            created_at=ack.ts,
            clip=clip,
            priority=EDGE_AUTO_PRIORITY,
            repeat=EDGE_AUTO_REPEAT,
            volume=EDGE_AUTO_VOLUME,
            expires_at=ack.ts + DEFAULT_EXPIRY,
            speakers={speaker: "pending"},
            history=[],
        )
        audit = AuditEntry(
            ts=ack.ts,
            username=EDGE_AUTO,
            action="announce",
            alarm_id=alarm_id,
            target=ack.id,
            after={"site": site, "zone": zone, "clip": clip, "priority": EDGE_AUTO_PRIORITY},
            detail="the edge's own warning (local deterrence)",
        )
        try:
            await self.store.announcements.insert(record, audit)
        except StoreError:
            # Another replica (or an earlier ack) recorded it first: that record stands.
            existing = await self.store.announcements.get(ack.id)
            if existing is None:
                raise
            return existing
        log.info("edge auto warning recorded", announcement_id=ack.id, site=site, alarm_id=alarm_id)
        # Like the hub's own: a speaker that never reports an end is marked failed.
        self.timeouts.expect_final(ack.id, record.expires_at, 0, EDGE_AUTO_REPEAT)
        return await self.store.announcements.get(ack.id)


def edge_auto_zone(announcement_id: str, zones: frozenset[str]) -> str | None:
    """The zone of an edge's own warning, from its id ``edge-auto-<zone>-<ms>``."""
    zone, _, millis = announcement_id.removeprefix(EDGE_AUTO_PREFIX).rpartition("-")
    return zone if millis.isdigit() and zone in zones else None
