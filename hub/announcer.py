"""Announcements: from an officer's request to speakers (PROTOCOL 3.1), and their acks (2.4).

Foundation scope: the clip is a rendered one (the site's default warning
unless ``clip_id`` names another); text-to-speech comes later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from hub import ids
from hub.broadcaster import Broadcaster
from hub.desk import AlarmDesk
from hub.errors import AnnouncementError, BrokerUnavailable
from hub.link import BrokerLink
from hub.picture import Picture, audio_url
from hub.schemas import AnnouncementRequest
from hub.store import AuditEntry, Store
from riverguard.config import Device
from riverguard.wire import topics
from riverguard.wire.models import Announce, AnnouncementAck, AudioRef
from riverguard.wire.times import format_ts, utcnow

log = structlog.get_logger()

EXPIRY = timedelta(seconds=60)
ALARM_PRIORITY = 8
DEFAULT_PRIORITY = 5
DEFAULT_REPEAT = 2
DEFAULT_VOLUME = 90

# Speaker states move forward only; a late "received" does not undo "done".
_RANK = {"pending": 0, "received": 1, "playing": 2, "done": 3, "failed": 3, "expired": 3}


class Announcer:
    def __init__(
        self,
        *,
        store: Store,
        picture: Picture,
        desk: AlarmDesk,
        broadcaster: Broadcaster,
        link: BrokerLink,
        base_url: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.picture = picture
        self.desk = desk
        self.broadcaster = broadcaster
        self.link = link
        self.base_url = base_url
        self.clock = clock
        # Acks of one announcement rewrite its history: one writer at a time.
        self.lock = asyncio.Lock()

    # --- requests ------------------------------------------------------------

    async def announce(self, request: AnnouncementRequest, username: str) -> dict[str, Any]:
        if request.text is not None or request.voice is not None:
            raise AnnouncementError(
                "not_supported", "text-to-speech announcements are not available yet"
            )
        if request.grid is not None:
            raise AnnouncementError("not_supported", "announcing to a grid is not available yet")
        site, speakers = await self._targets(request)
        clip_id = request.clip_id or self.picture.site_clip.get(site)
        clip = self.picture.clips.get(clip_id) if clip_id else None
        if clip is None:
            raise AnnouncementError("not_found", f"no clip {clip_id!r}", status=404)
        if not self.link.connected:
            raise AnnouncementError(
                "broker_unavailable", "the hub is not connected to the broker", status=503
            )

        now = self.clock()
        ann_id = ids.announcement_id()
        priority = (
            request.priority
            if request.priority is not None
            else (ALARM_PRIORITY if request.alarm_id else DEFAULT_PRIORITY)
        )
        repeat = request.repeat if request.repeat is not None else DEFAULT_REPEAT
        volume = request.volume if request.volume is not None else DEFAULT_VOLUME
        expires_at = now + EXPIRY
        clip_ref = {"id": clip.id, "sha256": clip.sha256, "duration_ms": clip.duration_ms}
        history = [
            {"speaker": s.id, "state": "pending", "ts": format_ts(now), "detail": ""}
            for s in speakers
        ]
        record = {
            "id": ann_id,
            "alarm_id": request.alarm_id,
            "site": site,
            "requested_by": username,
            "created_at": now,
            "clip": clip_ref,
            "priority": priority,
            "repeat": repeat,
            "volume": volume,
            "expires_at": expires_at,
            "history": history,
        }
        audit = AuditEntry(
            ts=now,
            username=username,
            action="announce",
            alarm_id=request.alarm_id,
            target=ann_id,
            after={
                "site": site,
                "speakers": [s.id for s in speakers],
                "clip": clip_ref,
                "priority": priority,
                "repeat": repeat,
                "volume": volume,
            },
        )
        # Audited in the announcement's own transaction, before anything is sent.
        await self.store.insert_announcement(record, {s.id: "pending" for s in speakers}, audit)

        message = Announce(
            id=ann_id,
            audio=AudioRef(
                url=audio_url(self.base_url, clip),
                sha256=clip.sha256,
                format=clip.format,
                duration_ms=clip.duration_ms,
            ),
            repeat=repeat,
            volume=volume,
            priority=priority,
            alarm_id=request.alarm_id,
            requested_by=username,
            expires_at=expires_at,
        )
        payload = message.model_dump_json().encode()
        failed: dict[str, tuple[str, str]] = {}
        for speaker in speakers:
            try:
                await self.link.publish(topics.announce(site, speaker.id), payload, qos=1)
            except BrokerUnavailable as exc:
                failed[speaker.id] = ("failed", f"not sent: {exc}")
        if failed:
            await self._apply(ann_id, {s: (st, d) for s, (st, d) in failed.items()}, now)
        log.info(
            "announcement sent",
            announcement_id=ann_id,
            site=site,
            speakers=[s.id for s in speakers],
        )

        if request.alarm_id is not None:
            await self.desk.add_announcement(request.alarm_id, ann_id)
        shaped = await self.get(ann_id)
        assert shaped is not None
        self.broadcaster.publish("announcement", shaped)
        return shaped

    async def _targets(self, request: AnnouncementRequest) -> tuple[str, list[Device]]:
        zone = request.zone
        if request.alarm_id is not None:
            alarm = await self.desk.get(request.alarm_id)
            site = alarm.site
            zone = zone or alarm.zone
            if request.site is not None and request.site != site:
                raise AnnouncementError("invalid_target", "site and alarm_id name different sites")
        elif request.site is not None:
            site = request.site
        elif request.speakers:
            sites = {self._speaker(s).site for s in request.speakers}
            if len(sites) != 1:
                raise AnnouncementError("invalid_target", "speakers of one site only")
            site = sites.pop()
        else:
            raise AnnouncementError("invalid_target", "name an alarm_id, a site or speakers")
        if site not in self.picture.config.site_by_id:
            raise AnnouncementError("not_found", f"no site {site!r}", status=404)

        site_speakers = self.picture.config.devices_of(site, "speaker")
        if request.speakers:
            chosen = [self._speaker(s) for s in dict.fromkeys(request.speakers)]
            if any(s.site != site for s in chosen):
                raise AnnouncementError("invalid_target", f"speakers must belong to {site!r}")
        else:
            covering = [s for s in site_speakers if zone is not None and zone in s.zones]
            chosen = covering or site_speakers
        if not chosen:
            raise AnnouncementError("no_speakers", f"site {site!r} has no speakers")
        return site, chosen

    def _speaker(self, speaker_id: str) -> Device:
        device = self.picture.config.device_by_id.get(speaker_id)
        if device is None or device.type != "speaker":
            raise AnnouncementError("not_found", f"no speaker {speaker_id!r}", status=404)
        return device

    # --- acknowledgements ----------------------------------------------------

    async def on_ack(self, site: str, speaker: str, ack: AnnouncementAck) -> str | None:
        """Apply a speaker's state; return a rejection reason, or None."""
        record = await self.store.get_announcement(ack.id)
        if record is None:
            return "unknown_announcement"
        if record["site"] != site:
            return "site_mismatch"
        if speaker not in record["speakers"]:
            return "unknown_speaker"
        await self._apply(ack.id, {speaker: (ack.state, ack.detail)}, ack.ts)
        shaped = await self.get(ack.id)
        if shaped is not None:
            self.broadcaster.publish("announcement", shaped)
        return None

    async def _apply(self, ann_id: str, states: dict[str, tuple[str, str]], ts: datetime) -> None:
        async with self.lock:
            record = await self.store.get_announcement(ann_id)
            if record is None:
                return
            history = list(record["history"])
            forward: dict[str, tuple[str, str]] = {}
            for speaker, (state, detail) in states.items():
                history.append(
                    {"speaker": speaker, "state": state, "ts": format_ts(ts), "detail": detail}
                )
                current = record["speakers"].get(speaker, "pending")
                if _RANK[state] > _RANK[current]:
                    forward[speaker] = (state, detail)
            await self.store.set_speaker_states(ann_id, forward, history, self.clock())

    # --- reading -------------------------------------------------------------

    async def get(self, ann_id: str) -> dict[str, Any] | None:
        record = await self.store.get_announcement(ann_id)
        return shape(record) if record is not None else None

    async def recent(self, since: datetime) -> list[dict[str, Any]]:
        return [shape(record) for record in await self.store.recent_announcements(since)]


def shape(record: dict[str, Any]) -> dict[str, Any]:
    """The console's announcement object."""
    return {
        "id": record["id"],
        "alarm_id": record["alarm_id"],
        "site": record["site"],
        "requested_by": record["requested_by"],
        "created_at": format_ts(record["created_at"]),
        "clip": record["clip"],
        "priority": record["priority"],
        "repeat": record["repeat"],
        "speakers": record["speakers"],
        "history": record["history"],
    }
