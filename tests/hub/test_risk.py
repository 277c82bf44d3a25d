"""Four-colour site risk: the pure rules, and a real hub pushing and recording it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import httpx
import pytest

from hub.clock import ManualClock
from hub.picture import DeviceState, Picture
from hub.risk import assess_site
from hub.store import DeviceRow, EdgeRow
from riverguard.config import Config
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import Alarm
from riverguard.wire.times import format_ts, utcnow
from tests.conftest import EXAMPLE_CONFIG
from tests.hub.conftest import (
    SITE,
    MakeSettings,
    RunningHub,
    event_payload,
    mqtt_inbox,
    one_zone_site,
    run_hub,
    unique_seq,
    ws_inbox,
)

SUMMER_EVENING_UTC = datetime(2026, 7, 27, 11, 30, tzinfo=UTC)  # 19:30 in Shanghai
WINTER_NOON_UTC = datetime(2026, 1, 14, 4, 0, tzinfo=UTC)

SITE_DB = one_zone_site(
    risk_rate_events=5,
    risk_schedule=[
        {
            "name": "summer evenings",
            "colour": "yellow",
            "start": "06-01",
            "end": "09-30",
            "from_hour": 17,
            "to_hour": 22,
        },
        {"name": "night", "colour": "yellow", "from_hour": 22, "to_hour": 5},
    ],
)


def _alarm(severity: str) -> Alarm:
    return Alarm.model_validate(
        {
            "id": "alm-1",
            "site": "danshui-bridge",
            "zone": "z1",
            "state": "open",
            "severity": severity,
            "opened_at": WINTER_NOON_UTC,
            "updated_at": WINTER_NOON_UTC,
            "event_count": 1,
            "event_ids": ["e"],
            "last_event_id": "e",
        }
    )


def test_quiet_site_is_blue_and_a_summer_evening_makes_it_yellow() -> None:
    assert "blue" == assess_site(SITE_DB, [], [], 0, WINTER_NOON_UTC).colour
    summer = assess_site(SITE_DB, [], [], 0, SUMMER_EVENING_UTC)
    assert ("yellow", ("schedule:summer evenings",)) == (summer.colour, summer.reasons)


def test_schedule_hours_wrap_midnight() -> None:
    late = datetime(2026, 1, 14, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    assert "yellow" == assess_site(SITE_DB, [], [], 0, late).colour


@pytest.mark.parametrize(
    ("severity", "unguarded", "events", "colour"),
    [
        ("warning", [], 0, "orange"),
        ("critical", [], 0, "red"),
        (None, ["z1"], 0, "yellow"),
        ("warning", ["z1"], 0, "red"),
        (None, [], 5, "yellow"),
        (None, [], 4, "blue"),
        (None, ["z1"], 5, "orange"),
        ("critical", ["z1"], 5, "red"),
    ],
)
def test_alarms_coverage_and_event_rate_each_move_the_colour(
    severity: str | None, unguarded: list[str], events: int, colour: str
) -> None:
    active = [_alarm(severity)] if severity else []
    assert colour == assess_site(SITE_DB, active, unguarded, events, WINTER_NOON_UTC).colour


@pytest.mark.integration
async def test_offline_fence_leaves_its_zone_unguarded_pushed_and_recorded(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    token = await running_hub.token("viewer")
    async with running_hub.socket(token) as ws, ws_inbox(ws) as console:
        await console.wait_for(lambda m: m["type"] == "hello")
        for online in (False, True):
            await edge.publish(
                topics.device_status(SITE, "db-fence-02"),
                json.dumps({"online": online, "ts": format_ts(utcnow())}).encode(),
                qos=1,
            )
        offline = await console.wait_for(
            lambda m: m["type"] == "site" and m["data"]["unguarded"] == ["z2"]
        )
        back = await console.wait_for(lambda m: m["type"] == "site" and m["seq"] > offline["seq"])
    sites = (await running_hub.http.get("/api/sites", headers=await running_hub.auth())).json()

    assert ("yellow", ["unguarded"]) == (offline["data"]["risk"], offline["data"]["risk_reasons"])
    assert {"z2": [{"kind": "device", "device": "db-fence-02"}]} == offline["data"][
        "unguarded_reasons"
    ]
    assert ("blue", [], {}) == (
        back["data"]["risk"],
        back["data"]["unguarded"],
        back["data"]["unguarded_reasons"],
    )
    assert ("blue", [], {}) == (
        sites[0]["risk"],
        sites[0]["unguarded"],
        sites[0]["unguarded_reasons"],
    )

    settings = running_hub.settings

    async def recorded() -> list[list[object]]:
        async with httpx.AsyncClient() as http:
            response = await http.get(
                f"{settings.influx_url}/query",
                params={
                    "db": settings.influx_database,
                    "q": "SELECT colour, unguarded FROM site_risk WHERE site = 'danshui-bridge'",
                },
            )
        series = response.json()["results"][0].get("series", [])
        return [row[1:] for row in series[0]["values"]] if series else []

    async def three_points() -> bool:
        return len(await recorded()) >= 3

    await wait_for(three_points, what="site_risk points")
    # At start-up, then each change.
    assert [["blue", ""], ["yellow", "z2"], ["blue", ""]] == await recorded()


@pytest.mark.integration
async def test_a_burst_of_events_raises_the_colour_until_the_window_passes(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    """Events that open no alarm (fence.clear) still count towards the event rate."""
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        "correlation_window_s = 30",
        "correlation_window_s = 30\nrisk_rate_events = 3\nrisk_window_s = 60",
    )
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    clock = ManualClock()
    async with run_hub(make_settings(config=config), clock) as running:
        token = await running.token("viewer")
        async with running.socket(token) as ws, ws_inbox(ws) as console:
            await console.wait_for(lambda m: m["type"] == "hello")
            events = [
                event_payload(unique_seq(), kind="fence.clear", severity="info") for _ in range(3)
            ]
            async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
                for event in events:
                    await edge.publish(topics.events(SITE), json.dumps(event).encode(), qos=1)
                await wait_for(lambda: sum(len(m[1]["ids"]) for m in acks.items) >= 3, what="acks")
            raised = await console.wait_for(
                lambda m: m["type"] == "site" and m["data"]["id"] == SITE
            )
            clock.advance(61)
            calmed = await console.wait_for(
                lambda m: m["type"] == "site" and m["seq"] > raised["seq"]
            )
    assert ("yellow", ["event_rate"]) == (raised["data"]["risk"], raised["data"]["risk_reasons"])
    assert ("blue", []) == (calmed["data"]["risk"], calmed["data"]["risk_reasons"])


def test_unguarded_zones_follow_loaded_and_later_statuses(example_config: Config) -> None:
    picture = Picture(example_config)
    fence = example_config.device_by_id["db-fence-02"]
    picture.load([], [DeviceRow(fence.id, fence.site, False, None, None, None, None)], [])
    assert fence.zones == picture.unguarded(fence.site)
    picture.set_status(fence.id, DeviceState(online=True))
    assert [] == picture.unguarded(fence.site)
    picture.set_status(fence.id, DeviceState(online=False))
    speaker = next(d for d in example_config.devices if d.type == "speaker")
    picture.set_status(speaker.id, DeviceState(online=False))  # a speaker guards no zone
    assert fence.zones == picture.unguarded(fence.site)


def test_an_edge_not_online_leaves_every_zone_of_its_site_unguarded(
    example_config: Config,
) -> None:
    """The hub hears none of the site's fences and cameras then: no zone is known guarded."""
    picture = Picture(example_config)
    site = example_config.sites[0]
    every_zone = sorted(zone.id for zone in site.zones)
    seen = datetime(2026, 7, 1, 12, tzinfo=UTC)
    picture.load([], [], [EdgeRow(site.id, True, "1", 0, seen, state="online")])
    assert [] == picture.unguarded(site.id)
    for state in ("offline", "stopped"):
        picture.edges[site.id] = EdgeRow(site.id, False, "1", 0, seen, state=state)
        assert every_zone == picture.unguarded(site.id)
        assessment = picture.assess(site.id)
        assert "unguarded" in assessment.reasons
    picture.edges[site.id] = EdgeRow(site.id, True, "1", 0, seen, state="online")
    assert [] == picture.unguarded(site.id)


def test_each_unguarded_zone_says_why_and_a_new_reason_is_pushed_as_a_change(
    example_config: Config,
) -> None:
    """The edge first, then each offline fence or camera covering the zone; a second
    device down in a zone already unguarded changes what a ``site`` message shows."""
    picture = Picture(example_config)
    site = "danshui-bridge"
    edge_down = {"kind": "edge", "device": None}
    fence = {"kind": "device", "device": "db-fence-02"}
    camera = {"kind": "device", "device": "db-cam-02"}
    picture.set_status("db-spk-01", DeviceState(online=False))  # a speaker guards no zone
    assert {} == picture.unguarded_reasons(site)
    picture.set_status("db-fence-02", DeviceState(online=False))
    fence_only = picture.risk_state(site)
    assert {"z2": [fence]} == picture.unguarded_reasons(site)
    picture.set_status("db-cam-02", DeviceState(online=False))
    assert {"z2": [camera, fence]} == picture.unguarded_reasons(site)
    assert fence_only != picture.risk_state(site)
    seen = datetime(2026, 7, 1, 12, tzinfo=UTC)
    picture.edges[site] = EdgeRow(site, False, "1", 0, seen, state="offline")
    assert {"z1": [edge_down], "z2": [edge_down, camera, fence]} == picture.unguarded_reasons(site)
    assert picture.unguarded(site) == list(picture.unguarded_reasons(site))
    assert picture.unguarded_reasons(site) == picture.site_item(site)["unguarded_reasons"]
