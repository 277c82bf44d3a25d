"""Never a false all-clear, in real Chromium against a real hub (PROTOCOL 7.13).

A hub of its own on a broker of its own: the broker is killed with SIGKILL (by
its PID) and the console raises the alarm (a red banner naming the broker and
since when, the sound, sites and edges unknown, the empty wall greyed with the
last event's time); an edge that stops talking turns unknown; the console's own
socket cut leaves the wall saying what it last knew. Each recovers by itself.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from riverguard.services import Influxd, free_port
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.times import format_ts, utcnow
from tests.aiomqtt_client import aiomqtt_client
from tests.browser.conftest import CONSOLE_DIR, SCREENSHOTS
from tests.browser.console import log_in, untranslated
from tests.conftest import Broker
from tests.hub.conftest import (
    PASSWORDS,
    SITE,
    RunningHub,
    event_payload,
    hub_settings,
    run_hub,
    unique_seq,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

OFFICER = "officer-li"
SITES = (SITE, "xiyong-wharf")
NO_OPEN_ALARMS = "当前没有未处置的警情"


def local_time(ts: datetime | str) -> str:
    """A time as the console shows it (the browser runs in this machine's time zone)."""
    value = datetime.fromisoformat(ts.replace("Z", "+00:00")) if isinstance(ts, str) else ts
    return value.astimezone().strftime("%H:%M:%S")


async def edge_status(broker: Broker, site: str) -> None:
    """The site's edge says it is online (PROTOCOL 2.3), retained, as the edge does."""
    status = {"online": True, "state": "online", "ts": format_ts(utcnow()), "outbox": 0}
    async with aiomqtt_client(broker.settings(f"edge-{site}")) as client:
        await client.publish(topics.edge_status(site), json.dumps(status), qos=1, retain=True)


async def quiet_event(broker: Broker, running: RunningHub) -> None:
    """A fence reporting clear: an event the hub commits, that opens no alarm."""
    event = event_payload(unique_seq(), kind="fence.clear", severity="info")
    async with aiomqtt_client(broker.settings(f"edge-{SITE}")) as client:
        await client.publish(topics.events(SITE), json.dumps(event), qos=1)
    await wait_for(
        lambda: running.hub.links.last_event_at is not None, what="the quiet event committed"
    )


@pytest.fixture
async def own_hub(
    tmp_path: Path, own_broker: Broker, influxd: Influxd, influx_database: str
) -> AsyncIterator[RunningHub]:
    """A hub serving the real console, on a broker this test may kill."""
    settings = hub_settings(
        tmp_path,
        own_broker.settings("hub"),
        influxd.url,
        influx_database,
        console_dir=CONSOLE_DIR,
        link_check_interval_s=0.5,
    )
    async with run_hub(settings) as running:
        yield running


async def _both_languages(page: Page, name: str) -> dict[str, Any]:
    """Screenshots in zh-CN and English; the other language's strings each page showed."""
    found = {}
    for lang in ("zh-CN", "en"):
        await expect(page.locator("html")).to_have_attribute("lang", lang)
        await page.screenshot(path=str(SCREENSHOTS / f"console-{name}-{lang.split('-')[0]}.png"))
        result = await untranslated(page)
        found[f"{name} {lang}"] = result["found"]
        await page.keyboard.press("l")
    return found


async def test_a_killed_broker_is_an_alarm_naming_it_with_sites_unknown_until_it_is_back(
    own_hub: RunningHub, own_broker: Broker, page: Page
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for site in SITES:
        await edge_status(own_broker, site)
    await quiet_event(own_broker, own_hub)
    await log_in(page, own_hub.url, OFFICER, PASSWORDS[OFFICER])
    body = page.locator("body")
    banner = page.locator("#links-banner")
    wall = page.locator("#alarm-list")
    strip = page.locator(f'.site-status[data-site="{SITE}"]')
    await expect(strip.locator(".edge")).to_have_text("边缘在线")
    await expect(strip.locator(".risk")).to_have_text("蓝色风险")
    await expect(wall.locator(".empty-title")).to_have_text(NO_OPEN_ALARMS)
    await expect(banner).to_be_hidden()
    await expect(body).to_have_attribute("data-sound", "armed")
    last_event = own_hub.hub.links.last_event_at
    assert last_event is not None
    heard = own_hub.hub.links.edges[SITE].last_heard
    assert heard is not None

    await asyncio.to_thread(own_broker.server.kill)  # SIGKILL, by its PID
    try:
        await expect(banner).to_be_visible()
        lost = own_hub.hub.links.states["broker"].since
        await expect(banner.locator(".links-heading")).to_have_text(
            "中心收不到现场数据 — 现场报警无法送达"
        )
        broker_line = banner.locator('li[data-link="broker"]')
        await expect(broker_line.locator(".what")).to_have_text("与消息服务器（MQTT）的连接中断")
        await expect(broker_line.locator(".since")).to_have_text(
            re.compile(rf"^自 {local_time(lost)} 起（已 \d\d:\d\d）$")
        )
        await expect(banner).to_have_class(re.compile("links-lost"))
        # The sound of a lost link, at once: no alarm is open.
        await expect(body).to_have_attribute("data-sound", "sounding")
        await expect(body).to_have_attribute("data-sound-mode", "lost")
        for site in SITES:
            site_strip = page.locator(f'.site-status[data-site="{site}"]')
            await expect(site_strip).to_have_class(re.compile("site-unknown"))
            await expect(site_strip.locator(".risk")).to_have_text("风险未知")
            await expect(site_strip.locator(".edge")).to_have_class(re.compile("edge-unknown"))
        await expect(strip.locator(".edge")).to_have_text(
            f"边缘状态未知（最后收到 {local_time(heard)}）"
        )
        await expect(wall.locator(".empty.unknown .empty-title")).to_have_text("未在接收现场数据")
        await expect(wall.locator(".empty-hint")).to_have_text(
            f"最后一条事件于 {local_time(last_event)}"
        )
        await expect(page.get_by_text(NO_OPEN_ALARMS)).to_have_count(0)
        # The devices page and the map say it too.
        await page.keyboard.press("3")
        await expect(page.locator(f'.edge-card[data-site="{SITE}"] .health')).to_have_text(
            f"边缘状态未知（最后收到 {local_time(heard)}）"
        )
        await page.keyboard.press("2")
        await expect(page.locator(f'.map-card[data-site="{SITE}"] .risk')).to_have_text("风险未知")
        await page.keyboard.press("1")
        found = await _both_languages(page, "broker-lost")
        await expect(wall.locator(".empty-hint")).to_have_text(
            f"最后一条事件于 {local_time(last_event)}"
        )
        await page.keyboard.press("l")
        await expect(broker_line.locator(".what")).to_have_text(
            "Message broker (MQTT) connection lost"
        )
        await expect(wall.locator(".empty-title")).to_have_text("Not receiving")
        await expect(wall.locator(".empty-hint")).to_have_text(
            f"last event at {local_time(last_event)}"
        )
        await expect(strip.locator(".risk")).to_have_text("Risk unknown")
        await page.keyboard.press("l")
    finally:
        await asyncio.to_thread(own_broker.server.start)
    # Back: the edges say so again as they do on reconnecting.
    await wait_for(lambda: own_hub.hub.link.connected, timeout=30, what="the hub reconnected")
    for site in SITES:
        await edge_status(own_broker, site)
    await expect(banner).to_be_hidden(timeout=20_000)
    await expect(strip.locator(".edge")).to_have_text("边缘在线")
    await expect(strip.locator(".risk")).to_have_text("蓝色风险")
    await expect(wall.locator(".empty-title")).to_have_text(NO_OPEN_ALARMS)
    await expect(body).to_have_attribute("data-sound", "armed")
    assert {"broker-lost zh-CN": [], "broker-lost en": []} == found


async def test_an_edge_that_stops_talking_is_unknown_and_named_in_the_banner(
    tmp_path: Path, own_broker: Broker, influxd: Influxd, influx_database: str, page: Page
) -> None:
    """Its last status said online; two status intervals of silence make it unknown."""
    settings = hub_settings(
        tmp_path,
        own_broker.settings("hub"),
        influxd.url,
        influx_database,
        console_dir=CONSOLE_DIR,
        edge_status_interval_s=1.5,
    )
    async with run_hub(settings) as running:
        await log_in(page, running.url, OFFICER, PASSWORDS[OFFICER])
        await edge_status(own_broker, SITE)
        strip = page.locator(f'.site-status[data-site="{SITE}"]')
        await expect(strip.locator(".edge")).to_have_text("边缘在线")
        heard = running.hub.links.edges[SITE].last_heard
        assert heard is not None
        banner = page.locator("#links-banner")
        line = banner.locator(f'li[data-link="edge"][data-site="{SITE}"]')
        await expect(line.locator(".what")).to_have_text("淡水大桥东岸：边缘失联", timeout=10_000)
        await expect(line.locator(".since")).to_have_text(
            re.compile(rf"^最后收到 {local_time(heard)}（已 \d\d:\d\d）$")
        )
        await expect(banner.locator(".links-heading")).to_have_text(
            "部分现场失联 — 这些地点的报警无法送达"
        )
        await expect(strip.locator(".edge")).to_have_text(
            f"边缘状态未知（最后收到 {local_time(heard)}）"
        )
        await expect(strip.locator(".risk")).to_have_text("风险未知")
        await expect(page.locator("body")).to_have_attribute("data-sound", "sounding")
        # It talks again.
        await edge_status(own_broker, SITE)
        await expect(strip.locator(".edge")).to_have_text("边缘在线")
        await expect(line).to_have_count(0)


async def test_a_cut_console_socket_greys_the_wall_with_the_time_it_last_knew(
    own_hub: RunningHub, own_broker: Broker, page: Page
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sockets: list[WebSocketRoute] = []
    reconnect = asyncio.Event()

    async def relay(socket: WebSocketRoute) -> None:
        sockets.append(socket)
        if len(sockets) > 1:
            await reconnect.wait()
        socket.connect_to_server()

    await page.route_web_socket(re.compile(r"/api/ws"), relay)
    for site in SITES:
        await edge_status(own_broker, site)
    await log_in(page, own_hub.url, OFFICER, PASSWORDS[OFFICER])
    wall = page.locator("#alarm-list")
    await expect(wall.locator(".empty-title")).to_have_text(NO_OPEN_ALARMS)
    await expect(page.locator("#links-banner")).to_be_hidden()

    await sockets[0].close(code=1011, reason="gone")
    await expect(page.locator("body")).to_have_attribute("data-connection", "lost")
    lost_at = await page.evaluate("Date.now()")
    await expect(wall.locator(".empty.unknown .empty-title")).to_have_text(
        "与中心服务器断开 — 无法确认当前警情"
    )
    hint = await wall.locator(".empty-hint").text_content()
    assert hint is not None
    shown = re.fullmatch(r"最后确认于 (\d\d:\d\d:\d\d)", hint)
    assert shown, hint
    # The moment the socket closed, as the officer's clock read it.
    lost_local = datetime.fromtimestamp(lost_at / 1000).astimezone().strftime("%H:%M:%S")
    assert shown.group(1) <= lost_local
    await expect(page.get_by_text(NO_OPEN_ALARMS)).to_have_count(0)
    # The sites as last known too: no edge "online", no risk colour.
    for site in SITES:
        site_strip = page.locator(f'.site-status[data-site="{site}"]')
        await expect(site_strip).to_have_class(re.compile("site-unknown"))
        await expect(site_strip.locator(".edge")).to_have_class(re.compile("edge-unknown"))
    found = await _both_languages(page, "ws-lost")
    await page.keyboard.press("l")
    await expect(wall.locator(".empty-hint")).to_have_text(f"last known at {shown.group(1)}")
    await expect(wall.locator(".empty-title")).to_have_text(
        "Not connected to the hub — the current alarms are not known"
    )
    await page.keyboard.press("l")

    reconnect.set()
    await expect(page.locator("body")).to_have_attribute("data-connection", "open", timeout=20_000)
    await expect(wall.locator(".empty-title")).to_have_text(NO_OPEN_ALARMS)
    await expect(page.locator(".site-status.site-unknown")).to_have_count(0)
    assert {"ws-lost zh-CN": [], "ws-lost en": []} == found

    # With an alarm on the wall, the card stays (greyed) and the heading says it is stale.
    breach = event_payload(unique_seq())
    async with aiomqtt_client(own_broker.settings(f"edge-{SITE}")) as client:
        await client.publish(topics.events(SITE), json.dumps(breach), qos=1)
    card = wall.locator("article.alarm")
    await expect(card).to_have_count(1)
    notice = page.locator("#wall-notice")
    await expect(notice).to_be_hidden()
    reconnect.clear()
    await sockets[-1].close(code=1011, reason="gone again")
    await expect(notice).to_have_text(
        re.compile(r"^与中心服务器断开 — 无法确认当前警情 · 最后确认于 \d\d:\d\d:\d\d$")
    )
    await expect(wall).to_have_attribute("data-known", "disconnected")
    await expect(card).to_have_count(1)
    await page.screenshot(path=str(SCREENSHOTS / "console-ws-lost-alarm-zh.png"))
    # Every page says it too: the sites greyed and unknown under the red banner.
    for key, name in (("2", "map"), ("3", "devices"), ("5", "handover")):
        await page.keyboard.press(key)
        await expect(page.locator("#conn-banner")).to_be_visible()
        await page.screenshot(path=str(SCREENSHOTS / f"console-ws-lost-{name}-zh.png"))
        if name == "map":
            # The quiet site is not "no alarms" either.
            title = page.locator('.map-card[data-site="xiyong-wharf"] .map-title')
            await expect(title).to_contain_text("警情未知")
            await expect(page.locator("#map-page")).not_to_contain_text("无警情")
    await page.keyboard.press("1")
    reconnect.set()
    await expect(notice).to_be_hidden(timeout=20_000)
    await expect(wall).to_have_attribute("data-known", "yes")


async def test_influx_not_answering_is_named_in_amber_without_sound_or_a_greyed_wall(
    tmp_path: Path, own_broker: Broker, influx_database: str, page: Page
) -> None:
    """The hub still hears the field and raises alarms; only the history has gaps."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    settings = hub_settings(
        tmp_path,
        own_broker.settings("hub"),
        f"http://127.0.0.1:{free_port()}",
        influx_database,
        console_dir=CONSOLE_DIR,
        link_check_interval_s=0.5,
    )
    async with run_hub(settings) as running:
        for site in SITES:
            await edge_status(own_broker, site)
        await log_in(page, running.url, OFFICER, PASSWORDS[OFFICER])
        banner = page.locator("#links-banner")
        await expect(banner).to_have_class(re.compile("links-degraded"))
        since = running.hub.links.states["influx"].since
        line = banner.locator('li[data-link="influx"]')
        await expect(line.locator(".what")).to_have_text(
            "事件历史库（InfluxDB）不可用，历史记录暂缺"
        )
        await expect(line.locator(".since")).to_have_text(
            re.compile(rf"^自 {local_time(since)} 起（已 \d\d:\d\d）$")
        )
        await expect(page.locator("body")).to_have_attribute("data-links", "degraded")
        await expect(page.locator("body")).to_have_attribute("data-sound", "armed")
        await expect(page.locator("#alarm-list .empty-title")).to_have_text(NO_OPEN_ALARMS)
        strip = page.locator(f'.site-status[data-site="{SITE}"]')
        await expect(strip.locator(".risk")).to_have_text("蓝色风险")
        found = await _both_languages(page, "influx-lost")
    assert {"influx-lost zh-CN": [], "influx-lost en": []} == found


async def test_a_hub_gone_silent_with_its_socket_open_greys_the_wall_until_it_talks_again(
    tmp_path: Path, own_broker: Broker, influxd: Influxd, influx_database: str, page: Page
) -> None:
    """A hung hub keeps the browser's TCP connection open: only the missing heartbeats
    (PROTOCOL 7.17) tell it from a quiet night. The relay drops everything the hub
    sends, without closing, as a stopped hub process would."""
    settings = hub_settings(
        tmp_path,
        own_broker.settings("hub"),
        influxd.url,
        influx_database,
        console_dir=CONSOLE_DIR,
        ws_heartbeat_s=0.5,
    )
    silent = asyncio.Event()
    talking = asyncio.Event()
    talking.set()
    sockets: list[WebSocketRoute] = []

    async def relay(socket: WebSocketRoute) -> None:
        sockets.append(socket)
        await talking.wait()  # a hung hub answers no handshake either
        server = socket.connect_to_server()

        def from_hub(message: str | bytes) -> None:
            if not silent.is_set():
                socket.send(message)

        server.on_message(from_hub)

    await page.route_web_socket(re.compile(r"/api/ws"), relay)
    async with run_hub(settings) as running:
        for site in SITES:
            await edge_status(own_broker, site)
        await log_in(page, running.url, OFFICER, PASSWORDS[OFFICER])
        body = page.locator("body")
        wall = page.locator("#alarm-list")
        await expect(wall.locator(".empty-title")).to_have_text(NO_OPEN_ALARMS)
        await expect(body).to_have_attribute("data-connection", "open")
        # Heartbeats alone keep a quiet wall open and known.
        quiet_until = asyncio.get_running_loop().time() + 2.5
        while asyncio.get_running_loop().time() < quiet_until:
            await expect(body).to_have_attribute("data-connection", "open")
            await asyncio.sleep(0.25)
        assert 1 == len(sockets)

        talking.clear()
        silent.set()
        went_silent = await page.evaluate("Date.now()")
        await expect(body).to_have_attribute("data-connection", "lost", timeout=10_000)
        noticed = await page.evaluate("Date.now()")
        await expect(wall).to_have_attribute("data-known", "disconnected")
        await expect(wall.locator(".empty.unknown .empty-title")).to_have_text(
            "与中心服务器断开 — 无法确认当前警情"
        )
        await expect(page.get_by_text(NO_OPEN_ALARMS)).to_have_count(0)
        # Three heartbeats missed (the last one came at most one interval before).
        assert 1_000 <= noticed - went_silent, noticed - went_silent
        print(f"silent hub shown after {(noticed - went_silent) / 1000:.1f} s")
        # The silent socket was dropped and another one asked for.
        await wait_for(lambda: len(sockets) >= 2, what="a reconnect")
        await page.screenshot(path=str(SCREENSHOTS / "console-hub-silent-zh.png"))

        silent.clear()
        talking.set()
        await expect(body).to_have_attribute("data-connection", "open", timeout=20_000)
        await expect(wall).to_have_attribute("data-known", "yes")
        await expect(wall.locator(".empty-title")).to_have_text(NO_OPEN_ALARMS)
