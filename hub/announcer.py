"""Announcements: from an officer's request to speakers (PROTOCOL 3.1), and their acks (2.4).

The clip is the site's default warning unless ``clip_id`` names one of the
library or ``text`` and ``voice`` ask for speech (rendered once, then cached).
Targets: named speakers, all speakers of a site, all under a grid path, or the
speakers covering a zone (the alarm's by default).

Policy (``riverguard.policy``, which the edge applies again): priority
``LIFE_SAFETY_PRIORITY`` and up is life-safety, and only an alarm's
announcement may have it (its default); one without an alarm is capped to
``ROUTINE_MAX_PRIORITY`` and is routine. A higher priority stops a lower one
still active on the same speaker (3.2, recorded ``failed``/``preempted by …``).
Routine messages repeat at most ``ROUTINE_MAX_REPEAT`` times, are capped to
the volume cap during a site's quiet hours and limited per site
(``routine_limit`` per ``routine_window_s``, the site's own values or the hub's
defaults; counted in the state store, so a restart or another replica sees the
same count); life-safety messages are none of these, scheduled ones are not
rate-limited.
A speaker with no acknowledgement ``ack_timeout_s`` after sending is marked
``failed`` with detail ``no_ack``; one still not finished when the
announcement's expiry, its playing time and that timeout have passed, with
``no_ack: no final state``.

Acknowledgements move a speaker's state forward only (pending, received,
playing, then one final state); one that does not is refused (``stale_state``)
and leaves no trace in the history, so repeated or forged acks cannot rewrite
a final state or grow an announcement without bound. Only the announcement's
own speakers may acknowledge it.

The edge's own warnings (local deterrence, PROTOCOL 7.10: ids ``edge-auto-<zone>-<ms>``)
reach the hub only as acknowledgements: the first one records the play as an
announcement requested by ``edge-auto``, linked to the zone's active alarm and
audited, and every speaker covering the zone that acks it joins it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from hub import ids
from hub.audio_desk import AudioDesk
from hub.broadcaster import Broadcaster
from hub.clock import Clock
from hub.desk import AlarmDesk
from hub.errors import AnnouncementError, BrokerUnavailable, RoutineLimitReached, StoreError
from hub.link import BrokerLink
from hub.picture import Picture, audio_url
from hub.schedules import Schedule
from hub.schemas import AnnouncementRequest
from hub.store import AuditEntry, RoutineLimit, Store
from riverguard import policy
from riverguard.config import Device
from riverguard.wire import topics
from riverguard.wire.models import Announce, AnnouncementAck, AudioRef, Stop
from riverguard.wire.times import format_ts, utcnow

log = structlog.get_logger()

EXPIRY = timedelta(seconds=60)
ALARM_PRIORITY = 8
DEFAULT_PRIORITY = 5
DEFAULT_REPEAT = 2
DEFAULT_VOLUME = 90
LIFE_SAFETY_PRIORITY = policy.LIFE_SAFETY_PRIORITY
MIN_EXPIRY_S = 5
MAX_EXPIRY_S = 3600
_ACTIVE = ("pending", "received", "playing")
STORE_RETRY = timedelta(seconds=5)

# The edge's local warning (edge/deterrence.py, PROTOCOL 7.10). The hub learns of it
# only from acks, so priority, repeat and volume are the edge's documented values.
EDGE_AUTO = "edge-auto"
EDGE_AUTO_PREFIX = f"{EDGE_AUTO}-"
EDGE_AUTO_PRIORITY = 3
EDGE_AUTO_REPEAT = 2
EDGE_AUTO_VOLUME = 90

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
        audio: AudioDesk | None = None,
        timer: Clock | None = None,
        ack_timeout_s: float = 10.0,
        quiet_volume_cap: int = 40,
        routine_limit: int = 6,
        routine_window_s: float = 600.0,
    ) -> None:
        self.audio = audio
        self.timer = timer
        self.ack_timeout = timedelta(seconds=ack_timeout_s)
        self.quiet_volume_cap = quiet_volume_cap
        self.routine_limit = routine_limit
        self.routine_window = timedelta(seconds=routine_window_s)
        # When a warning of an edge's own was last recorded, per site and zone (None:
        # a zone the site does not have).
        self._edge_auto_at: dict[tuple[str, str | None], datetime] = {}
        # Each speaker's newest active announcement: (id, priority), for preemption.
        self._active: dict[str, tuple[str, int]] = {}
        # When each sent announcement's speakers must have acknowledged it ("ack"), and
        # reached a final state ("final": expiry plus its playing time plus the timeout).
        self._deadlines: dict[tuple[str, str], datetime] = {}
        self._wake = asyncio.Event()
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

    async def announce(
        self, request: AnnouncementRequest, username: str, *, scheduled: bool = False
    ) -> dict[str, Any]:
        """Send an announcement; ``scheduled`` ones (pre-approved) skip the rate limit."""
        if (request.text is None) != (request.voice is None):
            raise AnnouncementError("invalid_request", "text and voice go together")
        if request.text is not None and request.clip_id is not None:
            raise AnnouncementError("invalid_request", "name a clip_id or a text, not both")
        groups = await self._targets(request)
        if not self.link.connected:
            raise AnnouncementError(
                "broker_unavailable", "the hub is not connected to the broker", status=503
            )
        priority = (
            request.priority
            if request.priority is not None
            else (ALARM_PRIORITY if request.alarm_id else DEFAULT_PRIORITY)
        )
        # Life-safety only as the answer to an alarm still open (or acknowledged): any
        # other priority is capped and routine, a resolved alarm's included.
        answering = await self._open_alarm(request.alarm_id)
        routine = not policy.is_life_safety(priority, answering) and not scheduled
        now = self.clock()
        if routine:
            # Every site first, so a grid announcement is refused whole, not in part.
            for site, _ in groups:
                await self._check_rate(site, now)
        clip_id = request.clip_id
        if request.text is not None and request.voice is not None:
            if self.audio is None:
                raise AnnouncementError("not_supported", "text-to-speech is not available")
            clip_id = (await self.audio.speak(request.text, request.voice, created_by=username)).id
        shaped = [
            await self._send(
                request=request,
                username=username,
                site=site,
                speakers=speakers,
                clip_id=clip_id,
                priority=priority,
                answering=answering,
                now=now,
                routine=routine,
            )
            for site, speakers in groups
        ]
        first = shaped[0]
        if len(shaped) > 1:
            first = {**first, "group": [item["id"] for item in shaped]}
        return first

    async def _clip(self, clip_id: str | None, site: str, speaker: Device) -> Any:
        clip_id = clip_id or self.picture.site_clip.get(site)
        clip = None
        if clip_id is not None:
            if self.audio is not None:
                clip = await self.audio.clip_for(clip_id, speaker.driver)
            else:
                clip = self.picture.clips.get(clip_id)
        if clip is None:
            raise AnnouncementError("not_found", f"no clip {clip_id!r}", status=404)
        return clip

    async def _send(
        self,
        *,
        request: AnnouncementRequest,
        username: str,
        site: str,
        speakers: list[Device],
        clip_id: str | None,
        priority: int,
        answering: str | None,
        now: datetime,
        routine: bool,
    ) -> dict[str, Any]:
        clips = {s.id: await self._clip(clip_id, site, s) for s in speakers}
        clip = clips[speakers[0].id]
        ann_id = ids.announcement_id()
        shaped_policy = policy.shape(
            priority=priority,
            repeat=request.repeat if request.repeat is not None else DEFAULT_REPEAT,
            volume=request.volume if request.volume is not None else DEFAULT_VOLUME,
            alarm_id=answering,
            site=self.picture.config.site(site),
            now=now,
            quiet_volume_cap=self.quiet_volume_cap,
        )
        priority, repeat, volume = (
            shaped_policy.priority,
            shaped_policy.repeat,
            shaped_policy.volume,
        )
        capped = shaped_policy.detail
        expires_in = request.expires_in_s if request.expires_in_s is not None else None
        expires_at = now + (timedelta(seconds=expires_in) if expires_in else EXPIRY)
        clip_ref = {"id": clip.id, "sha256": clip.sha256, "duration_ms": clip.duration_ms}
        history = [
            {"speaker": s.id, "state": "pending", "ts": format_ts(now), "detail": capped}
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
                "text": request.text,
                "voice": request.voice,
                "priority": priority,
                "repeat": repeat,
                "volume": volume,
                "expires_at": format_ts(expires_at),
            },
            detail=(request.reason or "")[:500],
        )
        # Audited in the announcement's own transaction, before anything is sent; a routine
        # one is checked against the limit there again (concurrent requests, other replicas).
        try:
            await self.store.insert_announcement(
                record,
                {s.id: "pending" for s in speakers},
                audit,
                routine_limit=self._routine_limit(site, now) if routine else None,
            )
        except RoutineLimitReached as exc:
            raise self._rate_limited(site, exc.count) from exc

        preempted = await self._preempt(site, speakers, ann_id, priority, now)
        failed: dict[str, tuple[str, str]] = {}
        for speaker in speakers:
            own = clips[speaker.id]
            message = Announce(
                id=ann_id,
                audio=AudioRef(
                    url=audio_url(self.base_url, own),
                    sha256=own.sha256,
                    format=own.format,
                    duration_ms=own.duration_ms,
                ),
                repeat=repeat,
                volume=volume,
                priority=priority,
                alarm_id=request.alarm_id,
                requested_by=username,
                expires_at=expires_at,
            )
            try:
                await self.link.publish(
                    topics.announce(site, speaker.id), message.model_dump_json().encode(), qos=1
                )
                self._active[speaker.id] = (ann_id, priority)
            except BrokerUnavailable as exc:
                failed[speaker.id] = ("failed", f"not sent: {exc}")
        if failed:
            await self._apply(ann_id, failed, now)
        self._deadlines[(ann_id, "ack")] = now + self.ack_timeout
        self._deadlines[(ann_id, "final")] = self._final_due(expires_at, clip.duration_ms, repeat)
        self._wake.set()
        log.info(
            "announcement sent",
            announcement_id=ann_id,
            site=site,
            speakers=[s.id for s in speakers],
            priority=priority,
            volume=volume,
            preempted=preempted,
        )

        if request.alarm_id is not None:
            await self.desk.add_announcement(request.alarm_id, ann_id)
        shaped = await self.get(ann_id)
        assert shaped is not None
        self.broadcaster.publish("announcement", shaped)
        return shaped

    def _window(self, site: str) -> timedelta:
        config = self.picture.config.site(site)
        if config.routine_window_s is None:
            return self.routine_window
        return timedelta(seconds=config.routine_window_s)

    def _routine_limit(self, site: str, now: datetime) -> RoutineLimit:
        config = self.picture.config.site(site)
        limit = self.routine_limit if config.routine_limit is None else config.routine_limit
        return RoutineLimit(limit, now - self._window(site))

    async def _check_rate(self, site: str, now: datetime) -> None:
        quota = self._routine_limit(site, now)
        count = await self.store.count_routine(site, quota.since)
        if count >= quota.limit:
            raise self._rate_limited(site, count)

    def _rate_limited(self, site: str, count: int) -> AnnouncementError:
        return AnnouncementError(
            "rate_limited",
            f"site {site!r} had {count} routine announcements in the last "
            f"{self._window(site).total_seconds():.0f} s (life-safety is not limited)",
            status=429,
        )

    async def _preempt(
        self, site: str, speakers: list[Device], ann_id: str, priority: int, now: datetime
    ) -> list[str]:
        """Stop lower-priority announcements still active on these speakers."""
        stopped: dict[str, list[str]] = {}
        for speaker in speakers:
            active = self._active.get(speaker.id)
            if active is None or active[1] >= priority:
                continue
            old_id = active[0]
            record = await self.store.get_announcement(old_id)
            if record is None or record["speakers"].get(speaker.id) not in _ACTIVE:
                continue
            try:
                await self.link.publish(
                    topics.stop(site, speaker.id),
                    Stop(id=old_id).model_dump_json().encode(),
                    qos=1,
                )
            except BrokerUnavailable:
                continue
            stopped.setdefault(old_id, []).append(speaker.id)
        for old_id, ids_ in stopped.items():
            detail = f"preempted by {ann_id}"
            await self._apply(old_id, dict.fromkeys(ids_, ("failed", detail)), now)
            shaped = await self.get(old_id)
            if shaped is not None:
                self.broadcaster.publish("announcement", shaped)
        return sorted(stopped)

    async def _open_alarm(self, alarm_id: str | None) -> str | None:
        """``alarm_id`` while that alarm is open or acknowledged, else None."""
        if alarm_id is None:
            return None
        alarm = await self.desk.get(alarm_id)
        return None if alarm.state == "resolved" else alarm_id

    async def _targets(  # noqa: PLR0912 - one branch per kind of target
        self, request: AnnouncementRequest
    ) -> list[tuple[str, list[Device]]]:
        config = self.picture.config
        if request.grid is not None:
            if request.alarm_id or request.site or request.speakers:
                raise AnnouncementError("invalid_target", "a grid is a target of its own")
            grid = request.grid.strip("/")
            under = [s.id for s in config.sites if s.grid == grid or s.grid.startswith(grid + "/")]
            groups = [(site, config.devices_of(site, "speaker")) for site in under]
            groups = [(site, speakers) for site, speakers in groups if speakers]
            if not groups:
                raise AnnouncementError("no_speakers", f"no speakers under grid {grid!r}")
            return groups
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
            raise AnnouncementError(
                "invalid_target", "name an alarm_id, a site, a grid or speakers"
            )
        if site not in config.site_by_id:
            raise AnnouncementError("not_found", f"no site {site!r}", status=404)
        if zone is not None and zone not in config.site(site).zone_ids:
            raise AnnouncementError("not_found", f"no zone {zone!r} at {site!r}", status=404)

        site_speakers = config.devices_of(site, "speaker")
        if request.speakers:
            chosen = [self._speaker(s) for s in dict.fromkeys(request.speakers)]
            if any(s.site != site for s in chosen):
                raise AnnouncementError("invalid_target", f"speakers must belong to {site!r}")
        else:
            covering = [s for s in site_speakers if zone is not None and zone in s.zones]
            chosen = covering or site_speakers
        if not chosen:
            raise AnnouncementError("no_speakers", f"site {site!r} has no speakers")
        return [(site, chosen)]

    def _speaker(self, speaker_id: str) -> Device:
        device = self.picture.config.device_by_id.get(speaker_id)
        if device is None or device.type != "speaker":
            raise AnnouncementError("not_found", f"no speaker {speaker_id!r}", status=404)
        return device

    # --- acknowledgements ----------------------------------------------------

    async def on_ack(self, site: str, speaker: str, ack: AnnouncementAck) -> str | None:
        """Apply a speaker's state; return a rejection reason, or None."""
        record = await self.store.get_announcement(ack.id)
        if record is None and ack.id.startswith(EDGE_AUTO_PREFIX):
            refused = self._new_edge_auto_refused(site, speaker, ack.id)
            if refused is not None:
                return refused
            record = await self._record_edge_auto(site, speaker, ack)
        if record is None:
            return "unknown_announcement"
        if record["site"] != site:
            return "site_mismatch"
        if speaker not in record["speakers"]:
            if record["requested_by"] != EDGE_AUTO or not self._covers(site, speaker, ack.id):
                return "unknown_speaker"
            # The edge plays its warning on every speaker covering the zone, under one id.
            await self.store.add_announcement_speaker(ack.id, speaker, ack.ts)
        moved = await self._apply(ack.id, {speaker: (ack.state, ack.detail)}, ack.ts)
        if not moved:
            # A repeat, or a state behind the one recorded (a late or forged ack).
            return "stale_state"
        if ack.state not in _ACTIVE and self._active.get(speaker, ("", 0))[0] == ack.id:
            del self._active[speaker]
        shaped = await self.get(ack.id)
        if shaped is not None:
            self.broadcaster.publish("announcement", shaped)
        return None

    async def _record_edge_auto(
        self, site: str, speaker: str, ack: AnnouncementAck
    ) -> dict[str, Any] | None:
        """Record the edge's own warning, first heard of in this ack; the stored record."""
        zone = edge_auto_zone(ack.id, self.picture.config.site(site).zone_ids)
        alarm = self.picture.active.get((site, zone)) if zone is not None else None
        alarm_id = alarm.id if alarm is not None else None
        clip = {"id": EDGE_AUTO, "sha256": "", "duration_ms": 0}
        record: dict[str, Any] = {
            "id": ack.id,
            "alarm_id": alarm_id,
            "site": site,
            "requested_by": EDGE_AUTO,
            "created_at": ack.ts,
            "clip": clip,
            "priority": EDGE_AUTO_PRIORITY,
            "repeat": EDGE_AUTO_REPEAT,
            "volume": EDGE_AUTO_VOLUME,
            "expires_at": ack.ts + EXPIRY,
            "history": [],
        }
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
            await self.store.insert_announcement(record, {speaker: "pending"}, audit)
        except StoreError:
            # Another replica (or an earlier ack) recorded it first: that record stands.
            existing = await self.store.get_announcement(ack.id)
            if existing is None:
                raise
            return existing
        log.info("edge auto warning recorded", announcement_id=ack.id, site=site, alarm_id=alarm_id)
        # Like the hub's own: a speaker that never reports an end is marked failed.
        self._deadlines[(ack.id, "final")] = self._final_due(
            record["expires_at"], 0, EDGE_AUTO_REPEAT
        )
        self._wake.set()
        return await self.store.get_announcement(ack.id)

    def _new_edge_auto_refused(self, site: str, speaker: str, ann_id: str) -> str | None:
        """Why a warning of the edge's own, first heard of now, is not recorded, or None.

        The edge plays it on speakers covering its zone, and warns a zone at most
        once per the site's ``auto_warning_cooldown_s`` (edge/deterrence.py): more new
        ids than that are not its own, and would each make a record (and grow every
        console's ``hello``). At least a second apart.
        """
        if not self._covers(site, speaker, ann_id):
            return "unknown_speaker"
        config = self.picture.config.site(site)
        key = (site, edge_auto_zone(ann_id, config.zone_ids))
        now = self.clock()
        last = self._edge_auto_at.get(key)
        cooldown = timedelta(seconds=max(1.0, config.auto_warning_cooldown_s))
        if last is not None and now - last < cooldown:
            return "edge_auto_too_often"
        self._edge_auto_at[key] = now
        return None

    def _covers(self, site: str, speaker: str, ann_id: str) -> bool:
        """Whether the edge's own warning ``ann_id`` may have played on ``speaker``.

        The edge plays it on the speakers covering the zone, or covering every zone
        (edge/deterrence.py); of a zone the site does not have, any of its speakers.
        """
        zone = edge_auto_zone(ann_id, self.picture.config.site(site).zone_ids)
        device = self.picture.config.device_by_id.get(speaker)
        if device is None or device.site != site:
            return False
        return zone is None or not device.zones or zone in device.zones

    async def _apply(self, ann_id: str, states: dict[str, tuple[str, str]], ts: datetime) -> bool:
        """Move speakers' states forward; False when none moved (nothing is recorded).

        The history gets one step per move, so it holds at most one entry per
        state and speaker, however many acknowledgements arrive.
        """
        async with self.lock:
            record = await self.store.get_announcement(ann_id)
            if record is None:
                return False
            history = list(record["history"])
            forward: dict[str, tuple[str, str]] = {}
            for speaker, (state, detail) in states.items():
                current = record["speakers"].get(speaker, "pending")
                if _RANK[state] > _RANK[current]:
                    forward[speaker] = (state, detail)
                    history.append(
                        {"speaker": speaker, "state": state, "ts": format_ts(ts), "detail": detail}
                    )
            if not forward:
                return False
            await self.store.set_speaker_states(ann_id, forward, history, self.clock())
            return True

    async def fire_schedule(self, schedule: Schedule) -> str:
        """Send one occurrence of a scheduled announcement; the result, for the schedule."""
        spec = schedule.request
        request = AnnouncementRequest(
            site=spec.site,
            speakers=spec.speakers,
            zone=spec.zone,
            clip_id=spec.clip_id,
            text=spec.text,
            voice=spec.voice,
            repeat=spec.repeat,
            volume=spec.volume,
            priority=spec.priority,
            reason=f"schedule {schedule.id} ({spec.title}) of {schedule.created_by}",
        )
        shaped = await self.announce(request, "scheduler", scheduled=True)
        return f"sent {shaped['id']}"

    # --- delivery timeouts ---------------------------------------------------

    async def run(self) -> None:
        """Mark speakers that never acknowledged, or never finished, ``failed`` (``no_ack``)."""
        if self.timer is None:
            return
        # Announcements sent before a restart still get their timeouts.
        for record in await self.store.recent_announcements(self.clock() - timedelta(hours=2)):
            states = set(record["speakers"].values())
            if "pending" in states:
                self._deadlines[(record["id"], "ack")] = record["created_at"] + self.ack_timeout
            if states & set(_ACTIVE):
                self._deadlines[(record["id"], "final")] = self._final_due(
                    record["expires_at"], record["clip"]["duration_ms"], record["repeat"]
                )
        while True:
            self._wake.clear()
            now = self.clock()
            due = [key for key, at in self._deadlines.items() if at <= now]
            for key in due:
                del self._deadlines[key]
                try:
                    await self._no_ack(*key, now)
                except StoreError as exc:
                    # Try again shortly: a store outage must not end the timeout loop.
                    log.warning("delivery timeout not recorded", key=key, error=str(exc))
                    self._deadlines[key] = now + STORE_RETRY
            if not due:
                upcoming = min(self._deadlines.values(), default=None)
                await self.timer.wait(upcoming, self._wake)

    def _final_due(self, expires_at: datetime, duration_ms: int, repeat: int) -> datetime:
        return expires_at + timedelta(milliseconds=duration_ms * repeat) + self.ack_timeout

    async def _no_ack(self, ann_id: str, stage: str, now: datetime) -> None:
        record = await self.store.get_announcement(ann_id)
        if record is None:
            return
        waiting = ("pending",) if stage == "ack" else _ACTIVE
        silent = [s for s, state in record["speakers"].items() if state in waiting]
        if not silent:
            return
        detail = "no_ack" if stage == "ack" else "no_ack: no final state"
        await self._apply(ann_id, dict.fromkeys(silent, ("failed", detail)), now)
        for speaker in silent:
            if self._active.get(speaker, ("", 0))[0] == ann_id:
                del self._active[speaker]
        log.warning("announcement not acknowledged", announcement_id=ann_id, speakers=silent)
        shaped = await self.get(ann_id)
        if shaped is not None:
            self.broadcaster.publish("announcement", shaped)

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
        "volume": record["volume"],
        "expires_at": format_ts(record["expires_at"]),
        "speakers": record["speakers"],
        "history": record["history"],
    }


def edge_auto_zone(announcement_id: str, zones: frozenset[str]) -> str | None:
    """The zone of an edge's own warning, from its id ``edge-auto-<zone>-<ms>``."""
    zone, _, millis = announcement_id.removeprefix(EDGE_AUTO_PREFIX).rpartition("-")
    return zone if millis.isdigit() and zone in zones else None
