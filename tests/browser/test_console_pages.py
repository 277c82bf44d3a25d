"""The console's other pages against the whole running stack, in real Chromium.

The site map marks the zone with an open alarm, the unguarded zone of an
offline camera and each device's status; the alarm detail tells the alarm's
story and announces on the speakers the officer picks until they are done;
the device list puts offline devices first; history charts events and lists
resolved incidents with an export; the handover sums up the shift. Every page
speaks one language at a time, and fits a 1366x768 laptop.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from riverguard.stack import Stack
from riverguard.wire.times import utcnow
from simulators.snapshot import render_snapshot
from tests.browser.conftest import ARTIFACTS, SCREENSHOTS, PageErrors
from tests.browser.console import (
    OFFICER,
    SPEAKER_DONE_TIMEOUT_MS,
    Field,
    alarm_card,
    log_in,
    untranslated,
)

pytestmark = pytest.mark.browser

LAPTOP = ViewportSize(width=1366, height=768)


async def languages(page: Page, name: str, screenshot: bool = False) -> dict[str, list[str]]:
    """What the untranslated-text scan finds in both languages (and screenshots)."""
    found: dict[str, list[str]] = {}
    for lang in ("zh-CN", "en"):
        if (await page.locator("html").get_attribute("lang")) != lang:
            await page.keyboard.press("l")
        await expect(page.locator("html")).to_have_attribute("lang", lang)
        found[f"{name} {lang}"] = (await untranslated(page))["found"]
        if screenshot:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            short = "zh" if lang == "zh-CN" else "en"
            await page.screenshot(path=SCREENSHOTS / f"console-{name}-{short}.png")
    await page.keyboard.press("l")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    return found


def map_zone(page: Page, site: str, zone: str) -> Any:
    return page.locator(f'#map-list [data-map-kind=zone][data-site="{site}"][data-zone="{zone}"]')


def map_device(page: Page, device: str) -> Any:
    return page.locator(f'#map-list [data-map-kind=device][data-device="{device}"]')


async def test_map_shows_the_alarm_zone_an_unguarded_zone_and_live_device_status(
    officer_page: Page, field_devices: Field
) -> None:
    page = officer_page
    field = field_devices
    await field.device_status("xiyong-wharf", "camera", "xy-cam-02", online=False)
    fence = await field.fence_breach("danshui-bridge", "db-fence-01", "z1")
    await field.person_in_water("danshui-bridge", "db-cam-01", "z1")
    critical = await field.alarm_of(fence, "danshui-bridge")
    warning = await field.alarm_of(
        await field.fence_breach("xiyong-wharf", "xy-fence-01", "z1"), "xiyong-wharf"
    )
    await expect(alarm_card(page, warning["id"])).to_be_visible()

    await page.keyboard.press("2")
    await expect(page.locator("#map-page")).to_be_visible()
    await expect(map_zone(page, "danshui-bridge", "z1")).to_have_class(
        re.compile(r"\bzone-alarm\b.*\bsev-critical\b")
    )
    await expect(map_zone(page, "xiyong-wharf", "z1")).to_have_class(
        re.compile(r"\bzone-alarm\b.*\bsev-warning\b")
    )
    await expect(map_zone(page, "xiyong-wharf", "z2")).to_have_class(
        re.compile(r"\bzone-unguarded\b")
    )
    await expect(map_zone(page, "danshui-bridge", "z2")).not_to_have_class(
        re.compile(r"zone-alarm|zone-unguarded")
    )
    await expect(map_device(page, "xy-cam-02")).to_have_attribute("data-health", "offline")
    await expect(map_device(page, "db-fence-01")).to_have_attribute("data-health", "online")
    await expect(page.locator('.map-card[data-site="danshui-bridge"] .risk')).to_have_text(
        "红色风险"
    )

    await map_device(page, "xy-cam-02").click()
    panel = page.locator("#map-detail")
    await expect(panel.locator("h3")).to_have_text("xy-cam-02")
    await expect(panel).to_contain_text("离线")
    await map_zone(page, "xiyong-wharf", "z2").locator(".zone-label").click()
    await expect(panel.locator("h3")).to_have_text("芦苇浅滩")
    await expect(panel.locator(".reasons")).to_have_text("xy-cam-02 离线")

    # A device coming back online turns green without a reload.
    await field.device_status("xiyong-wharf", "camera", "xy-cam-02", online=True)
    await expect(map_device(page, "xy-cam-02")).to_have_attribute("data-health", "online")
    await expect(map_zone(page, "xiyong-wharf", "z2")).not_to_have_class(
        re.compile(r"zone-unguarded")
    )
    await field.device_status("xiyong-wharf", "camera", "xy-cam-02", online=False)
    await expect(map_zone(page, "xiyong-wharf", "z2")).to_have_class(
        re.compile(r"\bzone-unguarded\b")
    )

    # By keyboard: focus a zone, Enter shows it.
    await map_zone(page, "danshui-bridge", "z1").focus()
    await page.keyboard.press("Enter")
    await expect(panel.locator("h3")).to_have_text("桥下亲水平台")
    await expect(map_zone(page, "danshui-bridge", "z1")).to_be_focused()
    found = await languages(page, "map", screenshot=True)
    assert {"map zh-CN": [], "map en": []} == found

    await panel.locator(f'[data-command=open-detail][data-alarm-id="{critical["id"]}"]').click()
    await expect(page.locator("#detail-page")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator("#map-page")).to_be_visible()


async def test_a_late_snapshot_appears_live_in_the_open_alarm_detail(
    officer_page: Page, field_devices: Field
) -> None:
    """The camera's picture reaches the hub after its event (a Frigate track still open)."""
    page = officer_page
    camera = await field_devices.person_in_water("xiyong-wharf", "xy-cam-02", "z2", snapshot=None)
    alarm = await field_devices.alarm_of(camera, "xiyong-wharf")
    await alarm_card(page, alarm["id"]).locator("[data-action=details]").click()
    timeline = page.locator("#detail-page #detail-timeline")
    event = timeline.locator("li[data-type=event]")
    await expect(event).to_have_count(1)
    await expect(page.locator("#detail-source")).not_to_have_text(re.compile("加载|Loading"))
    await expect(event.locator(".tl-snapshot")).to_have_count(0)

    await field_devices.late_snapshot("xiyong-wharf", camera, render_snapshot("xy-cam-02"))
    await expect(event.locator(".tl-snapshot img")).to_be_visible()
    loaded = await event.locator(".tl-snapshot img").evaluate("img => img.naturalWidth")
    assert 640 == loaded

    found = await languages(page, "detail-late-snapshot", screenshot=True)
    assert {"detail-late-snapshot zh-CN": [], "detail-late-snapshot en": []} == found


async def test_the_edges_own_warning_shows_as_an_edge_auto_warning_in_the_alarm_detail(
    officer_page: Page, field_devices: Field
) -> None:
    page = officer_page
    fence = await field_devices.fence_breach("xiyong-wharf", "xy-fence-01", "z1")
    alarm = await field_devices.alarm_of(fence, "xiyong-wharf")
    await alarm_card(page, alarm["id"]).locator("[data-action=details]").click()
    timeline = page.locator("#detail-page #detail-timeline")
    await expect(timeline.locator("li[data-type=event]")).to_have_count(1)

    await field_devices.edge_auto_warning("xiyong-wharf", "z1", "xy-spk-01")
    announced = timeline.locator("li[data-type=announcement]")
    await expect(announced).to_have_text(re.compile("边缘自动警告，1 个广播"))
    done = timeline.locator("li[data-type=speaker][data-state=done]")
    await expect(done).to_contain_text("xy-spk-01")
    live = page.locator("#detail-anns .announcement")
    await expect(live.locator(".ann-label")).to_contain_text("边缘自动警告")
    await page.keyboard.press("l")
    await expect(announced).to_have_text(re.compile("Edge auto warning \\(speakers: 1\\)"))
    await page.keyboard.press("l")


async def test_the_device_page_tells_a_cleanly_stopped_edge_from_a_lost_one(
    officer_page: Page, field: Field
) -> None:
    page = officer_page
    # Ahead of the stack's real edges, whose statuses (refreshed every 30 s with their
    # own time) the hub then ignores as older until the test has put them back online.
    ahead = utcnow() + timedelta(seconds=35)
    try:
        await field.edge_status("xiyong-wharf", "stopped", ahead)
        await field.edge_status("danshui-bridge", "offline", ahead)
        await page.keyboard.press("3")
        stopped = page.locator('.edge-card[data-site="xiyong-wharf"] .health')
        lost = page.locator('.edge-card[data-site="danshui-bridge"] .health')
        await expect(stopped).to_have_text("边缘已停止（正常关闭）")
        await expect(stopped).to_have_class(re.compile("health-stopped"))
        await expect(lost).to_have_text("边缘离线")
        header = page.locator('.site-status[data-site="xiyong-wharf"] .edge')
        await expect(header).to_have_text("边缘已停止（正常关闭）")
        found = await languages(page, "devices-edges", screenshot=True)
        await page.keyboard.press("l")
        await expect(stopped).to_have_text("Edge stopped (clean shutdown)")
        await expect(lost).to_have_text("Edge OFFLINE")
        await page.keyboard.press("l")
    finally:
        later = ahead + timedelta(milliseconds=1)
        for site in ("xiyong-wharf", "danshui-bridge"):
            await field.edge_status(site, "online", later)
    assert {"devices-edges zh-CN": [], "devices-edges en": []} == found
    await expect(stopped).to_have_text("边缘在线")


async def test_alarm_detail_tells_the_story_and_announces_until_the_speaker_is_done(
    officer_page: Page, field_devices: Field, officer_api: httpx.AsyncClient
) -> None:
    page = officer_page
    field = field_devices
    fence = await field.fence_breach("danshui-bridge", "db-fence-02", "z2")
    camera = await field.person_in_water("danshui-bridge", "db-cam-02", "z2")
    alarm = await field.alarm_of(camera, "danshui-bridge")
    assert fence in alarm["event_ids"]
    card = alarm_card(page, alarm["id"])
    await card.locator("[data-action=details]").click()

    detail = page.locator("#detail-page")
    await expect(detail).to_be_visible()
    await expect(detail.locator(".detail-title .badge.severity")).to_have_text("紧急")
    await expect(detail.locator(".badge.escalation")).to_have_text("未升级")
    await expect(detail.locator(".detail-where .zone-name")).to_have_text("东岸台阶")
    timeline = detail.locator("#detail-timeline")
    await expect(timeline.locator("li[data-type=opened]")).to_have_count(1)
    await expect(timeline.locator("li[data-type=event]")).to_have_count(2)
    await expect(timeline.locator("li[data-type=event]").first).to_contain_text("围栏越界")
    await expect(timeline.locator(".tl-snapshot img")).to_be_visible()

    # The announce panel: the zone's speaker, the site's clip, or typed text.
    await expect(detail.locator('input[name=target][value="db-spk-01"]')).to_be_checked()
    await expect(detail.locator("#announce-clip")).to_have_value("warning-danshui-bridge")
    await expect(detail.locator("#announce-text")).to_be_enabled()
    await expect(detail.locator("#announce-voice")).to_have_value("cmn")

    await page.keyboard.press("a")
    await expect(detail.locator(".detail-title .badge.state")).to_have_text("已确认")
    await expect(timeline.locator("li[data-type=ack]")).to_contain_text("李值班员")

    await detail.locator('input[name=target][value="db-spk-01"]').uncheck()
    await expect(detail.locator("#announce-send")).to_be_disabled()
    await detail.locator("[data-command=targets-all]").click()
    await expect(detail.locator('input[name=target][value="db-spk-01"]')).to_be_checked()
    await page.keyboard.press("n")
    speaker = detail.locator('#detail-anns .speaker[data-speaker="db-spk-01"]')
    await expect(speaker).to_have_attribute("data-state", "done", timeout=SPEAKER_DONE_TIMEOUT_MS)
    await expect(timeline.locator("li[data-type=announcement]")).to_contain_text("李值班员")
    await expect(timeline.locator("li[data-type=speaker][data-state=done]")).to_have_count(1)
    await expect(detail.locator("#announce-send")).to_be_enabled()

    # Typed text, spoken by the hub in Cantonese, survives redraws while it plays.
    await detail.locator("#announce-text").fill("请马上离开水边")
    await detail.locator("#announce-voice").select_option("yue")
    await detail.locator("#announce-send").click()
    spoken = detail.locator("#detail-anns .announcement")
    await expect(spoken).to_have_count(2)
    await expect(spoken.first.locator(".speaker")).to_have_attribute(
        "data-state", "done", timeout=SPEAKER_DONE_TIMEOUT_MS
    )
    await expect(spoken.first.locator(".ann-label")).to_contain_text("语音合成")
    await expect(detail.locator("#announce-text")).to_have_value("请马上离开水边")

    found = await languages(page, "detail", screenshot=True)
    assert {"detail zh-CN": [], "detail en": []} == found

    await page.keyboard.press("r")
    await page.keyboard.press("2")
    await page.fill("#resolve-note", "已救起，送医")
    await page.click("#resolve-submit")
    await expect(detail.locator(".detail-title .badge.state")).to_have_text("已处置")
    await expect(timeline.locator("li[data-type=resolved]")).to_contain_text("已救援")
    await expect(timeline.locator("li[data-type=resolved] .tl-note")).to_have_text("已救起，送医")
    stored = (await officer_api.get(f"/api/alarms/{alarm['id']}")).json()
    assert ("resolved", "rescued", OFFICER) == (
        stored["state"],
        stored["outcome"],
        stored["resolved_by"],
    )
    await page.keyboard.press("Escape")
    await expect(page.locator("#workspace")).to_be_visible()
    await expect(card).to_have_count(0)


async def test_devices_history_and_handover_pages_in_both_languages(
    officer_page: Page, field_devices: Field, officer_api: httpx.AsyncClient
) -> None:
    page = officer_page
    field = field_devices
    await field.device_status("danshui-bridge", "fence", "db-fence-02", online=False)
    done = await field.alarm_of(
        await field.fence_breach("xiyong-wharf", "xy-fence-02", "z2"), "xiyong-wharf"
    )
    response = await officer_api.post(
        f"/api/alarms/{done['id']}/resolve", json={"outcome": "patrol_sent", "note": "巡逻已到场"}
    )
    assert 200 == response.status_code, response.text
    still_open = await field.alarm_of(
        await field.fence_breach("xiyong-wharf", "xy-fence-01", "z1"), "xiyong-wharf"
    )
    await expect(alarm_card(page, still_open["id"])).to_be_visible()
    found: dict[str, list[str]] = {}

    await page.keyboard.press("3")
    rows = page.locator("#devices-table tbody tr")
    await expect(rows.first).to_have_attribute("data-device", "db-fence-02")
    await expect(rows.first).to_have_attribute("data-health", "offline")
    battery = page.locator('#devices-table tr[data-device="xy-fence-01"] td.num').first
    await expect(battery).to_have_text(re.compile(r"^\d+%$"))
    found |= await languages(page, "devices", screenshot=True)

    await page.keyboard.press("4")
    await expect(page.locator("#history-chart .bar").first).to_be_visible()
    incident = page.locator(f'#incidents-table tr[data-alarm-id="{done["id"]}"]')
    await expect(incident).to_contain_text("已派巡逻")
    await expect(incident).to_contain_text("巡逻已到场")
    async with page.expect_download() as download_info:
        await incident.locator("[data-export=json]").click()
    download = await download_info.value
    exported = json.loads((await download.path()).read_text(encoding="utf-8"))
    assert done["id"] == exported["alarm"]["id"]
    assert ["opened", "event", "resolve"] == [entry["type"] for entry in exported["entries"]]
    await page.select_option("#history-interval", "day")
    await expect(page.locator("#history-chart .bar").first).to_be_visible()
    await page.select_option("#history-site", "danshui-bridge")
    await expect(page.locator('#history-chart .bar[data-site="xiyong-wharf"]')).to_have_count(0)
    await expect(incident).to_have_count(0)  # a xiyong-wharf incident
    await page.select_option("#history-site", "")
    await page.select_option("#history-interval", "hour")
    await page.select_option("#history-outcome", "rescued")
    await expect(incident).to_have_count(0)
    await page.select_option("#history-outcome", "")
    await expect(incident).to_have_count(1)
    found |= await languages(page, "history", screenshot=True)

    # A resolved incident opens in the detail view too, and Esc comes back to history.
    await incident.locator("[data-command=open-detail]").click()
    detail = page.locator("#detail-page")
    await expect(detail.locator(".detail-title .badge.state")).to_have_text("已处置")
    await expect(detail.locator("#detail-timeline li[data-type=resolved]")).to_contain_text(
        "已派巡逻"
    )
    await expect(detail.locator("[data-detail-action=resolve]")).to_be_disabled()
    await page.keyboard.press("Escape")
    await expect(page.locator("#history-page")).to_be_visible()

    await page.keyboard.press("5")
    handover = page.locator("#handover-root")
    open_item = handover.locator(f'.handover-open li[data-alarm-id="{still_open["id"]}"]')
    await expect(open_item).to_be_visible()
    resolved_item = handover.locator(f'.handover-resolved li[data-alarm-id="{done["id"]}"]')
    await expect(resolved_item).to_contain_text("已派巡逻")
    await expect(handover.locator(".handover-faults")).to_contain_text("db-fence-02")
    # Away from the wall, the unacknowledged alarm stays in sight.
    await expect(page.locator("#alarm-callout")).to_be_visible()
    found |= await languages(page, "handover", screenshot=True)
    # A acknowledges the panel's alarm from any page.
    await page.keyboard.press("a")
    await expect(page.locator("#alarm-callout")).to_be_hidden()
    await expect(open_item.locator(".badge.state")).to_have_text("已确认")

    assert {key: [] for key in found} == found


async def test_every_page_fits_a_1366x768_laptop_without_sideways_scrolling(
    chromium: Browser, stack: Stack, field_devices: Field
) -> None:
    context = await chromium.new_context(viewport=LAPTOP)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors = PageErrors(page)
    try:
        await log_in(page, stack.hub_url, OFFICER, stack.secrets.users[OFFICER])
        alarm = await field_devices.alarm_of(
            await field_devices.person_in_water("xiyong-wharf", "xy-cam-01", "z1"), "xiyong-wharf"
        )
        card = alarm_card(page, alarm["id"])
        await expect(card.locator("[data-action=ack]")).to_be_in_viewport()
        overflowing: dict[str, int] = {}
        for lang in ("zh-CN", "en"):
            for key, name in [("1", "alarms"), ("2", "map"), ("3", "devices"), ("4", "history"),
                              ("5", "handover")]:  # fmt: skip
                await page.keyboard.press(key)
                await expect(page.locator(f'#pages [data-page="{name}"]')).to_have_attribute(
                    "aria-current", "page"
                )
                await expect(page.locator("#logout")).to_be_in_viewport()
                overflowing[f"{name} {lang}"] = await sideways(page)
                if lang == "en":
                    ARTIFACTS.mkdir(parents=True, exist_ok=True)
                    await page.screenshot(path=ARTIFACTS / f"console-{name}-1366-en.png")
            await page.keyboard.press("1")
            await card.locator("[data-action=details]").click()
            await expect(page.locator("#detail-page")).to_be_visible()
            for control in ("[data-detail-action=ack]", "[data-detail-action=resolve]",
                            "#announce-send", "[data-command=detail-back]"):  # fmt: skip
                await expect(page.locator(control)).to_be_in_viewport()
            overflowing[f"detail {lang}"] = await sideways(page)
            if lang == "zh-CN":
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=ARTIFACTS / "console-detail-1366-zh.png")
            await page.keyboard.press("Escape")
            await page.keyboard.press("l")
        assert dict.fromkeys(overflowing, 0) == overflowing
    finally:
        await context.close()
    assert [] == errors.exceptions
    assert [] == errors.i18n


async def sideways(page: Page) -> int:
    """How many pixels the page (or any element of it) sticks out to the right."""
    result: int = await page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          let worst = document.documentElement.scrollWidth - width;
          for (const el of document.querySelectorAll("#console-view *")) {
            if (!el.getClientRects().length) continue;
            const right = el.getBoundingClientRect().right;
            // Content inside a scrolling box is reachable; the box itself must fit.
            if (el.closest(".table-wrap") && !el.classList.contains("table-wrap")) continue;
            worst = Math.max(worst, Math.ceil(right - width));
            // Nothing spills out of an alarm card either.
            const card = el.parentElement?.closest("article.alarm");
            const edge = card ? card.getBoundingClientRect().right : right;
            worst = Math.max(worst, Math.ceil(right - edge));
          }
          return worst;
        }"""
    )
    return result
