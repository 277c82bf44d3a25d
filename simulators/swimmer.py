"""The swimmer scenario: a person climbs the fence, enters the water, is warned, leaves.

For one site and zone: the fence covering the zone reports ``breach``; about
1.5 s later a camera covering the zone reports ``water_entry`` with a
snapshot, and again every ~5 s while the person stays; when one of the site's
speakers reports ``done`` (an announcement was played) the person leaves a few
seconds later (fence ``clear``). With no announcement within ~60 s the person
leaves anyway.

Every fence and camera of the visited sites is connected for the whole run,
not only those the swimmer passes: each says it is online (retained, with
battery and signal strength, last will offline) and repeats that status every
``heartbeat_s``, so a console shows the whole site online. Each camera's
snapshot is rendered once at start (``simulators.snapshot``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import structlog
from pydantic import ValidationError

from riverguard.config import Config, Site
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.mqtt_client import Client, Subscription
from riverguard.wire import topics
from riverguard.wire.models import SpeakerState
from riverguard.wire.topics import FieldTopic, TopicError
from simulators.devices import CameraSim, FenceSim
from simulators.errors import ScenarioError
from simulators.snapshot import render_snapshots

log = structlog.get_logger()


@dataclass(frozen=True)
class SwimmerTimings:
    camera_delay_s: float = 1.5
    detection_every_s: float = 5.0
    leave_after_done_s: float = 3.0
    give_up_s: float = 60.0
    pause_s: tuple[float, float] = (20.0, 30.0)
    # Devices repeat their retained status this often (not scaled by speed).
    heartbeat_s: float = 30.0

    def scaled(self, speed: float) -> SwimmerTimings:
        """All waits but the heartbeat divided by ``speed``."""
        return SwimmerTimings(
            self.camera_delay_s / speed,
            self.detection_every_s / speed,
            self.leave_after_done_s / speed,
            self.give_up_s / speed,
            (self.pause_s[0] / speed, self.pause_s[1] / speed),
            self.heartbeat_s,
        )


@dataclass
class Visit:
    """What happened on one visit, for logs and tests."""

    site: str
    zone: str
    fence: str
    camera: str
    reports: list[str] = field(default_factory=list)  # "<device>:<seq>", as event ids
    warned: bool = False


@dataclass
class _Stage:
    """Devices and the speakers' watch for one site and zone."""

    site: Site
    zone: str
    fence: FenceSim
    camera: CameraSim
    speakers: list[str]


class SpeakerWatch:
    """Which sites' speakers reported ``done`` since a visit began."""

    def __init__(self) -> None:
        self._done: dict[str, asyncio.Event] = {}

    def expect(self, site: str) -> asyncio.Event:
        event = asyncio.Event()
        self._done[site] = event
        return event

    async def run(self, client: Client) -> None:
        while True:
            for message in await client.next_batch(100):
                self._heard(message.topic, message.payload)

    def _heard(self, topic_name: str, payload: bytes) -> None:
        try:
            topic = topics.parse(topic_name)
            if not isinstance(topic, FieldTopic):
                return
            state = SpeakerState.model_validate_json(payload)
        except (TopicError, ValidationError):
            return
        if state.state == "done" and topic.site in self._done:
            log.info("swimmer heard the speaker", site=topic.site, speaker=topic.device)
            self._done[topic.site].set()


class _Finished(Exception):
    """Ends the scenario's TaskGroup once the visits are over."""


def plan_stage(config: Config, site_id: str, zone: str | None) -> tuple[Site, str, str, str]:
    """The site, zone, fence and camera of a visit; ``ScenarioError`` if there are none."""
    site = config.site(site_id)
    zone_id = zone or site.zones[0].id
    if zone_id not in site.zone_ids:
        raise ScenarioError(f"{site.id} has no zone {zone_id}")
    fences = [d.id for d in config.devices_of(site.id, "fence") if zone_id in d.zones]
    cameras = [d.id for d in config.devices_of(site.id, "camera") if zone_id in d.zones]
    if not fences or not cameras:
        raise ScenarioError(f"{site.id}/{zone_id} needs a fence and a camera covering it")
    return site, zone_id, fences[0], cameras[0]


async def run_swimmer(
    broker: BrokerSettings,
    config: Config,
    site: str | None = None,
    zone: str | None = None,
    *,
    loop: bool = False,
    timings: SwimmerTimings | None = None,
    stop: asyncio.Event | None = None,
    render: bool = True,
    before_visit: Callable[[asyncio.Event], Awaitable[None]] | None = None,
) -> list[Visit]:
    """Visit each site in turn (or ``site``) once, or forever with ``loop``.

    With ``render`` each camera attaches a synthetic snapshot rendered by
    ffmpeg; without, the 1x1 ``TINY_JPEG``. ``before_visit(stop)`` is awaited
    before each visit (the demo's wait for someone at the console,
    ``simulators.console_watch``); it returns early when ``stop`` is set.
    """
    timings = timings or SwimmerTimings()
    stop = stop or asyncio.Event()
    site_ids = [site] if site else [s.id for s in config.sites]
    plans = [plan_stage(config, site_id, zone) for site_id in site_ids]
    visits: list[Visit] = []
    site_objs = [config.site(site_id) for site_id in site_ids]
    fence_ids = [d.id for s in site_objs for d in config.devices_of(s.id, "fence")]
    camera_ids = [d.id for s in site_objs for d in config.devices_of(s.id, "camera")]
    # ffmpeg renders in threads; a few hundred ms for a few cameras.
    snapshots = await render_snapshots(camera_ids) if render else {}
    async with AsyncExitStack() as stack:
        fences: dict[str, FenceSim] = {}
        cameras: dict[str, CameraSim] = {}
        for device_id in fence_ids:
            device = config.device_by_id[device_id]
            fences[device_id] = await stack.enter_async_context(
                FenceSim(broker, device.site, device_id)
            )
        for device_id in camera_ids:
            device = config.device_by_id[device_id]
            camera = CameraSim(broker, device.site, device_id)
            if device_id in snapshots:
                camera.snapshot = snapshots[device_id]
            cameras[device_id] = await stack.enter_async_context(camera)
        log.info("simulated devices online", fences=fence_ids, cameras=camera_ids)
        stages = []
        for site_obj, zone_id, fence_id, camera_id in plans:
            speakers = [d.id for d in config.devices_of(site_obj.id, "speaker")]
            stages.append(_Stage(site_obj, zone_id, fences[fence_id], cameras[camera_id], speakers))
        watcher = await stack.enter_async_context(make_client(broker))
        speaker_states = [
            Subscription(topics.speaker_state(s.site.id, speaker))
            for s in stages
            for speaker in s.speakers
        ]
        if speaker_states:
            await watcher.subscribe(speaker_states)
        watch = SpeakerWatch()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(watch.run(watcher), name="sim.swimmer.watch")
                for sim in [*fences.values(), *cameras.values()]:
                    tg.create_task(
                        sim.heartbeat(timings.heartbeat_s),
                        name=f"sim.swimmer.heartbeat[{sim.device}]",
                    )
                tg.create_task(
                    _visits(
                        stages,
                        watch=watch,
                        timings=timings,
                        loop=loop,
                        stop=stop,
                        visits=visits,
                        before_visit=before_visit,
                    ),
                    name="sim.swimmer.visits",
                )
        except* _Finished:
            pass
    return visits


async def _visits(
    stages: Sequence[_Stage],
    *,
    watch: SpeakerWatch,
    timings: SwimmerTimings,
    loop: bool,
    stop: asyncio.Event,
    visits: list[Visit],
    before_visit: Callable[[asyncio.Event], Awaitable[None]] | None = None,
) -> None:
    round_ = 0
    while not stop.is_set():
        if before_visit is not None:
            await before_visit(stop)
            if stop.is_set():
                break
        stage = stages[round_ % len(stages)]
        visits.append(await _visit(stage, watch, timings, stop))
        round_ += 1
        if not loop and round_ >= len(stages):
            break
        pause = random.uniform(*timings.pause_s)
        log.info("swimmer pauses", seconds=round(pause, 1))
        await _wait(stop, pause)
    raise _Finished


async def _visit(
    stage: _Stage, watch: SpeakerWatch, timings: SwimmerTimings, stop: asyncio.Event
) -> Visit:
    site, zone = stage.site.id, stage.zone
    visit = Visit(site, zone, stage.fence.device, stage.camera.device)
    done = watch.expect(site)
    log.info("swimmer arrives", site=site, zone=zone)
    report = await stage.fence.report(zone, "breach")
    visit.reports.append(f"{stage.fence.device}:{report['seq']}")
    await _wait(stop, timings.camera_delay_s)
    report = await stage.camera.detect(zone, "water_entry")
    visit.reports.append(f"{stage.camera.device}:{report['seq']}")
    log.info("swimmer in the water", site=site, zone=zone)
    deadline = time.monotonic() + timings.give_up_s
    while not done.is_set() and not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await _wait(done, min(timings.detection_every_s, left))
        if not done.is_set() and time.monotonic() < deadline and not stop.is_set():
            report = await stage.camera.detect(zone, "water_entry", attach=False)
            visit.reports.append(f"{stage.camera.device}:{report['seq']}")
    visit.warned = done.is_set()
    if visit.warned:
        log.info("swimmer was warned and will leave", site=site, zone=zone)
        await _wait(stop, timings.leave_after_done_s)
    else:
        log.warning("no announcement came; swimmer leaves anyway", site=site, zone=zone)
    report = await stage.fence.report(zone, "clear")
    visit.reports.append(f"{stage.fence.device}:{report['seq']}")
    log.info("swimmer left", site=site, zone=zone, warned=visit.warned)
    return visit


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``event`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
