"""Responders on the duty console, in real Chromium (PROTOCOL 7.35, 7.38).

The alarm card says who was called and how far each has got, with the time in
their state, and a late one in words; the detail counts each one's deadline
down, and an officer sends a responder by hand from a picker (on call first,
by level) with the keyboard, confirmed in the timeline. A viewer sees who was
called but gets neither the picker nor the buttons.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from hub.clock import ManualClock
from hub.settings import HubSettings
from riverguard.services import Influxd
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.times import format_ts, utcnow
from tests.aiomqtt_client import aiomqtt_client
from tests.browser.conftest import CONSOLE_DIR, SCREENSHOTS, WALL_SCREEN, PageErrors
from tests.browser.console import OFFICER, alarm_card, log_in, untranslated
from tests.conftest import Broker
from tests.hub.conftest import (
    PASSWORDS,
    RunningHub,
    event_payload,
    hub_settings,
    mqtt_inbox,
    run_hub,
    unique_seq,
)
from tests.notify.receivers import HttpReceiver, http_receiver
from tests.notify.support import SITE, config_with_a_grid_officer

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# The site's dispatch timers (docs/responders.md): one who accepted and is not on
# scene this long after is late; one called has this long to accept.
ARRIVE_S = 900
ACCEPT_S = 3600


def _config(tmp_path: Path, receiver_url: str) -> Path:
    """The grid officer chen on call at level 1, the street's wu at level 2, and the
    river patrols sun and zhao, whom no level calls: only an officer sends them."""
    path = config_with_a_grid_officer(tmp_path, f"{receiver_url}/duty")
    raw = json.loads(path.read_text(encoding="utf-8"))
    site = next(s for s in raw["sites"] if s["id"] == SITE)
    site["escalation"][1]["call"] = ["wu"]
    site["dispatch_arrive_s"] = ARRIVE_S
    site["dispatch_accept_s"] = ACCEPT_S
    raw["responders"] += [
        {"id": "wu", "name": "吴街道值班", "channels": [{"kind": "webhook", "webhook": "duty"}]},
        {"id": "zhao", "name": "赵巡河员", "channels": [{"kind": "webhook", "webhook": "duty"}]},
        {"id": "sun", "name": "孙巡河员", "channels": [{"kind": "webhook", "webhook": "duty"}]},
    ]
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path


def _settings(
    tmp_path: Path, broker: Broker, influxd: Influxd, influx_database: str, receiver_url: str
) -> HubSettings:
    return hub_settings(
        tmp_path,
        broker.settings("hub"),
        influxd.url,
        influx_database,
        console_dir=CONSOLE_DIR,
        config=_config(tmp_path, receiver_url),
        responder_key="responder-key-0123456789",
    )


class _Wall(NamedTuple):
    running: RunningHub
    page: Page
    errors: PageErrors
    alarm_id: str
    card: Locator


@asynccontextmanager
async def _breached_wall(
    settings: HubSettings, clock: ManualClock, broker: Broker, chromium: Browser
) -> AsyncIterator[_Wall]:
    """The hub running, the officer's console open, and a critical fence breach in z1
    at the hub's clock committed and on the wall."""
    async with (
        run_hub(settings, clock) as running,
        aiomqtt_client(broker.settings(f"edge-{SITE}")) as edge,
    ):
        page, errors = await _console(chromium, running.url, OFFICER)
        at = format_ts(clock.now())
        payload = event_payload(unique_seq(), zone="z1", severity="critical", ts=at, edge_ts=at)
        async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
            await edge.publish(topics.events(SITE), json.dumps(payload).encode(), qos=1)
            await acks.wait_for(lambda m: payload["id"] in m[1]["ids"])
        alarm = running.hub.picture.active[(SITE, "z1")]
        yield _Wall(running, page, errors, alarm.id, alarm_card(page, alarm.id))


async def _height(card: Locator) -> float:
    box = await card.bounding_box()
    assert box is not None, "the card is not on screen"
    return box["height"]


async def _console(chromium: Browser, url: str, username: str) -> tuple[Page, PageErrors]:
    context = await chromium.new_context(viewport=WALL_SCREEN)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors = PageErrors(page)
    await log_in(page, url, username, PASSWORDS[username])
    return page, errors


async def test_the_card_and_detail_show_who_is_coming_and_an_officer_sends_one_by_hand(
    tmp_path: Path, broker: Broker, influxd: Influxd, influx_database: str, chromium: Browser
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with http_receiver() as receiver:
        settings = _settings(tmp_path, broker, influxd, influx_database, receiver.url)
        # The hub's clock ends the story about now, so the console's timers, which run
        # on the browser's clock, show the times the story took.
        clock = ManualClock(utcnow() - timedelta(seconds=60 + ARRIVE_S + 1))
        async with _breached_wall(settings, clock, broker, chromium) as (
            running,
            page,
            errors,
            alarm_id,
            card,
        ):
            line = card.locator(".responders-line")
            await expect(line).to_be_visible()
            await expect(line.locator(".responder")).to_have_count(0)
            height = await _height(card)

            # The first escalation calls the grid officer: the card says so at once.
            clock.advance(60)
            chen = line.locator(".responder").first
            await expect(chen.locator(".who")).to_have_text("陈网格员")
            await expect(chen.locator(".state")).to_have_text("已通知")
            await expect(chen.locator(".dispatch-timer")).to_have_text(re.compile(r"^\d\d:\d\d$"))
            await wait_for(lambda: bool(receiver.received), what="the grid officer's call")
            token = json.loads(receiver.received[0].body)["links"]["respond"].rsplit("/", 1)[1]
            accepted = await running.http.post(f"/api/respond/{token}/accept")
            assert "accepted" == accepted.json()["state"]
            await expect(chen.locator(".state")).to_have_text("已接受任务")

            # Not on scene in time: late, in words and a frame, and the next level called.
            clock.advance(ARRIVE_S + 1)
            await expect(chen).to_have_class(re.compile(r"\blate\b"))
            await expect(chen.locator(".dispatch-timer")).to_have_text(
                re.compile(r"^\d\d:\d\d · ⚠ 超时$")
            )
            await expect(line.locator(".responder")).to_have_count(2)
            await expect(line.locator(".responder").nth(1).locator(".who")).to_have_text(
                "吴街道值班"
            )
            # The card kept its height: the line has its place whether or not anyone came.
            assert height == await _height(card)
            await page.screenshot(path=str(SCREENSHOTS / "console-dispatch-card-zh.png"))

            await card.locator("[data-action=details]").click()
            rows = page.locator("#detail-dispatches li.dispatch")
            await expect(rows).to_have_count(2)
            late = rows.filter(has_text="陈网格员")
            await expect(late).to_have_class(re.compile(r"\blate\b"))
            await expect(late.locator(".dispatch-timer")).to_contain_text("⚠ 超时未到场")
            called = rows.filter(has_text="吴街道值班")
            # The site's accept deadline counts down beside the one just called.
            await expect(called.locator(".dispatch-timer")).to_have_text(
                re.compile(r"^\d\d:\d\d · \d\d:\d\d 内须接受$")
            )

            # The picker: on call first, level by level, those already sent not again.
            picker = page.locator("#dispatch-pick")
            await expect(picker.locator("optgroup")).to_have_count(3)
            labels = [
                await group.get_attribute("label")
                for group in await picker.locator("optgroup").all()
            ]
            assert ["当前值班 · 第 1 级", "当前值班 · 第 2 级", "其他人员"] == labels
            await expect(picker.locator("option[disabled]")).to_have_count(2)
            # Everyone else by name: 孙 (sun) before 赵 (zhao). The officer picks zhao.
            await expect(picker).to_have_value("sun")
            await picker.focus()
            await page.keyboard.press("ArrowDown")
            await expect(picker).to_have_value("zhao")
            # By keyboard: the list, then its button.
            await page.keyboard.press("Tab")
            await expect(page.locator("#dispatch-submit")).to_be_focused()
            await page.keyboard.press("Enter")
            await expect(rows).to_have_count(3)
            zhao = rows.filter(has_text="赵巡河员")
            await expect(zhao.locator(".level")).to_have_text("值班员派遣")
            await expect(zhao.locator(".call")).to_have_text(re.compile(r"^webhook:duty "))
            await expect(picker.locator("option[disabled]")).to_have_count(3)
            await expect(picker).to_have_value("sun")
            sent = page.locator("#detail-timeline li[data-type=dispatch]").filter(
                has_text="赵巡河员"
            )
            await expect(sent).to_have_text(re.compile(r"赵巡河员 · 已通知 · 由 .+ 派遣"))
            await wait_for(lambda: len(receiver.received) == 3, what="the patrol's call")
            await page.screenshot(path=str(SCREENSHOTS / "console-dispatch-detail-zh.png"))
            assert [] == (await untranslated(page))["found"]

            await page.locator("body").click(position={"x": 5, "y": 5})
            await page.keyboard.press("l")
            await expect(page.locator("html")).to_have_attribute("lang", "en")
            await expect(late.locator(".dispatch-timer")).to_contain_text("⚠ late: not on scene")
            await expect(zhao.locator(".level")).to_have_text("sent by hand")
            await expect(sent).to_have_text(re.compile(r"赵巡河员 · called · sent by .+"))
            await expect(page.locator("#dispatch-send label")).to_have_text("Send a responder")
            await page.screenshot(path=str(SCREENSHOTS / "console-dispatch-detail-en.png"))
            assert [] == (await untranslated(page))["found"]
            await page.keyboard.press("Escape")
            await expect(chen.locator(".state")).to_have_text("accepted")
            await expect(line.locator(".more")).to_have_text("+1 more")
            await page.screenshot(path=str(SCREENSHOTS / "console-dispatch-card-en.png"))
            assert [] == (await untranslated(page))["found"]

            # A viewer sees who is coming, and can send or call off nobody.
            viewer, viewer_errors = await _console(chromium, running.url, "viewer")
            viewer_card = alarm_card(viewer, alarm_id)
            await expect(viewer_card.locator(".responders-line .responder")).to_have_count(2)
            await viewer_card.locator("[data-action=details]").click()
            await expect(viewer.locator("#detail-dispatches li.dispatch")).to_have_count(3)
            await expect(viewer.locator("#dispatch-send")).to_have_count(0)
            await expect(viewer.locator(".dispatch-cancel")).to_have_count(0)
            refused = await running.http.post(
                f"/api/alarms/{alarm_id}/dispatches",
                json={"responder": "zhao"},
                headers=await running.auth("viewer"),
            )
            assert 403 == refused.status_code
    for reported in (errors, viewer_errors):
        assert ([], [], []) == (reported.exceptions, reported.i18n, reported.csp)


async def test_a_responder_an_admin_renames_is_renamed_on_the_open_card_at_once(
    tmp_path: Path, broker: Broker, influxd: Influxd, influx_database: str, chromium: Browser
) -> None:
    """PROTOCOL 7.43: the card and the detail of an open console name the responder by
    the admin's new name without a reload."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    settings = _settings(tmp_path, broker, influxd, influx_database, "http://127.0.0.1:9")
    clock = ManualClock(utcnow() - timedelta(seconds=61))
    async with _breached_wall(settings, clock, broker, chromium) as (
        running,
        page,
        errors,
        _,
        card,
    ):
        clock.advance(60)
        chen = card.locator(".responders-line .responder").first
        await expect(chen.locator(".who")).to_have_text("陈网格员")

        renamed = await running.http.put(
            "/api/responders/chen",
            json={"name": "陈建国", "channels": [{"kind": "webhook", "webhook": "duty"}]},
            headers=await running.auth("admin"),
        )
        assert 200 == renamed.status_code, renamed.text
        await expect(chen.locator(".who")).to_have_text("陈建国")
        await page.screenshot(path=str(SCREENSHOTS / "console-dispatch-renamed-zh.png"))
        await card.locator("[data-action=details]").click()
        await expect(page.locator("#detail-dispatches li.dispatch")).to_contain_text("陈建国")
    assert ([], [], []) == (errors.exceptions, errors.i18n, errors.csp)


async def test_the_detail_shows_calls_withdrawn_and_a_stand_down_after_the_resolve(
    tmp_path: Path, broker: Broker, influxd: Influxd, influx_database: str, chromium: Browser
) -> None:
    """PROTOCOL 7.44: the receiver refuses the grid officer's call (503) and it waits
    for its retry; a patrol sent by hand is reached; the officer resolves the alarm
    with its detail open: the grid officer's call is shown withdrawn, the patrol's
    stand-down beside their call, in both languages."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with http_receiver(HttpReceiver(status=503)) as receiver:
        settings = _settings(tmp_path, broker, influxd, influx_database, receiver.url)
        clock = ManualClock(utcnow() - timedelta(seconds=61))
        async with _breached_wall(settings, clock, broker, chromium) as (
            running,
            page,
            errors,
            alarm_id,
            card,
        ):
            clock.advance(60)
            await wait_for(lambda: bool(receiver.received), what="the grid officer's call")
            await card.locator("[data-action=details]").click()
            chen = page.locator("#detail-dispatches li.dispatch").filter(has_text="陈网格员")
            await expect(chen.locator(".call")).to_have_text("webhook:duty 待发送")
            # The receiver answers again; the officer sends zhao by hand, whose call goes.
            receiver.status = 200
            sent = await running.http.post(
                f"/api/alarms/{alarm_id}/dispatches",
                headers=await running.auth(),
                json={"responder": "zhao"},
            )
            assert 200 == sent.status_code, sent.text
            await wait_for(lambda: len(receiver.received) == 2, what="zhao's call")
            zhao = page.locator("#detail-dispatches li.dispatch").filter(has_text="赵巡河员")

            resolved = await running.http.post(
                f"/api/alarms/{alarm_id}/resolve",
                headers=await running.auth(),
                json={"outcome": "other"},
            )
            assert 200 == resolved.status_code, resolved.text
            call = chen.locator(".call")
            await expect(call).to_have_attribute("data-state", "withdrawn")
            await expect(call).to_have_text("webhook:duty 已撤回（警情已处置）")
            # zhao, who was sent a call, is stood down on its channel.
            await expect(zhao.locator(".state")).to_have_text("已取消")
            # The hub's own note (its code), in the reader's language.
            await expect(zhao.locator(".note")).to_have_text("警情已处置")
            await expect(zhao.locator(".call").nth(1)).to_contain_text("webhook:duty 解除通知 ")
            await page.screenshot(path=str(SCREENSHOTS / "console-dispatch-withdrawn-zh.png"))
            assert [] == (await untranslated(page))["found"]

            await page.locator("body").click(position={"x": 5, "y": 5})
            await page.keyboard.press("l")
            await expect(page.locator("html")).to_have_attribute("lang", "en")
            await expect(call).to_have_text("webhook:duty withdrawn: alarm resolved")
            await expect(zhao.locator(".note")).to_have_text("alarm resolved")
            await expect(zhao.locator(".call").nth(1)).to_contain_text("webhook:duty stand-down ")
            await page.screenshot(path=str(SCREENSHOTS / "console-dispatch-withdrawn-en.png"))
            assert [] == (await untranslated(page))["found"]
    assert ["responder.call", "responder.call", "responder.stand_down"] == [
        json.loads(request.body)["type"] for request in receiver.received
    ]
    assert ([], [], []) == (errors.exceptions, errors.i18n, errors.csp)
