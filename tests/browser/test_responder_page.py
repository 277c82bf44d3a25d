"""The responder page in Chromium on a phone: opened from the link in the grid
officer's message, it shows their alarm in their language and moves their
dispatch on (accept, on scene, finished with a note); a bad link says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from hub.clock import ManualClock
from riverguard.services import Influxd
from riverguard.testing import wait_for
from riverguard.wire import topics
from tests.aiomqtt_client import aiomqtt_client
from tests.browser.conftest import CONSOLE_DIR, SCREENSHOTS, WALL_SCREEN, PageErrors
from tests.browser.console import OFFICER, alarm_card, log_in
from tests.conftest import Broker
from tests.hub.conftest import (
    PASSWORDS,
    event_payload,
    hub_settings,
    mqtt_inbox,
    run_hub,
    unique_seq,
)
from tests.notify.receivers import http_receiver
from tests.notify.support import SITE, config_with_a_grid_officer

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PHONE = ViewportSize(width=390, height=844)


async def _phone(chromium: Browser) -> tuple[Page, PageErrors]:
    context = await chromium.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    page.set_default_timeout(15_000)
    return page, PageErrors(page)


async def test_the_grid_officer_answers_the_call_from_the_page_on_a_phone(
    tmp_path: Path,
    broker: Broker,
    influxd: Influxd,
    influx_database: str,
    chromium: Browser,
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with http_receiver() as receiver:
        settings = hub_settings(
            tmp_path,
            broker.settings("hub"),
            influxd.url,
            influx_database,
            console_dir=CONSOLE_DIR,
            config=config_with_a_grid_officer(tmp_path, f"{receiver.url}/duty"),
            responder_key="responder-key-0123456789",
        )
        clock = ManualClock()
        async with (
            run_hub(settings, clock) as running,
            aiomqtt_client(broker.settings(f"edge-{SITE}")) as edge,
        ):
            payload = event_payload(unique_seq(), zone="z1", severity="critical")
            async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
                await edge.publish(topics.events(SITE), json.dumps(payload).encode(), qos=1)
                await acks.wait_for(lambda m: payload["id"] in m[1]["ids"])
            clock.advance(60)
            await wait_for(lambda: bool(receiver.received), what="the grid officer's call")
            link = json.loads(receiver.received[0].body)["links"]["respond"]

            page, errors = await _phone(chromium)
            await page.goto(link)
            await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            await expect(page.locator("#where")).to_have_text("淡水大桥东岸 · 桥下亲水平台")
            await expect(page.locator("#severity")).to_have_text("紧急")
            await expect(page.locator("#what")).to_contain_text("围栏越界")
            await expect(page.locator("#state")).to_have_text("已通知，等待您接受")
            await expect(page.locator("#since")).to_contain_text("告警已持续")
            await expect(page.locator("#map .zone.alarm")).to_have_count(1)
            await page.screenshot(path=str(SCREENSHOTS / "responder-zh.png"))

            await page.locator("#lang").click()
            await expect(page.locator("html")).to_have_attribute("lang", "en")
            await expect(page.locator("#where")).to_have_text(
                "Danshui Bridge, east bank · Under-bridge waterside deck"
            )
            await expect(page.locator("#state")).to_have_text("Called: waiting for you to accept")
            await page.screenshot(path=str(SCREENSHOTS / "responder-en.png"))

            await page.locator('button[data-action="accept"]').tap()
            await expect(page.locator("#state")).to_have_text("Accepted")
            await page.locator('button[data-action="arrive"]').tap()
            await expect(page.locator("#state")).to_have_text("On scene")
            await page.locator("#note").fill("Two anglers persuaded to leave")
            await page.locator('button[data-action="finish"]').tap()
            await expect(page.locator("#state")).to_have_text("Finished")
            await expect(page.locator("#buttons button")).to_have_count(0)
            await expect(page.locator("#resolved")).to_be_hidden()

            alarm = running.hub.picture.active[(SITE, "z1")]
            [dispatch] = await running.hub.dispatcher.of_alarm(alarm.id)
            assert ("finished", "Two anglers persuaded to leave") == (
                dispatch["state"],
                dispatch["note"],
            )
            assert dispatch["accepted_at"] is not None
            assert dispatch["arrived_at"] is not None

            async def call_settled() -> bool:
                rows = await running.hub.store.notifications.for_alarm(alarm.id)
                return ["sent"] == [row.state for row in rows]

            await wait_for(call_settled, what="the call recorded as sent")
            # The duty officer sees each step in the alarm's timeline.
            wall = await chromium.new_context(viewport=WALL_SCREEN)
            console = await wall.new_page()
            console.set_default_timeout(15_000)
            console_errors = PageErrors(console)
            await log_in(console, running.url, OFFICER, PASSWORDS[OFFICER])
            await alarm_card(console, alarm.id).locator("[data-action=details]").click()
            steps = console.locator("#detail-page #detail-timeline li[data-type=dispatch]")
            await expect(steps).to_have_count(4)
            await expect(steps.nth(0)).to_contain_text("陈网格员 · 已通知 · 第 1 级 · webhook:")
            await expect(steps.nth(1)).to_contain_text("陈网格员 · 已接受任务")
            await expect(steps.nth(2)).to_contain_text("陈网格员 · 已到达现场")
            await expect(steps.nth(3)).to_contain_text("处置完成")
            await expect(steps.nth(3).locator(".tl-note")).to_have_text(
                "Two anglers persuaded to leave"
            )
            called = console.locator("#detail-dispatches li.dispatch")
            await expect(called).to_have_count(1)
            await expect(called.locator(".who")).to_have_text("陈网格员")
            await expect(called.locator(".level")).to_have_text("第 1 级")
            await expect(called.locator(".state")).to_have_text("处置完成")
            await expect(called.locator(".note")).to_have_text("Two anglers persuaded to leave")
            await expect(called.locator(".call")).to_have_text("webhook:duty 已送达")
            await console.screenshot(path=str(SCREENSHOTS / "console-dispatch-zh.png"))
            # The officer calls the next level (nobody is on call there) from the detail.
            await console.locator('[data-detail-action="next-level"]').click()
            await expect(console.locator("#detail-head")).to_contain_text("已升级 2 级")
            # Once the officer closes the alarm, the responder's page says so.
            resolved = await running.http.post(
                f"/api/alarms/{alarm.id}/resolve",
                json={"outcome": "persuaded_away"},
                headers=await running.auth(),
            )
            assert "resolved" == resolved.json()["state"]
            await page.reload()
            await expect(page.locator("#resolved")).to_have_text("值班员已将此警情处置完毕。")

            refused, refused_errors = await _phone(chromium)
            await refused.goto(link.rsplit("/", 1)[0] + "/d-forged.zz.AAAAAAAAAAAAAAAAAAAAAA")
            await expect(refused.locator("#error")).to_have_text("链接无效或已过期，请联系值班员。")
            await expect(refused.locator("#call")).to_be_hidden()
    assert [] == errors.exceptions
    assert [] == errors.csp
    assert [] == refused_errors.exceptions
    assert [] == console_errors.exceptions
    assert [] == console_errors.i18n
