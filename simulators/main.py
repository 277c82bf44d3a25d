"""``riverguard sim speakers|swimmer``: the simulators' entry points (blocking)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any

import httpx
import structlog

from riverguard.config import Config
from riverguard.mqtt import Backoff
from riverguard.mqtt_client import MqttError
from simulators.console_watch import ConsoleWatch
from simulators.errors import SimulatorError
from simulators.http_speaker import HttpSpeakerSim
from simulators.settings import SimSettings
from simulators.speaker import SimulatedSpeaker
from simulators.swimmer import SwimmerTimings, run_swimmer

log = structlog.get_logger()


def speakers(settings: SimSettings, site: str | None) -> None:
    """One simulated ``mqtt`` speaker per configured one of ``site`` (default: every site)."""
    asyncio.run(_until_signal(run_speakers(settings, settings.load_config(), site)))


def swimmer(
    settings: SimSettings,
    site: str | None,
    zone: str | None,
    loop: bool,
    wait_for_console: bool = False,
) -> None:
    """The swimmer scenario; with ``loop`` forever, alternating sites; with
    ``wait_for_console`` each visit waits for someone at the console (``settings.demo_hub``)."""
    watch = None
    if wait_for_console:
        if settings.demo_hub is None:
            raise SimulatorError(
                "--wait-for-console needs the hub and a login to it: RIVERGUARD_DEMO_HUB__URL, "
                "RIVERGUARD_DEMO_HUB__USERNAME, RIVERGUARD_DEMO_HUB__PASSWORD"
            )
        hub = settings.demo_hub
        watch = ConsoleWatch(hub.url, hub.username, hub.password.get_secret_value())
    config = settings.load_config()
    try:
        swim = _swimmer(settings, config, site=site, zone=zone, loop=loop, watch=watch)
        asyncio.run(_until_signal(swim))
    except* SimulatorError as group:
        raise _first_leaf(group) from None


def _first_leaf(group: BaseExceptionGroup[SimulatorError]) -> SimulatorError:
    """The first error of a (nested) group, for a one-line message."""
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


async def run_speakers(settings: SimSettings, config: Config, site: str | None) -> None:
    """Simulated ``mqtt`` speakers, and ``http`` ones listening on their configured URLs."""
    speakers = [
        device
        for device in config.devices
        if device.type == "speaker" and (site is None or device.site == site)
    ]
    devices = [device for device in speakers if device.driver == "mqtt"]
    http_devices = [device for device in speakers if device.driver == "http" and device.url]
    if site is not None:
        config.site(site)  # ConfigError for an unknown site, rather than no speakers
    log.info(
        "simulated speakers",
        speakers=[d.id for d in devices],
        http_speakers=[d.id for d in http_devices],
        speed=settings.speaker_speed,
    )
    async with httpx.AsyncClient(timeout=10) as http, asyncio.TaskGroup() as tg:
        for device in http_devices:
            url = httpx.URL(device.url or "")
            http_speaker = HttpSpeakerSim(
                device.id,
                url.host,
                url.port or 80,
                url.path or "/",
                speed=settings.speaker_speed,
            )
            tg.create_task(http_speaker.run(), name=f"sim.http-speaker[{device.id}]")
        for device in devices:
            speaker = SimulatedSpeaker(
                settings.broker,
                device.site,
                device.id,
                http,
                settings.speaker_speed,
                heartbeat_s=settings.device_heartbeat_s,
            )
            tg.create_task(speaker.run(), name=f"sim.speaker[{device.id}]")


async def _swimmer(
    settings: SimSettings,
    config: Config,
    *,
    site: str | None,
    zone: str | None,
    loop: bool,
    watch: ConsoleWatch | None,
) -> None:
    timings = SwimmerTimings(heartbeat_s=settings.device_heartbeat_s).scaled(settings.swimmer_speed)
    backoff = Backoff(initial=1.0, cap=30.0)
    while True:
        try:
            visits = await run_swimmer(
                settings.broker,
                config,
                site,
                zone,
                loop=loop,
                timings=timings,
                before_visit=watch.wait if watch else None,
            )
        except* MqttError as group:
            if not loop:
                raise
            delay = backoff.next_delay()
            log.warning("swimmer lost the broker", error=str(group.exceptions[0]), retry_in_s=delay)
            await asyncio.sleep(delay)
        else:
            log.info("swimmer finished", visits=len(visits), warned=sum(v.warned for v in visits))
            return


async def _until_signal(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` until it returns or SIGTERM/SIGINT arrives."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await main
    except asyncio.CancelledError:
        log.info("simulator stopped")
