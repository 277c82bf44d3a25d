"""The console read as a new officer reads it at night, in real Chromium against the stack.

Cards that keep their size and say what their numbers are, a person gone in words
and not in alarm red, why an alarm climbed, the officer's own resolve not taken for
someone else's, a blocked alarm sound that cannot be missed, a viewer who is not
called to act, names instead of ids, text readable from two metres, and the
landmarks, roles and live region a screen reader needs.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, Route, expect

from riverguard.hub_session import HubSession
from riverguard.stack import Stack
from riverguard.testing import wait_for
from tests.browser.conftest import SCREENSHOTS
from tests.browser.console import Field, alarm_card, log_in, untranslated

pytestmark = pytest.mark.browser

ALARM_RED = "rgb(255, 69, 58)"


async def box(locator: Locator) -> dict[str, float]:
    """Where the element is, measured in one step: a card redrawn between finding the
    element and measuring it would otherwise measure nothing."""
    found: dict[str, float] = await locator.evaluate(
        "el => { const r = el.getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; }"
    )
    return found


async def card_heights(page: Page) -> list[float]:
    """Each card's height in wall order, to the pixel."""
    heights: list[float] = await page.eval_on_selector_all(
        "#alarm-list article.alarm",
        "cards => cards.map(c => Math.round(c.getBoundingClientRect().height))",
    )
    return heights


async def fits(card: Locator) -> None:
    """Nothing of the card sticks out of it, or is pushed past its edge."""
    card_box = await box(card)
    last = await box(card.locator(".alarm-actions button").last)
    assert last["x"] + last["width"] <= card_box["x"] + card_box["width"]
    assert await card.evaluate("el => el.scrollWidth <= el.clientWidth")


async def _breach_alarm(field: Field, site: str, fence: str, zone: str) -> dict[str, Any]:
    """A fence's breach in the field, and the hub's alarm holding it."""
    return await field.alarm_of(await field.fence_breach(site, fence, zone), site)


async def test_cards_keep_one_size_say_their_age_and_every_key_and_a_gone_person_in_green(
    officer_page: Page, field: Field
) -> None:
    page = officer_page
    camera = await field.alarm_of(
        await field.person_in_water("danshui-bridge", "db-cam-01", "z1"), "danshui-bridge"
    )
    fence = await _breach_alarm(field, "xiyong-wharf", "xy-fence-02", "z2")
    pictured, plain = alarm_card(page, camera["id"]), alarm_card(page, fence["id"])
    await expect(pictured.locator(".snapshot img")).to_be_visible()
    # The picture's place is kept on a card without one.
    pictured_slot = await box(pictured.locator(".snapshot"))
    plain_slot = await box(plain.locator(".snapshot"))
    assert (pictured_slot["width"], pictured_slot["height"]) == (
        plain_slot["width"],
        plain_slot["height"],
    )
    await expect(plain.locator(".snapshot.none")).to_have_text("无抓拍")
    # The age says what it is.
    await expect(pictured.locator(".age")).to_have_text(re.compile(r"^已开启 \d\d:\d\d$"))
    for card in (pictured, plain):
        buttons = card.locator(".alarm-actions button")
        await expect(buttons).to_have_count(4)
        await expect(card.locator(".alarm-actions button kbd")).to_have_count(4)
        tops = {round((await box(buttons.nth(i)))["y"]) for i in range(4)}
        assert 1 == len(tops), "the card's buttons wrap onto another row"
        await fits(card)
    sizes = await card_heights(page)
    assert 1 == len(set(sizes)), sizes

    # Moving the selection, acknowledging, announcing: nothing changes size.
    await page.keyboard.press("ArrowDown")
    await expect(plain).to_have_class(re.compile(r"\bselected\b"))
    assert sizes == await card_heights(page)
    await plain.locator("[data-action=ack]").click()
    await expect(plain.locator(".status-line .acked")).to_contain_text("李值班员")
    await plain.locator("[data-action=announce]").click()
    await expect(plain.locator(".announcements .speaker")).to_have_count(1)
    assert sizes == await card_heights(page)

    # The fence reports clear: the person has left, said in words and not in alarm red.
    await field.fence_clear("xiyong-wharf", "xy-fence-02", "z2")
    latest = plain.locator(".latest b")
    await expect(latest).to_have_text("围栏恢复")
    assert ALARM_RED != await latest.evaluate("el => getComputedStyle(el).color")
    await expect(plain.locator(".person-left")).to_have_text(
        re.compile(r"^人员已离开 · 围栏 \d\d:\d\d:\d\d 恢复正常$")
    )
    assert sizes == await card_heights(page)
    await fits(plain)
    await page.screenshot(path=SCREENSHOTS / "console-cards-zh.png")
    await page.keyboard.press("l")
    await expect(pictured.locator(".age")).to_have_text(re.compile(r"^open \d\d:\d\d$"))
    await expect(plain.locator(".person-left")).to_have_text(
        re.compile(r"^Person left · fence clear at \d\d:\d\d:\d\d$")
    )
    await page.screenshot(path=SCREENSHOTS / "console-cards-en.png")
    assert [] == (await untranslated(page))["found"]


async def test_an_escalated_card_says_why_it_climbed(
    officer_page: Page, field: Field, officer_api: httpx.AsyncClient
) -> None:
    page = officer_page
    alarm = await _breach_alarm(field, "danshui-bridge", "db-fence-02", "z2")
    card = alarm_card(page, alarm["id"])
    await card.locator("[data-action=ack]").click()
    response = await officer_api.post("/api/announcements", json={"alarm_id": alarm["id"]})
    assert 202 == response.status_code, response.text
    # A trigger after the warning: it did not work, and the alarm climbs.
    await field.fence_breach("danshui-bridge", "db-fence-02", "z2")
    await expect(card.locator(".badge.escalated")).to_be_visible()
    await expect(card.locator(".escalation-why")).to_have_text("升级原因:警告后再次触发")


async def test_an_alarm_an_officer_escalated_says_who_called_the_level_on_card_and_detail(
    officer_page: Page, field: Field
) -> None:
    """The reason comes from the hub: not "not acknowledged in time" for an alarm an
    officer escalated by hand (PROTOCOL 7.40)."""
    page = officer_page
    alarm = await _breach_alarm(field, "xiyong-wharf", "xy-fence-01", "z1")
    card = alarm_card(page, alarm["id"])
    await card.locator("[data-action=details]").click()
    detail = page.locator("#detail-page")
    await detail.locator("[data-detail-action=next-level]").click()
    await expect(detail.locator(".escalation-reason")).to_have_text(
        "升级原因:李值班员 立即通知下一级"
    )
    # The timeline says it of the climb too.
    climb = detail.locator("#detail-timeline li[data-type=escalation]")
    await expect(climb.locator(".escalation-why")).to_have_text("升级原因:李值班员 立即通知下一级")
    await page.keyboard.press("l")
    await expect(detail.locator(".escalation-reason")).to_have_text(
        "Why: 李值班员 called the next level"
    )
    await page.keyboard.press("Escape")
    await expect(card.locator(".escalation-why")).to_have_text(
        "Why: 李值班员 called the next level"
    )
    assert [] == (await untranslated(page))["found"]
    await page.keyboard.press("l")
    await expect(card.locator(".escalation-why")).to_have_text("升级原因:李值班员 立即通知下一级")


async def test_a_change_while_the_detail_fetches_its_timeline_is_not_lost_from_it(
    officer_page: Page, field: Field
) -> None:
    """The alarm climbs while the timeline's first fetch is on its way: the answer the
    detail then gets is from before the climb, and it must ask again."""
    page = officer_page
    alarm = await _breach_alarm(field, "xiyong-wharf", "xy-fence-01", "z1")
    card = alarm_card(page, alarm["id"])
    detail = page.locator("#detail-page")
    held = False

    async def answer_after_the_climb(route: Route) -> None:
        nonlocal held
        if held:
            await route.continue_()
            return
        held = True
        stale = await route.fetch()
        climbed = await field.api.post(f"/api/alarms/{alarm['id']}/next-level")
        assert 200 == climbed.status_code, climbed.text
        await expect(detail.locator(".escalation-reason")).to_be_visible()
        await route.fulfill(response=stale)

    await page.route(re.compile(r"/api/alarms/[^/]+/timeline$"), answer_after_the_climb)
    await card.locator("[data-action=details]").click()
    climb = detail.locator("#detail-timeline li[data-type=escalation]")
    await expect(climb.locator(".escalation-why")).to_have_text("升级原因:李值班员 立即通知下一级")


async def test_the_officers_own_resolve_is_not_taken_for_someone_elses(
    officer_page: Page, field: Field
) -> None:
    """The hub's WebSocket update overtakes the HTTP answer to the resolve, as it often
    does on its own: the answer is held here until the card has gone."""
    page = officer_page
    alarm = await _breach_alarm(field, "xiyong-wharf", "xy-fence-01", "z1")
    card = alarm_card(page, alarm["id"])

    async def answer_after_the_socket(route: Route) -> None:
        response = await route.fetch()
        await expect(card).to_have_count(0)
        await route.fulfill(response=response)

    await page.route(re.compile(r"/api/alarms/[^/]+/resolve$"), answer_after_the_socket)
    await card.locator("[data-action=resolve]").click()
    await page.keyboard.press("1")
    await page.click("#resolve-submit")
    toasts = page.locator("#toasts .toast")
    await expect(toasts.filter(has_text="警情已处置")).to_have_count(1)
    await expect(page.locator("#resolve-dialog")).not_to_be_visible()
    assert "已被他人处置" not in " ".join(await toasts.all_inner_texts())


async def test_blocked_sound_with_a_critical_alarm_waiting_is_a_banner_with_a_button(
    officer_page: Page, field: Field
) -> None:
    page = officer_page
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-connection", "open")
    await expect(page.locator("body")).to_have_attribute("data-sound", "blocked")
    banner = page.locator("#sound-banner")
    await expect(banner).to_be_hidden()
    await field.fence_breach("danshui-bridge", "db-fence-01", "z1")
    await field.person_in_water("danshui-bridge", "db-cam-01", "z1")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("浏览器阻止了警报声")
    assert (await box(banner))["height"] >= 60
    assert (await box(banner))["width"] >= 1800
    await page.screenshot(path=SCREENSHOTS / "console-sound-blocked-zh.png")
    await banner.get_by_role("button").click()
    await expect(page.locator("body")).to_have_attribute("data-sound", "sounding")
    await expect(banner).to_be_hidden()


async def test_a_viewer_is_not_called_to_act_nor_named_twice(
    stack: Stack, page: Page, field: Field
) -> None:
    await log_in(page, stack.hub_url, "viewer", stack.secrets.users["viewer"])
    await expect(page.locator("#user-badge")).to_have_text("观察员")
    await expect(page.locator("#shortcuts")).to_contain_text("1")
    for key in ("A", "N", "R"):
        shown = page.locator("#shortcuts kbd:visible", has_text=re.compile(f"^{key}$"))
        await expect(shown).to_have_count(0)
    await field.fence_breach("danshui-bridge", "db-fence-02", "z2")
    await field.person_in_water("danshui-bridge", "db-cam-02", "z2")
    await expect(page.locator("article.alarm.sev-critical")).to_have_count(1)
    await expect(page.locator("#alarm-callout")).to_be_visible()
    await expect(page.locator("#alarm-callout .callout-ack")).to_be_hidden()
    await expect(page.locator("body")).to_have_attribute("data-sound-mode", "idle")
    await expect(page.locator("#sound-indicator")).to_have_text("观察员不播放警报声")
    await expect(page.locator("#sound-banner")).to_be_hidden()
    await page.keyboard.press("l")
    await expect(page.locator("#user-badge")).to_have_text("Viewer")


async def test_devices_handover_and_detail_name_things_in_the_officers_language(
    officer_page: Page, field: Field, officer_api: httpx.AsyncClient
) -> None:
    page = officer_page
    alarm = await _breach_alarm(field, "danshui-bridge", "db-fence-01", "z1")
    card = alarm_card(page, alarm["id"])
    await card.locator("[data-action=ack]").click()
    await expect(card.locator(".badge.state")).to_have_text("已确认")

    await page.keyboard.press("l")
    await page.keyboard.press("3")
    speaker = page.locator('#devices-table tr[data-device="db-spk-01"]')
    await expect(speaker.locator("td").nth(2)).to_have_text("Speaker")
    zones = await speaker.locator("td").nth(4).inner_text()
    assert "、" not in zones
    assert ", " in zones
    fence = page.locator('#devices-table tr[data-device="db-fence-01"] td')
    await expect(fence.nth(2)).to_have_text("Fence")
    await page.keyboard.press("l")

    await page.keyboard.press("5")
    item = page.locator(f'#handover-root .handover-open li[data-alarm-id="{alarm["id"]}"]')
    await expect(item).to_contain_text("李值班员")
    await expect(item).not_to_contain_text("officer-li")

    await page.keyboard.press("1")
    await card.locator("[data-action=details]").click()
    detail = page.locator("#detail-page")
    options = detail.locator("#announce-clip option")
    await expect(options.first).to_have_text(re.compile(r"^淡水大桥东岸:"))
    await expect(options.filter(has_text="西涌旧码头:")).to_have_count(1)
    await expect(detail.locator("#detail-source")).to_have_text("完整记录(中心服务器存档)")
    await detail.locator("#announce-text").fill("请离开水边")
    await detail.locator("#announce-send").click()
    announcement = detail.locator("#detail-anns .announcement").first
    await expect(announcement.locator(".ann-label")).to_contain_text("语音合成")
    await expect(detail.locator("#detail-anns")).not_to_contain_text("tts-")

    # The printable export, in the console's language: what an officer hands on.
    for lang, short in (("zh", "zh"), ("en", "en")):
        export = detail.locator("a[data-export=html]")
        await expect(export).to_have_attribute("href", re.compile(f"lang={lang}$"))
        path = await export.get_attribute("href")
        made = await officer_api.post("/api/links", json={"path": path})
        printable = await page.context.new_page()
        await printable.goto(str(officer_api.base_url.join(made.json()["url"])))
        await expect(printable.locator("body")).to_contain_text("李值班员")
        await printable.screenshot(path=SCREENSHOTS / f"console-export-{short}.png")
        await printable.close()
        await page.keyboard.press("l")


async def test_another_officer_is_named_by_their_display_name_everywhere(
    stack: Stack, officer_page: Page, field: Field
) -> None:
    """The card, the handover (its open and its resolved lists), the timeline and the
    history name the supervisor who acknowledged and resolved, as the wall names its own
    officer (PROTOCOL 7.41)."""
    page = officer_page
    alarm = await _breach_alarm(field, "xiyong-wharf", "xy-fence-02", "z2")
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=10) as supervisor:
        session = await HubSession.login_async(
            supervisor, "supervisor-wang", stack.secrets.users["supervisor-wang"]
        )
        supervisor.headers.update(session.headers)
        acked = await supervisor.post(f"/api/alarms/{alarm['id']}/ack")
        assert 200 == acked.status_code, acked.text
        card = alarm_card(page, alarm["id"])
        await expect(card.locator(".status-line .acked")).to_contain_text("王值班长")

        await page.keyboard.press("5")
        item = page.locator(f'#handover-root .handover-open li[data-alarm-id="{alarm["id"]}"]')
        await expect(item).to_contain_text("王值班长")
        await expect(item).not_to_contain_text("supervisor-wang")

        await item.locator("[data-command=open-detail]").click()
        ack = page.locator("#detail-timeline li[data-type=ack]")
        await expect(ack).to_contain_text("王值班长")
        await expect(page.locator("#detail-page")).not_to_contain_text("supervisor-wang")

        resolved = await supervisor.post(
            f"/api/alarms/{alarm['id']}/resolve", json={"outcome": "false_alarm"}
        )
        assert 200 == resolved.status_code, resolved.text
    # The shift's resolved list says who resolved each, and how it ended.
    await page.keyboard.press("5")
    done = page.locator(f'#handover-root .handover-resolved li[data-alarm-id="{alarm["id"]}"]')
    await expect(done.locator(".resolved-outcome")).to_have_text("误报")
    await expect(done.locator(".resolved-by")).to_have_text("处置人 王值班长")
    await page.keyboard.press("l")
    await expect(done.locator(".resolved-outcome")).to_have_text("False alarm")
    await expect(done.locator(".resolved-by")).to_have_text("by 王值班长")
    await page.keyboard.press("l")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await page.keyboard.press("4")
    row = page.locator(f'#incidents-table tr[data-alarm-id="{alarm["id"]}"]')
    await expect(row).to_contain_text("王值班长")
    await expect(row).not_to_contain_text("supervisor-wang")


async def test_read_from_two_metres_dates_labels_toasts_and_empty_notes(
    officer_page: Page, field: Field, officer_api: httpx.AsyncClient
) -> None:
    page = officer_page
    alarm = await _breach_alarm(field, "xiyong-wharf", "xy-fence-02", "z2")
    # A toast stays clear of the live feed.
    await alarm_card(page, alarm["id"]).locator("[data-action=ack]").click()
    toast = page.locator("#toasts .toast").first
    await expect(toast).to_be_visible()
    toast_box, feed_box = await box(toast), await box(page.locator("#feed"))
    assert toast_box["x"] + toast_box["width"] <= feed_box["x"]

    await page.keyboard.press("2")
    note = page.locator('.zone[data-site="xiyong-wharf"][data-zone="z2"] .zone-note')
    await expect(note).to_be_visible()

    # Measured again until it holds: the map redraws on each message, and a note
    # measured just as it is replaced measures nothing.
    async def note_readable() -> bool:
        return (await box(note))["height"] >= 24

    await wait_for(note_readable, timeout=5, what="a zone note 24 px tall")

    response = await officer_api.post(
        f"/api/alarms/{alarm['id']}/resolve", json={"outcome": "false_alarm"}
    )
    assert 200 == response.status_code, response.text
    await page.keyboard.press("4")
    row = page.locator(f'#incidents-table tr[data-alarm-id="{alarm["id"]}"]')
    await expect(row).to_be_visible()
    cell = row.locator("td.note-cell")
    assert "table-cell" == await cell.evaluate("el => getComputedStyle(el).display")
    for period in ("24", "168"):
        await page.select_option("#history-range", period)
        await expect(page.locator("#history-chart .bar").first).to_be_visible()
        labels = await page.eval_on_selector_all(
            "#history-chart text.axis:not(.y)", "texts => texts.map(t => t.textContent)"
        )
        assert len(labels) == len(set(labels)), labels
    await page.keyboard.press("l")
    await expect(row.locator("td").first).to_have_text(
        re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}, \d\d:\d\d$")
    )
    await page.screenshot(path=SCREENSHOTS / "console-history-dates-en.png")


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


# The announce panel's controls whose middle is not what the browser would click there.
_COVERED_CONTROLS_JS = """
panel => [...panel.querySelectorAll("input, select, textarea, button")]
  .filter((el) => el.getClientRects().length > 0)
  .filter((el) => {
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    return !(hit === el || el.contains(hit) || hit?.closest("label")?.contains(el));
  })
  .map((el) => el.id || el.name || el.textContent.trim())
"""


async def test_toasts_leave_the_detail_pages_announce_panel_clear_and_clickable(
    officer_page: Page, field: Field
) -> None:
    page = officer_page
    alarm = await _breach_alarm(field, "danshui-bridge", "db-fence-01", "z1")
    await alarm_card(page, alarm["id"]).locator("[data-action=details]").click()
    detail = page.locator("#detail-page")
    panel = detail.locator(".announce-panel")
    await expect(panel.locator("#announce-send")).to_be_enabled()
    # Three toasts at once: the acknowledgement's, then two announcements'.
    await detail.locator("[data-detail-action=ack]").click()
    toasts = page.locator("#toasts .toast")
    for count in (2, 3):
        await page.keyboard.press("n")
        await expect(toasts).to_have_count(count)
    await page.screenshot(path=SCREENSHOTS / "console-detail-toasts-zh.png")
    controls = panel.locator("input, select, textarea, button")
    control_boxes = [await box(controls.nth(i)) for i in range(await controls.count())]
    assert control_boxes
    for i in range(3):
        toast_box = await box(toasts.nth(i))
        covered = [c for c in control_boxes if c["width"] and _overlap(toast_box, c)]
        assert [] == covered, f"toast {i} covers announce controls"
        assert not _overlap(toast_box, await box(panel)), f"toast {i} is over the panel"
    assert [] == await panel.evaluate(_COVERED_CONTROLS_JS)


# The side list's items whose middle is not what the browser would click there.
_COVERED_ITEMS_JS = """
panel => [...panel.querySelectorAll("li, button")]
  .filter((el) => el.getClientRects().length > 0)
  .filter((el) => {
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    return !(hit === el || el.contains(hit));
  })
  .map((el) => el.textContent.trim())
"""


async def test_toasts_leave_the_map_pages_side_list_clear_and_clickable(
    officer_page: Page, field: Field
) -> None:
    page = officer_page
    for site, fence, zone in (
        ("danshui-bridge", "db-fence-01", "z1"),
        ("danshui-bridge", "db-fence-02", "z2"),
        ("xiyong-wharf", "xy-fence-02", "z2"),
    ):
        await _breach_alarm(field, site, fence, zone)
    await page.keyboard.press("2")
    zone_on_map = page.locator(
        '#map-list [data-map-kind=zone][data-site="danshui-bridge"][data-zone="z1"]'
    )
    await zone_on_map.locator(".zone-label").click()
    side = page.locator("#map-detail")
    await expect(side.locator("[data-command=open-detail]")).to_have_count(1)
    # Three toasts at once: A acknowledges the callout's alarm from the map, one by one.
    toasts = page.locator("#toasts .toast")
    for count in (1, 2, 3):
        await page.keyboard.press("a")
        await expect(toasts).to_have_count(count)
    await page.screenshot(path=SCREENSHOTS / "console-map-toasts-zh.png")
    side_box = await box(side)
    for i in range(3):
        assert not _overlap(await box(toasts.nth(i)), side_box), f"toast {i} is over the list"
    assert [] == await side.evaluate(_COVERED_ITEMS_JS)
    await side.locator("[data-command=open-detail]").click()
    await expect(page.locator("#detail-page")).to_be_visible()


async def test_landmarks_roles_a_live_region_and_a_visible_focus(
    officer_page: Page, field: Field
) -> None:
    page = officer_page
    await expect(page.get_by_role("banner")).to_contain_text("李值班员")
    alarm = await _breach_alarm(field, "danshui-bridge", "db-fence-02", "z2")
    wall = page.get_by_role("list").filter(has=alarm_card(page, alarm["id"]))
    await expect(wall.get_by_role("listitem")).to_have_count(
        await page.locator("#alarm-list article.alarm").count()
    )
    await expect(alarm_card(page, alarm["id"])).to_have_attribute(
        "aria-label", re.compile(r"警情,未确认:淡水大桥东岸")
    )
    await expect(page.locator("#alarm-announcer[aria-live=assertive]")).to_contain_text("新警情:")
    # Severity in the feed by shape and name too, not by colour alone.
    mark = page.locator("#feed-list li .sev-mark").first
    await expect(mark).to_have_attribute("aria-label", re.compile(r"^(紧急|警告|提示)$"))
    await page.keyboard.press("Tab")
    style: dict[str, Any] = await page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return {style: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }"
    )
    assert "none" != style["style"]
    assert style["width"] >= 2
