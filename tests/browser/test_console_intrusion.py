"""A new person in a zone with an open alarm, in real Chromium (PROTOCOL 7.36).

The second swimmer re-raises the alarm on the wall (the callout says so, the
alarm sounds again, the card has a "new intrusion" line with its own age), and
a camera's repeated detections of the first are one row of the feed and one
entry of the timeline with their count, so the acts between them stay in sight.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from hub.intrusions import REARM_S
from riverguard.testing import wait_for
from riverguard.wire.times import parse_ts, utcnow
from tests.browser.conftest import SCREENSHOTS
from tests.browser.console import Field, alarm_card, untranslated

pytestmark = pytest.mark.browser

SITE = "danshui-bridge"
DETECTIONS = 8


async def _hub_alarm(api: httpx.AsyncClient, alarm_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/alarms/{alarm_id}")
    response.raise_for_status()
    alarm: dict[str, Any] = response.json()
    return alarm


async def test_a_second_swimmer_reraises_the_alarm_on_the_wall_with_its_own_age(
    officer_page: Page, field_devices: Field, officer_api: httpx.AsyncClient
) -> None:
    page = officer_page
    field = field_devices
    body = page.locator("body")
    # The first swimmer: over the fence, then seen in the water again and again.
    fence = await field.fence_breach(SITE, "db-fence-01", "z1")
    alarm = await field.alarm_of(fence, SITE)
    seen = [
        await field.person_in_water(SITE, "db-cam-01", "z1", snapshot=None)
        for _ in range(DETECTIONS)
    ]
    card = alarm_card(page, alarm["id"])
    await expect(card).to_have_class(re.compile(r"\bsev-critical\b.*\bstate-open\b"))
    # One row of the feed for the camera's detections, with how many and how long.
    folded = page.locator(f'#feed-list li[data-event-id="{seen[-1]}"]')
    await expect(folded).to_have_attribute("data-count", str(DETECTIONS))
    await expect(folded.locator(".feed-repeats")).to_have_text(
        re.compile(rf"^×{DETECTIONS}(（\d+ 秒内）)?$")
    )
    await expect(page.locator(f'#feed-list li[data-event-id="{seen[0]}"]')).to_have_count(0)

    await card.locator("[data-action=ack]").click()
    await expect(card).to_have_class(re.compile(r"\bstate-acknowledged\b"))
    await expect(body).to_have_attribute("data-sound", "armed")
    await expect(page.locator("#alarm-callout")).to_be_hidden()
    await expect(card.locator(".new-intrusion")).to_have_count(0)

    # The first swimmer leaves: the fence reports the zone clear.
    await field.fence_clear(SITE, "db-fence-01", "z1")

    async def reported_gone() -> bool:
        latest = (await _hub_alarm(officer_api, alarm["id"]))["intrusions"][-1]
        return latest["gone_at"] is not None

    await wait_for(reported_gone, what="the first swimmer reported gone")
    # The hub re-raises an alarm at most once per REARM_S (a chattering fence): the
    # second swimmer comes once that long has passed since the alarm opened.
    opened = parse_ts(alarm["opened_at"])
    await wait_for(
        lambda: utcnow() - opened > timedelta(seconds=REARM_S),
        timeout=REARM_S + 5,
        what="the re-raise spacing to pass",
    )

    second = await field.fence_breach(SITE, "db-fence-01", "z1")
    await expect(card).to_have_class(re.compile(r"\bstate-open\b"))
    line = card.locator(".new-intrusion")
    await expect(line).to_contain_text("新闯入（第 2 次）")
    await expect(line).to_contain_text("db-fence-01")
    await expect(line).to_contain_text("区域清空后再次进入")
    # Its own age, younger than the alarm's, and ticking.
    intrusion_age = line.locator(".intrusion-age")
    await expect(intrusion_age).to_have_text(re.compile(r"^00:0\d 前$"))
    first = await intrusion_age.inner_text()
    await expect(intrusion_age).not_to_have_text(first)
    alarm_age = await card.locator(".age").inner_text()
    # "已开启 00:49": the age after its label.
    minutes, seconds = (int(part) for part in alarm_age.split()[-1].split(":")[-2:])
    assert minutes * 60 + seconds > REARM_S
    # The callout and the sound, as for a new alarm; the escalation badge and age stay.
    callout = page.locator("#alarm-callout")
    await expect(callout).to_be_visible()
    await expect(callout.locator(".callout-text")).to_contain_text("已有警情的区域有新人闯入")
    # A screen reader hears it too.
    await expect(page.locator("#alarm-announcer")).to_contain_text("新闯入")
    # The two breaches, with the fence's clear between them, are rows of their own.
    for breach in (fence, second):
        row = page.locator(f'#feed-list li[data-event-id="{breach}"]')
        await expect(row).to_have_attribute("data-count", "1")
    await expect(body).to_have_attribute("data-sound", "sounding")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "console-new-intrusion-zh.png")
    found = {"zh-CN": (await untranslated(page))["found"]}
    await page.keyboard.press("l")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(line).to_contain_text("New intrusion #2")
    await expect(line).to_contain_text("after the zone was clear")
    await expect(intrusion_age).to_have_text(re.compile(r"^\d\d:\d\d ago$"))
    await expect(callout.locator(".callout-text")).to_contain_text("New intrusion into an open")
    await expect(folded.locator(".feed-repeats")).to_have_text(
        re.compile(rf"^×{DETECTIONS}( in \d+ s)?$")
    )
    found["en"] = (await untranslated(page))["found"]
    await page.screenshot(path=SCREENSHOTS / "console-new-intrusion-en.png")

    # The timeline: the detections as one entry, the acknowledgement and the new
    # intrusion standing out between them.
    await card.locator("[data-action=details]").click()
    # The detail says it too, with the intrusion's own age.
    head_line = page.locator("#detail-head .new-intrusion")
    await expect(head_line).to_contain_text("New intrusion #2")
    await expect(head_line.locator(".intrusion-age")).to_have_text(re.compile(r"^\d\d:\d\d ago$"))
    timeline = page.locator("#detail-page #detail-timeline")
    repeats = timeline.locator("li[data-type=event] .tl-repeats")
    await expect(repeats).to_have_count(1)
    await expect(repeats).to_have_attribute("data-count", str(DETECTIONS))
    await expect(timeline.locator("li[data-type=intrusion]")).to_contain_text(
        "New intrusion #2: db-fence-01"
    )
    types = await timeline.locator("li").evaluate_all("items => items.map(i => i.dataset.type)")
    assert "ack" in types
    assert types.index("ack") < types.index("intrusion")
    assert 5 >= types.count("event"), types
    await page.screenshot(path=SCREENSHOTS / "console-new-intrusion-timeline-en.png")
    await page.keyboard.press("l")
    await expect(timeline.locator("li[data-type=intrusion]")).to_contain_text(
        "新闯入（第 2 次）：db-fence-01"
    )
    found["zh-CN detail"] = (await untranslated(page))["found"]
    await page.screenshot(path=SCREENSHOTS / "console-new-intrusion-timeline-zh.png")
    assert {"zh-CN": [], "en": [], "zh-CN detail": []} == found


# --- the console's own logic, from the static files ---------------------------------


@pytest.fixture
async def console_page(page: Page, static_console: str) -> Page:
    await page.goto(f"{static_console}/index.html")
    await expect(page.locator("body")).to_have_attribute("data-view", "login")
    return page


async def _run(page: Page, body: str) -> Any:
    return await page.evaluate(
        f"async () => {{ const state = await import('./state.js'); {body} }}"
    )


def _alarm(count: int | None, cause: str = "after_gone", state: str = "open") -> str:
    fields: dict[str, Any] = {"id": "alm-1", "site": "s", "zone": "z1", "state": state}
    if count is not None:
        intrusions = [{"cause": "opened", "raised_at": "2026-07-27T21:21:05Z"}]
        intrusions += [{"cause": cause, "raised_at": "2026-07-27T21:23:05Z"}] * (count - 1)
        fields |= {"intrusion_count": count, "intrusions": intrusions}
    return json.dumps(fields)


async def test_an_alarm_whose_intrusions_grew_rings_as_a_new_one(console_page: Page) -> None:
    """Also when acknowledged before; never for an alarm of a hub without intrusions."""
    rung = await _run(
        console_page,
        "const s = state.createState(); const seen = [];"
        f" for (const [seq, data] of [[1, {_alarm(1)}], [2, {_alarm(1, state='acknowledged')}],"
        f"   [3, {_alarm(2)}], [4, {_alarm(2)}], [5, {_alarm(None)}]]) {{"
        "  const r = state.applyMessage(s, {seq, type: 'alarm', data});"
        "  seen.push([r.newAlarms.length, r.newIntrusions.length,"
        "    state.newIntrusion(s.alarms.get('alm-1'))?.cause ?? null]); }"
        " return seen;",
    )
    assert [
        [1, 0, None],
        [0, 0, None],
        [0, 1, "after_gone"],
        [0, 0, "after_gone"],
        [0, 0, None],
    ] == rung


async def test_the_feed_folds_a_devices_repeats_less_than_a_minute_apart(
    console_page: Page,
) -> None:
    """Newest first; another site's event between them does not break the run."""
    rows = await _run(
        console_page,
        "const s = state.createState();"
        " const at = (sec) => new Date(Date.UTC(2026, 6, 27, 21, 0, sec)).toISOString();"
        " const cam = (n, sec, extra = {}) => ({id: `cam:${n}`, site: 'a', zone: 'z1',"
        "   device: 'cam', kind: 'camera.water_entry', severity: 'critical', ts: at(sec),"
        "   ...extra});"
        " const events = [cam(1, 0), cam(2, 5), cam(3, 10),"
        "   {id: 'f:1', site: 'b', zone: 'z1', device: 'f', kind: 'fence.breach', ts: at(12)},"
        "   cam(4, 15), cam(5, 20), cam(6, 200), cam(7, 205, {attrs: {frigate_id: 'other'}})];"
        " for (const e of events) state.addEvent(s, e, true);"
        " return state.foldedFeed(s).map((r) => [r.event.id, r.count, r.first]);",
    )
    assert [
        ["cam:7", 1, "2026-07-27T21:03:25.000Z"],
        ["cam:6", 1, "2026-07-27T21:03:20.000Z"],
        ["cam:5", 5, "2026-07-27T21:00:00.000Z"],
        ["f:1", 1, "2026-07-27T21:00:12.000Z"],
    ] == rows


async def test_the_feed_never_folds_an_alarms_first_event_into_what_came_before(
    console_page: Page,
) -> None:
    """A fence that breached a minute ago for someone else: the new alarm's row is its own."""
    rows = await _run(
        console_page,
        "const s = state.createState();"
        " const at = (sec) => new Date(Date.UTC(2026, 6, 27, 21, 0, sec)).toISOString();"
        " const fence = (n, sec) => ({id: `f:${n}`, site: 'a', zone: 'z1', device: 'f',"
        "   kind: 'fence.breach', severity: 'critical', ts: at(sec)});"
        " for (const e of [fence(1, 0), fence(2, 4), fence(3, 8), fence(4, 12)])"
        "   state.addEvent(s, e, true);"
        " s.alarms.set('alm-2', {id: 'alm-2', site: 'a', zone: 'z1', state: 'open',"
        "   severity: 'critical', event_ids: ['f:3', 'f:4'], intrusions: []});"
        " return state.foldedFeed(s).map((r) => [r.event.id, r.count]);",
    )
    assert [["f:4", 2], ["f:2", 2]] == rows
