"""``riverguard sim speakers`` and ``riverguard sim swimmer`` as the stack runs them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from riverguard.services import ManagedProcess, free_port
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import DeviceStatusReport, FenceReport, SpeakerPlay, SpeakerState
from simulators.stack_info import StackInfo
from tests.conftest import Broker
from tests.edge.support import (
    EXAMPLE_CONFIG,
    AudioServer,
    component_env,
    publisher,
    recording,
    riverguard_process,
    wav_bytes,
)

pytestmark = pytest.mark.integration

SPEAKERS = {"danshui-bridge": "db-spk-01", "xiyong-wharf": "xy-spk-01"}


@pytest.fixture
def speakers_process(own_broker: Broker, tmp_path: Path) -> Iterator[ManagedProcess]:
    env = component_env(own_broker.settings("sim"), tmp_path, RIVERGUARD_SPEAKER_SPEED="50")
    process = riverguard_process("sim-speakers", ["sim", "speakers"], env, tmp_path / "sim.log")
    process.start()
    yield process
    process.stop()


async def test_sim_speakers_serves_every_mqtt_speaker_and_dies_with_a_will(
    own_broker: Broker, speakers_process: ManagedProcess, audio_server: AudioServer
) -> None:
    statuses = [topics.field_status(site, "speaker", spk) for site, spk in SPEAKERS.items()]
    state = topics.speaker_state("xiyong-wharf", "xy-spk-01")
    ref = audio_server.add("w.wav", wav_bytes(200))
    async with recording(own_broker.settings("sim"), *statuses, state) as view:
        for status in statuses:
            try:
                await view.wait_count(status, 1, timeout=15)
            except TimeoutError:
                raise AssertionError(speakers_process.log_tail()) from None
            assert [{"online": True}] == [json.loads(p) for p in view.on(status)]
        play = SpeakerPlay(id="p1", url=ref.url, sha256=ref.sha256, volume=50, repeat=1)
        async with publisher(own_broker.settings("edge-xiyong-wharf")) as edge:
            await edge.publish(
                topics.speaker_play("xiyong-wharf", "xy-spk-01"), play.model_dump_json(), qos=1
            )
        await view.wait_count(state, 2)
        assert ["playing", "done"] == [
            SpeakerState.model_validate_json(p).state for p in view.on(state)
        ]
        speakers_process.kill()
        for status in statuses:
            await view.wait_count(status, 2)
            assert {"online": False} == json.loads(view.on(status)[-1])


async def test_sim_swimmer_visits_a_site_and_exits(own_broker: Broker, tmp_path: Path) -> None:
    """Without a hub nobody answers: the swimmer gives up (60 s at 60x speed) and leaves."""
    env = component_env(own_broker.settings("sim"), tmp_path, RIVERGUARD_SWIMMER_SPEED="60")
    args = ["sim", "swimmer", "--site", "xiyong-wharf", "--zone", "z2"]
    process = riverguard_process("sim-swimmer", args, env, tmp_path / "swimmer.log")
    fence = topics.field_report("xiyong-wharf", "fence", "xy-fence-02")
    async with recording(own_broker.settings("sim"), fence) as view:
        process.start()
        try:
            assert process.process is not None
            # Waiting for a child process blocks: keep the event loop (and the recorder) running.
            code = await asyncio.to_thread(process.process.wait, 20)
            assert 0 == code, process.log_tail()
            await view.wait_count(fence, 2)
        finally:
            process.stop()
    reports = [FenceReport.model_validate_json(p) for p in view.on(fence)]
    assert ["breach", "clear"] == [report.state for report in reports]
    assert '"no announcement came; swimmer leaves anyway"' in process.log_path.read_text()


async def test_sim_swimmer_brings_every_fence_and_camera_online_with_heartbeats(
    own_broker: Broker, tmp_path: Path
) -> None:
    """Devices the swimmer never touches are online too; its death marks them all offline."""
    site = "xiyong-wharf"
    env = component_env(
        own_broker.settings("sim"),
        tmp_path,
        RIVERGUARD_SWIMMER_SPEED="0.01",  # the swimmer stays in z1 throughout
        RIVERGUARD_DEVICE_HEARTBEAT_S="0.2",
    )
    args = ["sim", "swimmer", "--site", site, "--loop"]
    process = riverguard_process("sim-swimmer", args, env, tmp_path / "swimmer.log")
    devices = [("fence", "xy-fence-01"), ("fence", "xy-fence-02")]
    devices += [("camera", "xy-cam-01"), ("camera", "xy-cam-02")]
    statuses = [topics.field_status(site, kind, device) for kind, device in devices]

    def all_offline() -> bool:
        last = [DeviceStatusReport.model_validate_json(view.on(s)[-1]) for s in statuses]
        return not any(report.online for report in last)

    async with recording(own_broker.settings("sim"), *statuses) as view:
        process.start()
        try:
            for status in statuses:
                try:
                    await view.wait_count(status, 3, timeout=15)  # online and two heartbeats
                except TimeoutError:
                    raise AssertionError(process.log_tail()) from None
                reports = [DeviceStatusReport.model_validate_json(p) for p in view.on(status)]
                assert all(r.online and r.battery and r.rssi for r in reports), status
            process.kill()
            await wait_for(all_offline, what="the last will of every device")
        finally:
            process.stop()


async def test_sim_speakers_serves_configured_http_speakers(
    own_broker: Broker, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "with-http.toml"
    config.write_text(
        EXAMPLE_CONFIG.read_text(encoding="utf-8")
        + "\n[[devices]]\n"
        + 'id = "db-spk-http"\nsite = "danshui-bridge"\ntype = "speaker"\ndriver = "http"\n'
        + f'url = "http://127.0.0.1:{port}/audio"\nzones = ["z1"]\n',
        encoding="utf-8",
    )
    env = component_env(
        own_broker.settings("sim"),
        tmp_path,
        RIVERGUARD_CONFIG=str(config),
        RIVERGUARD_SPEAKER_SPEED="100",
    )
    process = riverguard_process("sim-speakers", ["sim", "speakers"], env, tmp_path / "sim.log")
    process.start()
    try:

        async def played() -> bool:
            try:
                async with httpx.AsyncClient() as http:
                    response = await http.post(
                        f"http://127.0.0.1:{port}/audio",
                        content=b"\x7f" * 8000,
                        headers={"Content-Type": "audio/basic"},
                    )
            except httpx.TransportError:
                return False
            return response.status_code == 204

        try:
            await wait_for(played, timeout=15, what="the http speaker played")
        except TimeoutError:
            raise AssertionError(process.log_tail()) from None
    finally:
        process.stop()


def test_stack_info_takes_the_plain_listener_of_a_stack_json_with_a_tls_one() -> None:
    """PROTOCOL 6: ``broker`` also names the TLS listener; simulators use the plain one."""
    broker = {"host": "127.0.0.1", "port": 1883, "username": "sim", "password": "pw"}
    raw = {
        "hub_url": "http://127.0.0.1:8080",
        "broker": broker | {"tls_port": 8883, "ca_file": "/nowhere/ca.crt"},
    }
    info = StackInfo.parse(raw)
    assert (1883, False, None) == (info.broker.port, info.broker.tls, info.broker.ca_file)
