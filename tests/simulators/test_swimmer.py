"""The swimmer scenario drives a real edge and speaker: warned when an announcement plays."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from edge.agent import EdgeAgent
from riverguard.config import Config
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import AudioRef, Event
from simulators.errors import ScenarioError
from simulators.speaker import SimulatedSpeaker
from simulators.swimmer import SwimmerTimings, Visit, plan_stage, run_swimmer
from tests.conftest import Broker
from tests.edge.support import (
    AudioServer,
    Recorder,
    announce,
    background,
    edge_settings,
    jpeg_size,
    keyed,
    publisher,
    recording,
    running_edge,
    wav_bytes,
)

SITE = "danshui-bridge"
SPEAKER = "db-spk-01"
EVENTS = topics.events(SITE)
FAST = SwimmerTimings(
    camera_delay_s=0.05,
    detection_every_s=0.2,
    leave_after_done_s=0.05,
    give_up_s=10.0,
    pause_s=(0.05, 0.1),
)


async def _duty_officer(
    view: Recorder, hub_broker: Broker, audio: AudioRef, answered: asyncio.Event
) -> None:
    """Acts as the hub: announces on the site's speaker at the first critical event."""
    async with publisher(hub_broker.settings("hub")) as hub:
        await wait_for(
            lambda: any(
                Event.model_validate_json(p).severity == "critical" for p in view.on(EVENTS)
            ),
            timeout=10,
            what="a critical event",
        )
        message = announce("ann-swimmer", audio).model_dump_json()
        await hub.publish(topics.announce(SITE, SPEAKER), message, qos=1)
        answered.set()


def test_stage_is_the_first_zone_with_its_fence_and_camera(example_config: Config) -> None:
    site, zone, fence, camera = plan_stage(example_config, SITE, None)
    assert (SITE, "z1", "db-fence-01", "db-cam-01") == (site.id, zone, fence, camera)
    assert ("z2", "db-fence-02", "db-cam-02") == plan_stage(example_config, SITE, "z2")[1:]


def test_zone_without_devices_is_refused(example_config: Config) -> None:
    with pytest.raises(ScenarioError):
        plan_stage(example_config, SITE, "z9")


@pytest.mark.integration
async def test_swimmer_is_warned_by_an_announcement_and_leaves(
    own_broker: Broker, tmp_path: Path, example_config: Config, audio_server: AudioServer
) -> None:
    audio = audio_server.add("warning.wav", wav_bytes(300))
    agent = EdgeAgent(
        edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path, hub_url=audio_server.hub_url),
        example_config,
    )
    answered = asyncio.Event()
    async with httpx.AsyncClient() as http:
        speaker = SimulatedSpeaker(own_broker.settings("sim"), SITE, SPEAKER, http, speed=20)
        async with (
            recording(own_broker.settings("hub"), EVENTS, topics.snapshot(SITE, "+")) as view,
            running_edge(agent),
            background(speaker.run(), "test.speaker"),
            background(_duty_officer(view, own_broker, audio, answered), "test.officer"),
        ):
            await wait_for(speaker.ready.is_set, what="speaker ready")
            [visit] = await run_swimmer(
                own_broker.settings("sim"), example_config, SITE, loop=False, timings=FAST
            )
            assert answered.is_set()
            assert visit.warned
            await view.wait_count(EVENTS, len(visit.reports))
    events = [Event.model_validate_json(p) for p in view.on(EVENTS)]
    assert keyed(agent, *visit.reports) == [event.id for event in events]
    breach, water, *repeats, clear = events
    assert ("fence.breach", "warning", "z1") == (breach.kind, breach.severity, breach.zone)
    assert ("camera.water_entry", "critical") == (water.kind, water.severity)
    assert water.snapshot
    [jpeg] = view.on(topics.snapshot(SITE, water.id))
    assert (640, 360) == jpeg_size(jpeg)  # the rendered scene, not a 1x1 pixel
    assert [breach.id] == water.attrs["correlated"]
    assert all(event.kind == "camera.water_entry" for event in repeats)
    assert ("fence.clear", "info") == (clear.kind, clear.severity)
    assert ["ann-swimmer"] == speaker.played


@pytest.mark.integration
async def test_unwarned_swimmer_leaves_anyway_and_loop_alternates_sites(
    own_broker: Broker, example_config: Config
) -> None:
    timings = SwimmerTimings(
        camera_delay_s=0.01,
        detection_every_s=0.1,
        leave_after_done_s=0.01,
        give_up_s=0.3,
        pause_s=(0.01, 0.02),
    )
    stop = asyncio.Event()
    fences = "field/+/fence/+"
    result: list[list[Visit]] = []

    async def swim() -> None:
        result.append(
            await run_swimmer(
                own_broker.settings("sim"), example_config, loop=True, timings=timings, stop=stop
            )
        )

    async with (
        recording(own_broker.settings("sim"), fences) as view,
        background(swim(), "test.swimmer") as task,
    ):
        # Two visits per site: breach and clear each.
        await wait_for(lambda: len(view.messages) >= 8, what="four visits")
        stop.set()
        await asyncio.wait_for(task, 5)
    visits = result[0]
    assert len(visits) >= 4
    assert not any(visit.warned for visit in visits)
    assert ["danshui-bridge", "xiyong-wharf"] * 2 == [visit.site for visit in visits[:4]]
    assert ["db-fence-01", "xy-fence-01"] == sorted({v.fence for v in visits})


@pytest.mark.integration
async def test_no_swimmer_comes_until_before_visit_lets_it(
    own_broker: Broker, example_config: Config
) -> None:
    """The demo's wait (``before_visit``) is asked before every visit, the first included."""
    asked: list[int] = []
    let_in = asyncio.Semaphore(0)
    stop = asyncio.Event()

    async def before_visit(stopping: asyncio.Event) -> None:
        asked.append(len(view.messages))
        await let_in.acquire()

    async def swim() -> None:
        await run_swimmer(
            own_broker.settings("sim"),
            example_config,
            loop=True,
            timings=SwimmerTimings(give_up_s=0.3, pause_s=(0.01, 0.02)),
            stop=stop,
            render=False,
            before_visit=before_visit,
        )

    async with (
        recording(own_broker.settings("sim"), "field/+/fence/+") as view,
        background(swim(), "test.swimmer") as task,
    ):
        await wait_for(lambda: len(asked) == 1, what="the first wait")
        assert [] == view.messages
        let_in.release()
        # Unwarned, the swimmer gives up after give_up_s: breach, then clear.
        await wait_for(lambda: len(asked) == 2, what="the second wait")
        await wait_for(lambda: len(view.messages) == 2, what="the first visit's breach and clear")
        assert ["breach", "clear"] == [json.loads(m.payload)["state"] for m in view.messages]
        assert 0 == asked[0]
        stop.set()
        let_in.release()
        await asyncio.wait_for(task, 10)
    assert 2 == len(view.messages), "no second visit after stop"
