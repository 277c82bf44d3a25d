"""The city overview and the newest intrusion, against the whole running stack in real
Chromium: sites grouped along the grid path with their risk in words and shapes,
filtered by typing, arrows and Enter to a site's map; a site's devices fetched on
demand; from any page one key to the newest intrusion and its site's speakers.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.console import Field, alarm_card

pytestmark = pytest.mark.browser


async def test_the_overview_groups_filters_and_opens_a_sites_map(
    officer_page: Page, field: Field
) -> None:
    page = officer_page
    alarm = await field.alarm_of(
        await field.fence_breach("xiyong-wharf", "xy-fence-01", "z1"), "xiyong-wharf"
    )
    await expect(alarm_card(page, alarm["id"])).to_be_visible()
    await page.keyboard.press("6")
    await expect(page.locator("#city-page")).to_be_visible()
    # Street, then each grid: the example's two sites sit in two grids of one street.
    headings = page.locator("#city-list .city-level")
    await expect(headings).to_have_text(["danshui", "grid-07", "grid-11"])
    rows = page.locator("#city-list .city-site")
    await expect(rows).to_have_count(2)
    wharf = page.locator('#city-list .city-site[data-site="xiyong-wharf"]')
    await expect(wharf.locator(".city-alarms")).to_have_text("未结警报：1")
    # The risk is a word and a shape as well as a colour.
    risk = await wharf.get_attribute("data-risk")
    words = {"blue": "蓝", "yellow": "黄", "orange": "橙", "red": "红"}
    assert risk in words
    await expect(wharf.locator(".risk")).to_contain_text(words[risk])
    await expect(wharf.locator(".risk-shape")).not_to_have_text("")

    # Typing filters at once (the search box has the keyboard), arrows move, Enter opens.
    await expect(page.locator("#city-search")).to_be_focused()
    await page.keyboard.type("xiyong")
    await expect(rows).to_have_count(1)
    await expect(page.locator("#city-count")).to_have_text("1 / 2 个站点")
    await page.keyboard.press("Control+a")
    await page.keyboard.press("Backspace")
    await expect(rows).to_have_count(2)
    await page.locator("#city-filter").select_option("alarms")
    await expect(rows).to_have_count(1)
    await page.locator("#city-filter").select_option("all")
    await page.locator("#city-search").focus()
    await page.keyboard.press("ArrowDown")
    await expect(page.locator("#city-list .city-site.selected")).to_have_attribute(
        "data-site", "xiyong-wharf"
    )
    await page.keyboard.press("Enter")
    await expect(page.locator("#map-page")).to_be_visible()
    # The map fetched the site's devices on demand: its markers are drawn.
    await expect(
        page.locator('#map-list [data-map-kind=device][data-device="xy-spk-01"]')
    ).to_be_visible()

    await page.keyboard.press("6")
    await page.keyboard.press("Escape")
    await page.keyboard.press("l")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(wharf.locator(".city-alarms")).to_have_text("Open alarms: 1")
    await expect(page.locator("#city-count")).to_have_text("2 of 2 sites")
    await page.keyboard.press("l")


@pytest.mark.parametrize("start", ["1", "2", "3", "4", "5", "6"])
async def test_one_key_from_any_page_finds_the_newest_intrusion_and_its_speakers(
    officer_page: Page, field: Field, start: str
) -> None:
    page = officer_page
    older = await field.alarm_of(
        await field.fence_breach("danshui-bridge", "db-fence-01", "z1"), "danshui-bridge"
    )
    newest = await field.alarm_of(
        await field.fence_breach("xiyong-wharf", "xy-fence-02", "z2"), "xiyong-wharf"
    )
    assert older["id"] != newest["id"]
    await expect(alarm_card(page, newest["id"])).to_be_visible()
    await page.keyboard.press(start)
    if start == "6":
        # The overview's search box takes letters: Esc leaves it, the second key press.
        await page.keyboard.press("Escape")
    await page.keyboard.press("i")
    await expect(page.locator("#detail-page")).to_be_visible()
    await expect(page.locator("#detail-root")).to_contain_text("西涌")
    # The site's speakers, fetched on demand, are there to announce on.
    speaker = page.locator('#announce-form input[name=target][value="xy-spk-01"]')
    await expect(speaker).to_be_checked()


async def test_the_devices_page_fetches_the_sites_it_shows(officer_page: Page) -> None:
    page = officer_page
    await page.keyboard.press("3")
    rows = page.locator("#devices-table tbody tr")
    # A small fleet: every site at once, each site's devices fetched from the hub.
    await expect(rows).to_have_count(10)
    await page.locator("#devices-site").select_option("xiyong-wharf")
    await expect(rows).to_have_count(5)
    for device in await rows.all():
        assert (await device.get_attribute("data-device") or "").startswith("xy-")
    await expect(page.locator(".edge-card")).to_have_count(1)
    await expect(page.locator("#devices-paging")).to_be_hidden()
    await page.locator("#devices-site").select_option("")
    await expect(rows).to_have_count(10)
