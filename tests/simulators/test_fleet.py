"""``riverguard sim fleet``: the generated configuration, and a small fleet against a stack."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from edge.sources.frigate import FrigateMessage
from riverguard.config import Config, ConfigError
from riverguard.hub_session import HubSession
from riverguard.services import ServiceError, free_port
from riverguard.stack import Stack
from riverguard.testing import wait_for
from simulators.fleet import Fleet, FleetOptions, select
from simulators.fleet_config import SPEAKER_PORTS, fleet_config
from simulators.frigate import FrigateTrack
from simulators.stack_info import StackInfo
from tests.conftest import stack_logs

SITES, PER_SITE = 2, 50


def _config(text: str) -> Config:
    return Config.model_validate(tomllib.loads(text))


def test_fleet_config_has_n_sites_of_m_devices_with_every_kind() -> None:
    config = _config(fleet_config(3, 1000))
    assert ["s001", "s002", "s003"] == [site.id for site in config.sites]
    per_site = Counter(device.site for device in config.devices)
    assert {"s001": 1000, "s002": 1000, "s003": 1000} == dict(per_site)
    kinds = Counter(
        (d.type, d.source, d.driver) for d in config.devices_of("s002") if d.site == "s002"
    )
    assert {
        ("fence", "generic", None): 640,
        ("camera", "generic", None): 300,
        ("camera", "frigate", None): 50,
        ("speaker", "generic", "mqtt"): 8,
        ("speaker", "generic", "http"): 2,
    } == dict(kinds)
    # One Frigate NVR per site on one broker: each publishes under a prefix of its own.
    prefixes = [site.frigate_topic_prefix for site in config.sites]
    assert ["frigate-s001", "frigate-s002", "frigate-s003"] == prefixes


def _inside(point: tuple[float, float], polygon: list[tuple[float, float]]) -> bool:
    """Whether ``point`` lies inside ``polygon`` (ray casting)."""
    x, y = point
    inside = False
    for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


@pytest.mark.parametrize(("sites", "per_site"), [(3, 20), (2, 1000)])
def test_every_generated_site_has_a_map_with_its_zones_and_devices_drawn_on_land(
    sites: int, per_site: int
) -> None:
    """The console's map page draws a generated site as it draws the demo's."""
    config = _config(fleet_config(sites, per_site))
    banks = set()
    for site in config.sites:
        assert site.map is not None, site.id
        width, height = site.map.width, site.map.height
        banks.add(tuple(site.map.bank))
        assert [0.0, width] == [site.map.bank[0][0], site.map.bank[-1][0]]
        spans = []
        for zone in site.zones:
            assert len(zone.area) >= 3, (site.id, zone.id)
            assert all(0 <= x <= width and 0 <= y <= height for x, y in zone.area)
            # Down to the water, not into it: a corner a unit up from the bank is on land.
            assert not any(_inside((x, y - 1), site.map.water) for x, y in zone.area)
            spans.append((min(x for x, _ in zone.area), max(x for x, _ in zone.area)))
        # Side by side along the bank, none over another.
        assert all(right < left for (_, right), (left, _) in itertools.pairwise(sorted(spans)))
        areas = {zone.id: zone.area for zone in site.zones}
        for device in config.devices_of(site.id):
            assert device.position is not None, device.id
            assert not _inside(device.position, site.map.water), device.id
            if device.type != "speaker":
                assert _inside(device.position, areas[device.zones[0]]), device.id
    # Each site's bank wanders its own way: the maps tell the sites apart.
    assert sites == len(banks)


def test_the_generated_maps_are_the_same_each_time_the_configuration_is_written() -> None:
    def maps() -> list[object]:
        config = _config(fleet_config(4, 20, port=lambda: 21000))
        return [site.map for site in config.sites]

    assert maps() == maps()


def test_http_speakers_listen_outside_the_ephemeral_port_range() -> None:
    """The fleet's own 10,000 outgoing connections must not take a speaker's port."""
    config = _config(fleet_config(4, 500))
    ports = [httpx.URL(d.url or "").port for d in config.devices if d.driver == "http"]
    assert 4 == len(ports)
    assert all(port in SPEAKER_PORTS for port in ports)


def test_each_http_speaker_gets_a_port_of_its_own_when_the_picks_repeat() -> None:
    picks = iter([21000, 21000, 21001, 21000, 21002, 21003])
    config = _config(fleet_config(2, 1000, port=lambda: next(picks)))
    urls = [d.url for d in config.devices if d.driver == "http"]
    assert [f"http://127.0.0.1:{p}/audio" for p in (21000, 21001, 21002, 21003)] == urls


def test_fleet_config_refuses_a_site_too_small_for_a_fence_camera_and_speaker() -> None:
    with pytest.raises(ValueError, match="at least 3 devices"):
        fleet_config(1, 2)


def test_select_takes_the_first_sites_and_devices_and_refuses_more_than_there_are() -> None:
    config = _config(fleet_config(3, 50))
    chosen = select(config, 2, 10)
    assert ["s001", "s002"] == [site.id for site in chosen.sites]
    assert 20 == len(chosen.devices)
    with pytest.raises(ConfigError, match="has 50 devices, not 60"):
        select(config, 1, 60)


@pytest.fixture(scope="module")
def fleet_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own running a generated 2 x 50 fleet configuration (no demo simulators)."""
    directory = tmp_path_factory.mktemp("fleet")
    config = directory / "fleet.toml"
    config.write_text(fleet_config(SITES, PER_SITE), encoding="utf-8")
    stack = Stack(data_dir=directory / "stack", config_path=config, simulators=(), ports=None)
    try:
        stack.start()
    except ServiceError:
        stack.stop()
        raise
    yield stack
    stack.stop()


async def _online(stack: Stack, token: str) -> dict[str, bool | None]:
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=10) as http:
        response = await http.get("/api/devices", headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return {device["id"]: device["online"] for device in response.json()}


def _token(stack: Stack) -> str:
    return HubSession.login(stack.hub_url, "admin", stack.secrets.users["admin"]).access_token


@pytest.mark.integration
async def test_small_fleet_connects_every_device_and_the_hub_sees_them_online(
    fleet_stack: Stack,
) -> None:
    """Every fence, camera and mqtt speaker is online at the hub; a lost device goes
    offline by its will and comes back; the summary and /metrics count what happened."""
    broker = StackInfo.parse(fleet_stack.info()).broker
    metrics_port = free_port()
    options = FleetOptions(noise_scale=0, metrics_port=metrics_port, progress=lambda line: None)
    fleet = Fleet(broker, fleet_stack.config, options)
    reporting = {
        d.id
        for d in fleet_stack.config.devices
        if d.source == "generic" and (d.type != "speaker" or d.driver == "mqtt")
    }
    stop = asyncio.Event()
    run = asyncio.create_task(fleet.run(stop), name="test.fleet")
    token = _token(fleet_stack)

    async def all_online() -> bool:
        online = await _online(fleet_stack, token)
        return all(online[device] is True for device in reporting)

    try:
        await wait_for(all_online, timeout=30, what=f"{len(reporting)} devices online at the hub")
    except TimeoutError:
        raise AssertionError(stack_logs(fleet_stack)) from None
    assert 2 * 47 + 2 == fleet.stats.connections  # fences and cameras, and an NVR a site
    assert fleet.stats.connections == fleet.stats.connected

    lost = fleet.field_devices[0]
    assert lost.link is not None
    lost.link.drop(back_after_s=None)

    async def lost_is_offline() -> bool:
        return (await _online(fleet_stack, token))[lost.device.id] is False

    await wait_for(lost_is_offline, timeout=15, what="the dropped device offline by its will")
    lost.link.come_back()

    async def lost_is_back() -> bool:
        return (await _online(fleet_stack, token))[lost.device.id] is True

    await wait_for(lost_is_back, timeout=15, what="the dropped device back online")

    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    assert f"riverguard_sim_fleet_connected {float(fleet.stats.connections)}" in metrics

    stop.set()
    summary = await run
    assert 1 == summary["drops"]
    assert 1 == summary["reconnects"]
    assert {} == summary["errors"]
    # Each fence and camera said online on connecting, the lost one twice (speakers say their own).
    assert 94 + 1 == summary["sent"]["status_online"]
    assert 0 == summary["connected"]


def test_frigate_tracks_are_what_the_edge_reads_as_frigate_events() -> None:
    """new / update (in zones) / end, each a valid ``frigate/events`` message of one id."""
    track = FrigateTrack("s001_bank_001", label="person")
    messages = [
        FrigateMessage.model_validate(message)
        for message in (
            track.message("new"),
            track.message("update", ["bank_z1"]),
            track.message("end"),
        )
    ]
    assert ["new", "update", "end"] == [m.type for m in messages]
    assert {track.id} == {m.after.id for m in messages}
    assert (["bank_z1"], ["bank_z1"]) == (
        messages[1].after.current_zones,
        messages[2].after.entered_zones,
    )
    assert messages[2].after.end_time is not None


@pytest.mark.integration
async def test_fleet_noise_reaches_the_stack_as_rain_birds_and_frigate_tracks(
    fleet_stack: Stack,
) -> None:
    """With the noise turned far up: fence breaches and bird detections are stored at the
    hub, and the edges read the NVRs' Frigate tracks (and skip them: birds, the path)."""
    broker = StackInfo.parse(fleet_stack.info()).broker
    options = FleetOptions(noise_scale=300, progress=lambda line: None)
    fleet = Fleet(broker, fleet_stack.config, options)
    stop = asyncio.Event()
    run = asyncio.create_task(fleet.run(stop), name="test.fleet.noise")
    token = _token(fleet_stack)
    edges = [edge["health_url"] for edge in fleet_stack.info()["edges"].values()]

    async def events(kind: str) -> list[dict[str, object]]:
        async with httpx.AsyncClient(base_url=fleet_stack.hub_url, timeout=10) as http:
            response = await http.get(
                "/api/events",
                params={"kind": kind, "limit": 1000},
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            found: list[dict[str, object]] = response.json()
            return found

    async def counted(metric: str) -> list[str]:
        """The samples of ``metric`` above 0 on every edge's ``/metrics``."""
        async with httpx.AsyncClient(timeout=10) as http:
            texts = [(await http.get(h.replace("/healthz", "/metrics"))).text for h in edges]
        return [
            line
            for text in texts
            for line in text.splitlines()
            if line.startswith(metric + "{") and float(line.split()[-1]) > 0
        ]

    async def frigate_skipped() -> set[str]:
        """Why the edges made no event of Frigate messages: reasons counted at least once."""
        return {
            line.split('reason="')[1].split('"')[0]
            for line in await counted("riverguard_edge_source_skipped_total")
            if 'source="frigate"' in line
        }

    async def rain_and_birds() -> bool:
        breaches = await events("fence.breach")
        birds = [e for e in await events("camera.intrusion") if e["object"] == "bird"]
        # A bird is not a person; a walker on the path is in no zone the site guards.
        frigate = {"not_person", "unconfigured_zone"} <= await frigate_skipped()
        return bool(breaches) and bool(birds) and frigate

    try:
        await wait_for(rain_and_birds, timeout=30, what="rain, birds and Frigate tracks")
    finally:
        stop.set()
        summary = await run
    assert {"rain", "birds", "frigate_bird", "frigate_person"} <= set(summary["sent"])
    assert summary["drops"] > 0
    # Each site's NVR has a topic prefix of its own: no edge reads another site's cameras.
    rejected = await counted("riverguard_edge_rejected_total")
    assert [] == [line for line in rejected if 'reason="unknown_device"' in line]


@pytest.mark.integration
def test_sim_fleet_command_runs_for_its_duration_and_prints_a_json_summary(
    fleet_stack: Stack,
) -> None:
    command = [sys.executable, "-m", "riverguard", "sim", "fleet"]
    command += ["--config", str(fleet_stack.config_path), "--noise", "0", "--duration", "3"]
    command += ["--stack", str(fleet_stack.data_dir / "stack.json")]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert 0 == done.returncode, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert (2 * PER_SITE, 96, 96) == (
        summary["devices"],
        summary["connections"],
        summary["peak_connected"],
    )
    assert {} == summary["errors"]
    assert "connecting 96 MQTT connections in waves of 500" in done.stderr.decode()
