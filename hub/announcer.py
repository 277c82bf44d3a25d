"""Announcements: from an officer's request to speakers (PROTOCOL 3.1), and their acks (2.4).

The clip is the site's default warning unless ``clip_id`` names one of the
library or ``text`` and ``voice`` ask for speech (rendered once, then cached).
Targets (``hub.targets``): named speakers, all speakers of a site, all under a
grid path, or the speakers covering a zone (the alarm's by default).

Policy (``riverguard.policy``, which the edge applies again): priority
``LIFE_SAFETY_PRIORITY`` and up is life-safety, and only an alarm's
announcement may have it (its default); one without an alarm is capped to
``ROUTINE_MAX_PRIORITY`` and is routine. A higher priority stops a lower one
still active on the same speaker (3.2, recorded ``failed``/``preempted by …``).
Routine messages repeat at most ``ROUTINE_MAX_REPEAT`` times, are capped to
the volume cap during a site's quiet hours and limited per site
(``hub.routine_limits``); life-safety messages are none of these, scheduled
ones are not rate-limited. Speakers that never acknowledge, or never finish,
are marked failed (``hub.delivery``).

Acknowledgements move a speaker's state forward only (pending, received,
playing, then one final state); one that does not is refused (``stale_state``)
and leaves no trace in the history, so repeated or forged acks cannot rewrite
a final state or grow an announcement without bound. Only the announcement's
own speakers may acknowledge it, and the speakers that played an edge's own
warning (``hub.edge_warnings``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from hub import ids, targets
from hub.audio import Clip
from hub.audio_desk import AudioDesk
from hub.broadcaster import Broadcaster
from hub.clock import Clock
from hub.delivery import ACTIVE, DEFAULT_EXPIRY, RANK, DeliveryTimeouts, Stage
from hub.desk import AlarmDesk
from hub.edge_warnings import EDGE_AUTO, EDGE_AUTO_PREFIX, EdgeWarnings
from hub.errors import AnnouncementError, BrokerUnavailable, RoutineLimitReached
from hub.link import BrokerLink
from hub.picture import Picture, audio_url
from hub.routine_limits import RoutineLimits
from hub.schedules import Schedule
from hub.schemas import AnnouncementRequest
from hub.store import AnnouncementRow, AuditEntry, Store
from riverguard import policy
from riverguard.config import Device
from riverguard.wire import topics
from riverguard.wire.models import Announce, AnnouncementAck, AudioRef, Stop
from riverguard.wire.reject_reasons import RejectReason
from riverguard.wire.times import format_ts

log = structlog.get_logger()

ALARM_PRIORITY = 8
DEFAULT_PRIORITY = 5
DEFAULT_REPEAT = 2
DEFAULT_VOLUME = 90


@dataclass(frozen=True, slots=True)
class _Order:
    """A request as decided once for every site it reaches."""

    request: AnnouncementRequest
    username: str
    clip_id: str | None
    priority: int
    # The alarm it answers while that alarm is open or acknowledged, else None.
    answering: str | None
    routine: bool
    now: datetime


@dataclass(frozen=True, slots=True)
class _Planned:
    """One site's announcement as policy lets it play, each speaker with its own clip."""

    id: str
    site: str
    speakers: list[Device]
    clips: dict[str, Clip]
    priority: int
    repeat: int
    volume: int
    expires_at: datetime
    # Why policy capped the request, if it did (the first history step of each speaker).
    capped: str

    @property
    def clip(self) -> Clip:
        return self.clips[self.speakers[0].id]


class Announcer:
    def __init__(
        self,
        *,
        store: Store,
        picture: Picture,
        desk: AlarmDesk,
        broadcaster: Broadcaster,
        link: BrokerLink,
        audio: AudioDesk,
        clock: Clock,
        base_url: str,
        ack_timeout_s: float = 10.0,
        quiet_volume_cap: int = 40,
        routine_limit: int = 6,
        routine_window_s: float = 600.0,
    ) -> None:
        self.store = store
        self.picture = picture
        self.desk = desk
        self.broadcaster = broadcaster
        self.link = link
        self.audio = audio
        self.clock = clock
        self.base_url = base_url
        self.quiet_volume_cap = quiet_volume_cap
        self.limits = RoutineLimits(
            store, picture.config, limit=routine_limit, window_s=routine_window_s
        )
        self.timeouts = DeliveryTimeouts(
            store, clock, timedelta(seconds=ack_timeout_s), self._timed_out
        )
        self.edge_warnings = EdgeWarnings(store, picture, clock, self.timeouts)
        # Each speaker's newest active announcement: (id, priority), for preemption.
        self._active: dict[str, tuple[str, int]] = {}
        # Acks of one announcement rewrite its history: one writer at a time.
        self.lock = asyncio.Lock()

    async def run(self) -> None:
        """The delivery timeouts; never returns."""
        await self.timeouts.run()

    # --- requests ------------------------------------------------------------

    async def announce(
        self, request: AnnouncementRequest, username: str, *, scheduled: bool = False
    ) -> dict[str, Any]:
        """Send an announcement; ``scheduled`` ones (pre-approved) skip the rate limit."""
        if (request.text is None) != (request.voice is None):
            raise AnnouncementError("invalid_request", "text and voice go together")
        if request.text is not None and request.clip_id is not None:
            raise AnnouncementError("invalid_request", "name a clip_id or a text, not both")
        groups = await targets.resolve(request, self.picture.config, self.desk)
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
        now = self.clock.now()
        if routine:
            # Every site first, so a grid announcement is refused whole, not in part.
            for site, _ in groups:
                await self.limits.check(site, now)
        clip_id = request.clip_id
        if request.text is not None and request.voice is not None:
            clip_id = (await self.audio.speak(request.text, request.voice, created_by=username)).id
        order = _Order(request, username, clip_id, priority, answering, routine, now)
        shaped = [await self._send(order, site, speakers) for site, speakers in groups]
        first = shaped[0]
        if len(shaped) > 1:
            first = {**first, "group": [item["id"] for item in shaped]}
        return first

    async def _send(self, order: _Order, site: str, speakers: list[Device]) -> dict[str, Any]:
        """One site's announcement: recorded, lower ones preempted, sent, watched; shaped."""
        clips = {s.id: await self._clip(order.clip_id, site, s) for s in speakers}
        planned = self._plan(order, site, speakers, clips)
        await self._record(order, planned)
        preempted = await self._preempt(site, speakers, planned.id, planned.priority, order.now)
        await self._publish(order, planned)
        self.timeouts.expect_ack(planned.id, order.now)
        self.timeouts.expect_final(
            planned.id, planned.expires_at, planned.clip.duration_ms, planned.repeat
        )
        log.info(
            "announcement sent",
            announcement_id=planned.id,
            site=site,
            speakers=[s.id for s in speakers],
            priority=planned.priority,
            volume=planned.volume,
            preempted=preempted,
        )
        if order.request.alarm_id is not None:
            await self.desk.add_announcement(order.request.alarm_id, planned.id)
        shaped = await self.get(planned.id)
        assert shaped is not None
        self.broadcaster.publish("announcement", shaped)
        return shaped

    async def _clip(self, clip_id: str | None, site: str, speaker: Device) -> Clip:
        clip_id = clip_id or self.picture.site_clip.get(site)
        clip = None if clip_id is None else await self.audio.clip_for(clip_id, speaker.driver)
        if clip is None:
            raise AnnouncementError("not_found", f"no clip {clip_id!r}", status=404)
        return clip

    def _plan(
        self, order: _Order, site: str, speakers: list[Device], clips: dict[str, Clip]
    ) -> _Planned:
        request = order.request
        shaped = policy.shape(
            priority=order.priority,
            repeat=request.repeat if request.repeat is not None else DEFAULT_REPEAT,
            volume=request.volume if request.volume is not None else DEFAULT_VOLUME,
            alarm_id=order.answering,
            site=self.picture.config.site(site),
            now=order.now,
            quiet_volume_cap=self.quiet_volume_cap,
        )
        expires_in = request.expires_in_s
        expires_at = order.now + (timedelta(seconds=expires_in) if expires_in else DEFAULT_EXPIRY)
        return _Planned(
            id=ids.announcement_id(),
            site=site,
            speakers=speakers,
            clips=clips,
            priority=shaped.priority,
            repeat=shaped.repeat,
            volume=shaped.volume,
            expires_at=expires_at,
            capped=shaped.detail,
        )

    async def _record(self, order: _Order, planned: _Planned) -> None:
        """Store the announcement, audited in its own transaction, before anything is sent;
        a routine one is checked against the limit there again (concurrent requests,
        other replicas)."""
        request, now, clip = order.request, order.now, planned.clip
        clip_ref = {"id": clip.id, "sha256": clip.sha256, "duration_ms": clip.duration_ms}
        record = AnnouncementRow(
            id=planned.id,
            alarm_id=request.alarm_id,
            site=planned.site,
            requested_by=order.username,
            created_at=now,
            clip=clip_ref,
            priority=planned.priority,
            repeat=planned.repeat,
            volume=planned.volume,
            expires_at=planned.expires_at,
            speakers={s.id: "pending" for s in planned.speakers},
            history=[
                {
                    "speaker": s.id,
                    "state": "pending",
                    "ts": format_ts(now),
                    "detail": planned.capped,
                }
                for s in planned.speakers
            ],
        )
        audit = AuditEntry(
            ts=now,
            username=order.username,
            action="announce",
            alarm_id=request.alarm_id,
            target=planned.id,
            after={
                "site": planned.site,
                "speakers": [s.id for s in planned.speakers],
                "clip": clip_ref,
                "text": request.text,
                "voice": request.voice,
                "priority": planned.priority,
                "repeat": planned.repeat,
                "volume": planned.volume,
                "expires_at": format_ts(planned.expires_at),
            },
            detail=(request.reason or "")[:500],
        )
        quota = self.limits.quota(planned.site, now) if order.routine else None
        try:
            await self.store.announcements.insert(record, audit, routine_limit=quota)
        except RoutineLimitReached as exc:
            raise self.limits.refusal(planned.site, exc.count) from exc

    async def _publish(self, order: _Order, planned: _Planned) -> None:
        """Send to each speaker its own rendering; one the broker did not take is failed."""
        failed: dict[str, tuple[str, str]] = {}
        for speaker in planned.speakers:
            own = planned.clips[speaker.id]
            message = Announce(
                id=planned.id,
                audio=AudioRef(
                    url=audio_url(self.base_url, own),
                    sha256=own.sha256,
                    format=own.format,
                    duration_ms=own.duration_ms,
                ),
                repeat=planned.repeat,
                volume=planned.volume,
                priority=planned.priority,
                alarm_id=order.request.alarm_id,
                requested_by=order.username,
                expires_at=planned.expires_at,
            )
            try:
                await self.link.publish(
                    topics.announce(planned.site, speaker.id),
                    message.model_dump_json().encode(),
                    qos=1,
                )
                self._active[speaker.id] = (planned.id, planned.priority)
            except BrokerUnavailable as exc:
                failed[speaker.id] = ("failed", f"not sent: {exc}")
        if failed:
            await self._apply(planned.id, failed, order.now)

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
            record = await self.store.announcements.get(old_id)
            if record is None or record.speakers.get(speaker.id) not in ACTIVE:
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

    # --- acknowledgements ----------------------------------------------------

    async def on_ack(self, site: str, speaker: str, ack: AnnouncementAck) -> RejectReason | None:
        """Apply a speaker's state; return a rejection reason, or None."""
        record = await self.store.announcements.get(ack.id)
        if record is None and ack.id.startswith(EDGE_AUTO_PREFIX):
            refused = self.edge_warnings.refused(site, speaker, ack.id)
            if refused is not None:
                return refused
            record = await self.edge_warnings.record(site, speaker, ack)
        if record is None:
            return "unknown_announcement"
        if record.site != site:
            return "site_mismatch"
        if speaker not in record.speakers:
            if record.requested_by != EDGE_AUTO or not self.edge_warnings.covers(
                site, speaker, ack.id
            ):
                return "unknown_speaker"
            # The edge plays its warning on every speaker covering the zone, under one id.
            await self.store.announcements.add_speaker(ack.id, speaker, ack.ts)
        moved = await self._apply(ack.id, {speaker: (ack.state, ack.detail)}, ack.ts)
        if not moved:
            # A repeat, or a state behind the one recorded (a late or forged ack).
            return "stale_state"
        if ack.state not in ACTIVE and self._active.get(speaker, ("", 0))[0] == ack.id:
            del self._active[speaker]
        shaped = await self.get(ack.id)
        if shaped is not None:
            self.broadcaster.publish("announcement", shaped)
        return None

    async def _apply(self, ann_id: str, states: dict[str, tuple[str, str]], ts: datetime) -> bool:
        """Move speakers' states forward; False when none moved (nothing is recorded).

        The history gets one step per move, so it holds at most one entry per
        state and speaker, however many acknowledgements arrive.
        """
        async with self.lock:
            record = await self.store.announcements.get(ann_id)
            if record is None:
                return False
            history = list(record.history)
            forward: dict[str, tuple[str, str]] = {}
            for speaker, (state, detail) in states.items():
                current = record.speakers.get(speaker, "pending")
                if RANK[state] > RANK[current]:
                    forward[speaker] = (state, detail)
                    history.append(
                        {"speaker": speaker, "state": state, "ts": format_ts(ts), "detail": detail}
                    )
            if not forward:
                return False
            await self.store.announcements.set_speaker_states(
                ann_id, forward, history, self.clock.now()
            )
            return True

    async def _timed_out(self, ann_id: str, stage: Stage, now: datetime) -> None:
        """Mark the speakers still waiting at ``stage`` failed (``no_ack``)."""
        record = await self.store.announcements.get(ann_id)
        if record is None:
            return
        waiting = ("pending",) if stage == "ack" else ACTIVE
        silent = [s for s, state in record.speakers.items() if state in waiting]
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
        record = await self.store.announcements.get(ann_id)
        return shape(record) if record is not None else None

    async def recent(self, since: datetime) -> list[dict[str, Any]]:
        return [shape(record) for record in await self.store.announcements.since(since)]


def shape(record: AnnouncementRow) -> dict[str, Any]:
    """The console's announcement object."""
    return {
        "id": record.id,
        "alarm_id": record.alarm_id,
        "site": record.site,
        "requested_by": record.requested_by,
        "created_at": format_ts(record.created_at),
        "clip": record.clip,
        "priority": record.priority,
        "repeat": record.repeat,
        "volume": record.volume,
        "expires_at": format_ts(record.expires_at),
        "speakers": record.speakers,
        "history": record.history,
    }
