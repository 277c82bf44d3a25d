"""The duty console against the whole running stack, in real Chromium.

Raw device reports published on the broker become alarm cards; the officer
acknowledges, announces until the simulated speaker reports done, and
resolves, by mouse and by keyboard; a critical alarm sounds until it is
acknowledged; the page speaks one language at a time; a stopped hub shows the
red banner and the console recovers by itself when the hub is back.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from riverguard.stack import Stack
from riverguard.testing import wait_for
from tests.browser.conftest import SCREENSHOTS
from tests.browser.console import (
    OFFICER,
    SPEAKER_DONE_TIMEOUT_MS,
    Field,
    alarm_card,
    log_in,
    untranslated,
)

pytestmark = pytest.mark.browser


async def test_fence_breach_card_is_acknowledged_announced_until_done_and_resolved(
    officer_page: Page, field: Field, officer_api: httpx.AsyncClient
) -> None:
    page = officer_page
    # The login click is the gesture that lets the page make sound.
    await expect(page.locator("body")).to_have_attribute("data-sound", "armed")
    await expect(page.locator("#sound-indicator")).to_have_text("警报声已启用")

    event_id = await field.fence_breach("xiyong-wharf", "xy-fence-01", "z1")
    alarm = await field.alarm_of(event_id, "xiyong-wharf")
    card = alarm_card(page, alarm["id"])
    await expect(card).to_have_class(re.compile(r"\bsev-warning\b.*\bstate-open\b"))
    await expect(card.locator(".site-name")).to_have_text("西涌旧码头")
    await expect(card.locator(".zone-name")).to_have_text("码头斜坡")
    await expect(card.locator(".badge.severity")).to_have_text("警告")
    await expect(card.locator(".badge.state")).to_have_text("未确认")
    await expect(card.locator(".latest b")).to_have_text("围栏越界")
    await expect(card.locator(".event-count")).to_have_text("事件数 1")
    await expect(page.locator(f'#feed-list li[data-event-id="{event_id}"]')).to_contain_text(
        "围栏越界"
    )
    age = card.locator(".age")
    await expect(age).to_have_text(re.compile(r"^已开启 \d\d:\d\d$"))
    first_age = await age.inner_text()
    await expect(age).not_to_have_text(first_age)  # it ticks

    await card.locator("[data-action=ack]").click()
    await expect(card.locator(".badge.state")).to_have_text("已确认")
    await expect(card.locator(".acked")).to_contain_text("李值班员")
    await expect(card.locator("[data-action=ack]")).to_be_disabled()

    await card.locator("[data-action=announce]").click()
    speaker = card.locator('.speaker[data-speaker="xy-spk-01"]')
    await expect(speaker).to_have_attribute("data-state", "done", timeout=SPEAKER_DONE_TIMEOUT_MS)
    await expect(speaker).to_have_text("xy-spk-01 · 已播完")

    await card.locator("[data-action=resolve]").click()
    await page.locator("#resolve-dialog input[value=persuaded_away]").check()
    await page.fill("#resolve-note", "已劝离，无人落水")
    await page.click("#resolve-submit")
    await expect(card).to_have_count(0)
    await expect(page.locator("#resolve-dialog")).not_to_be_visible()
    stored = (await officer_api.get(f"/api/alarms/{alarm['id']}")).json()
    assert ("resolved", "persuaded_away", OFFICER, "已劝离，无人落水") == (
        stored["state"],
        stored["outcome"],
        stored["resolved_by"],
        stored["note"],
    )


async def test_raw_fence_breach_on_the_broker_shows_as_an_alarm_within_two_seconds(
    officer_page: Page, field: Field
) -> None:
    """Device report -> edge -> hub -> WebSocket -> card, timed from the publish."""
    page = officer_page
    cards = page.locator("article.alarm").filter(has_text="芦苇浅滩")
    await expect(cards).to_have_count(0)
    started = time.monotonic()
    await field.fence_breach("xiyong-wharf", "xy-fence-02", "z2")
    await expect(cards).to_have_count(1, timeout=2_000)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"the card took {elapsed:.2f} s"
    await expect(cards.locator(".latest b")).to_have_text("围栏越界")


async def test_critical_alarm_sounds_until_acknowledged_with_the_keyboard(
    officer_page: Page, field: Field
) -> None:
    page = officer_page
    body = page.locator("body")
    await expect(body).to_have_attribute("data-sound", "armed")
    # A fence breach and a person in the water in one zone: the edge raises it to critical.
    fence = await field.fence_breach("danshui-bridge", "db-fence-02", "z2")
    await field.person_in_water("danshui-bridge", "db-cam-02", "z2")
    alarm = await field.alarm_of(fence, "danshui-bridge")
    card = alarm_card(page, alarm["id"])
    await expect(card).to_have_class(re.compile(r"\bsev-critical\b.*\bstate-open\b"))
    await expect(body).to_have_attribute("data-sound", "sounding")
    await expect(page.locator("#sound-indicator")).to_have_text("警报声响起中")
    await expect(card.locator(".snapshot img")).to_be_visible()
    # The panel that stays on every page until someone acknowledges.
    callout = page.locator("#alarm-callout")
    await expect(callout).to_be_visible()
    await expect(callout.locator(".callout-text")).to_contain_text("紧急")
    await page.keyboard.press("2")
    await expect(callout).to_be_visible()
    await page.keyboard.press("1")

    await page.keyboard.press("a")
    await expect(card).to_have_class(re.compile(r"\bstate-acknowledged\b"))
    await expect(body).to_have_attribute("data-sound", "armed")
    await expect(callout).to_be_hidden()

    await page.keyboard.press("n")
    await expect(card.locator('.speaker[data-speaker="db-spk-01"]')).to_have_count(1)

    await page.keyboard.press("r")
    await expect(page.locator("#resolve-dialog")).to_be_visible()
    await page.keyboard.press("3")
    await expect(page.locator("#resolve-dialog input[value=false_alarm]")).to_be_checked()
    await page.keyboard.press("Escape")
    await expect(page.locator("#resolve-dialog")).not_to_be_visible()
    await expect(card).to_have_count(1)


async def test_language_switch_leaves_no_string_of_the_other_language(
    officer_page: Page, field_devices: Field
) -> None:
    """Both languages, with a critical alarm, an announced one and the resolve dialog.

    Also saves the README screenshots of the console at 1920x1080.
    """
    page = officer_page
    field = field_devices
    fence = await field.fence_breach("danshui-bridge", "db-fence-01", "z1")
    await field.person_in_water("danshui-bridge", "db-cam-01", "z1")
    critical = await field.alarm_of(fence, "danshui-bridge")
    warning = await field.alarm_of(
        await field.fence_breach("xiyong-wharf", "xy-fence-02", "z2"), "xiyong-wharf"
    )
    warning_card = alarm_card(page, warning["id"])
    await warning_card.locator("[data-action=ack]").click()
    await warning_card.locator("[data-action=announce]").click()
    await expect(warning_card.locator('.speaker[data-speaker="xy-spk-01"]')).to_have_attribute(
        "data-state", "done", timeout=SPEAKER_DONE_TIMEOUT_MS
    )
    await expect(alarm_card(page, critical["id"])).to_have_class(re.compile(r"\bsev-critical\b"))
    await expect(alarm_card(page, critical["id"]).locator(".snapshot img")).to_be_visible()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[str]] = {}
    for lang in ("zh-CN", "en"):
        if lang == "en":
            await page.keyboard.press("l")
        await expect(page.locator("html")).to_have_attribute("lang", lang)
        result = await untranslated(page)
        found[lang] = result["found"]
        short = "zh" if lang == "zh-CN" else "en"
        await page.screenshot(path=SCREENSHOTS / f"console-alarms-{short}.png")
        await page.keyboard.press("r")
        await expect(page.locator("#resolve-dialog")).to_be_visible()
        found[f"{lang} resolve dialog"] = (await untranslated(page))["found"]
        await page.keyboard.press("Escape")
        await expect(page.locator("#resolve-dialog")).not_to_be_visible()

    assert {
        "zh-CN": [],
        "zh-CN resolve dialog": [],
        "en": [],
        "en resolve dialog": [],
    } == found
    await expect(alarm_card(page, critical["id"]).locator(".site-name")).to_have_text(
        "Danshui Bridge, east bank"
    )
    await expect(page.locator("#sound-indicator")).to_have_text("Alarm sounding")


async def test_viewer_sees_alarms_but_cannot_act_on_them(
    stack: Stack, page: Page, field: Field
) -> None:
    await log_in(page, stack.hub_url, "viewer", stack.secrets.users["viewer"])
    event_id = await field.fence_breach("xiyong-wharf", "xy-fence-02", "z2")
    alarm = await field.alarm_of(event_id, "xiyong-wharf")
    card = alarm_card(page, alarm["id"])
    for action in ("ack", "announce", "resolve"):
        await expect(card.locator(f"[data-action={action}]")).to_be_disabled()
    await page.keyboard.press("a")
    await page.keyboard.press("r")
    await expect(page.locator("#resolve-dialog")).not_to_be_visible()
    await expect(card.locator(".badge.state")).to_have_text("未确认")

    # The detail is open to a viewer, its actions are not.
    await expect(card.locator("[data-action=details]")).to_be_enabled()
    await page.keyboard.press("Enter")
    detail = page.locator("#detail-page")
    await expect(detail).to_be_visible()
    for control in ("[data-detail-action=ack]", "[data-detail-action=resolve]", "#announce-send"):
        await expect(detail.locator(control)).to_be_disabled()
    await page.keyboard.press("n")
    await expect(detail.locator("#detail-anns .speaker")).to_have_count(0)


async def test_rejected_token_returns_to_login_with_the_reason(
    stack: Stack, officer_page: Page
) -> None:
    page = officer_page
    await page.evaluate("sessionStorage.setItem('riverguard.token', 'not-a-token')")
    await page.evaluate("sessionStorage.setItem('riverguard.refresh', 'not-a-token-either')")
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-view", "login")
    await expect(page.locator("#login-error")).to_have_text("登录已过期，请重新登录")
    assert await page.evaluate("sessionStorage.getItem('riverguard.token')") is None


async def test_a_rejected_access_token_is_renewed_with_the_refresh_token(
    stack: Stack, officer_page: Page
) -> None:
    """Access tokens live minutes: the console renews one the hub refuses (or that runs
    out) with the session's refresh token, and stays on the console."""
    page = officer_page
    await page.evaluate("sessionStorage.setItem('riverguard.token', 'not-a-token')")
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-view", "console")
    await expect(page.locator("body")).to_have_attribute("data-connection", "open")
    token = await page.evaluate("sessionStorage.getItem('riverguard.token')")
    assert token not in (None, "not-a-token")


async def test_the_websocket_and_exports_carry_no_token_in_their_urls(
    stack: Stack, page: Page
) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    await log_in(page, stack.hub_url, OFFICER, stack.secrets.users[OFFICER])
    token = await page.evaluate("sessionStorage.getItem('riverguard.token')")
    assert sockets
    assert all("token" not in url for url in sockets)
    assert all(token not in url for url in requests)


async def test_a_throttled_login_says_how_long_to_wait_in_both_languages(
    stack: Stack, page: Page
) -> None:
    """After five failed logins of one name the hub answers 429 with Retry-After, and
    the login page says how long to wait. (A made-up name: the others' logins on the
    shared stack are not held up.)"""
    await page.goto(f"{stack.hub_url}/")
    error = page.locator("#login-error")
    for attempt in range(5):
        await page.fill("#login-username", "intruder")
        await page.fill("#login-password", f"guess-{attempt}")
        await page.click("#login-submit")
        await expect(error).to_have_text("用户名或密码错误")
        await expect(page.locator("#login-submit")).to_be_enabled()
    throttled = re.compile(r"^登录尝试过多，请 \d+ 秒后再试$")
    # The wait after the fifth failure is 1 s: on a loaded machine the next try may
    # come later and fail again (then the wait doubles); a few tries see the refusal.
    for _ in range(4):
        await page.click("#login-submit")
        await expect(page.locator("#login-submit")).to_be_enabled()
        await expect(error).to_have_text(re.compile(r"^(用户名或密码错误|登录尝试过多.*)$"))
        if throttled.match(await error.inner_text()):
            break
    await expect(error).to_have_text(throttled)
    # The message follows the language.
    await page.locator('[data-command="lang"]:visible').first.click()
    await expect(error).to_have_text(re.compile(r"^Too many sign-in attempts; try again in \d+ s$"))
    await page.screenshot(path=SCREENSHOTS / "console-login-throttled-en.png")


async def test_logout_forgets_the_token_so_a_reload_stays_on_login(
    stack: Stack, officer_page: Page
) -> None:
    page = officer_page
    token = await page.evaluate("sessionStorage.getItem('riverguard.token')")
    await page.click("#logout")
    await expect(page.locator("body")).to_have_attribute("data-view", "login")
    assert await page.evaluate("sessionStorage.getItem('riverguard.token')") is None
    # Revoked on the hub as well, not only forgotten by the browser.
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=10) as http:

        async def revoked() -> bool:
            me = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            return me.status_code == 401

        await wait_for(revoked, what="the logged-out token refused")
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-view", "login")
    await expect(page.locator("#login-error")).to_be_hidden()


async def test_reloaded_console_shows_sound_blocked_until_the_officer_clicks(
    officer_page: Page,
) -> None:
    """A reload keeps the session but not the browser's permission to make sound."""
    page = officer_page
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-connection", "open")
    indicator = page.locator("#sound-indicator")
    await expect(page.locator("body")).to_have_attribute("data-sound", "blocked")
    await expect(indicator).to_have_text("警报声被浏览器阻止 — 点击启用")
    await indicator.click()
    await expect(page.locator("body")).to_have_attribute("data-sound", "armed")
    await expect(indicator).to_have_text("警报声已启用")


async def test_stopped_hub_shows_red_banner_and_console_recovers_when_it_returns(
    stack: Stack, officer_page: Page, field: Field
) -> None:
    """A breach while the hub is down waits at the edge and shows once the hub is back."""
    page = officer_page
    event_id = await field.fence_breach("xiyong-wharf", "xy-fence-01", "z1")
    alarm = await field.alarm_of(event_id, "xiyong-wharf")
    card = alarm_card(page, alarm["id"])
    await expect(card).to_be_visible()
    banner = page.locator("#conn-banner")
    await expect(banner).to_be_hidden()

    hub = stack.components["hub"].process
    try:
        # Blocking process control goes to a thread so the browser's loop keeps running.
        await asyncio.to_thread(hub.stop)
        await expect(banner).to_be_visible()
        await expect(banner.locator(".conn-text")).to_have_text(
            "与中心服务器的连接已断开 — 正在重连…"
        )
        await expect(page.locator("body")).to_have_attribute("data-connection", "lost")
        await expect(card).to_be_visible()  # the last picture stays, marked stale
        # The edge keeps this one in its outbox until the hub commits it.
        missed_event = await field.fence_breach("danshui-bridge", "db-fence-02", "z2")
    finally:
        if not hub.running():
            await asyncio.to_thread(hub.start)
        await asyncio.to_thread(hub.wait_until, stack.hub_healthy, 90, "healthy")

    # Reconnect delays are capped at 10 s; a restarted hub answers with a fresh hello.
    await expect(banner).to_be_hidden(timeout=20_000)
    await expect(page.locator("body")).to_have_attribute("data-connection", "open")
    await expect(card).to_be_visible()
    await expect(card.locator(".site-name")).to_have_text("西涌旧码头")
    missed = await field.alarm_of(missed_event, "danshui-bridge")
    await expect(alarm_card(page, missed["id"])).to_be_visible()
    await expect(alarm_card(page, missed["id"]).locator(".zone-name")).to_have_text("东岸台阶")


async def test_hub_closing_4008_too_slow_reconnects_at_once_with_since_and_misses_nothing(
    stack: Stack, page: Page, field: Field
) -> None:
    """The hub's 4008 is injected on a real socket (a routed WebSocket that relays to
    the hub): the console reconnects at once with ?since, and an alarm raised before
    the new socket reaches the hub arrives by replay."""
    sockets: list[WebSocketRoute] = []
    # The second socket is held back from the hub until an alarm has been raised.
    relay_second = asyncio.Event()

    async def relay(socket: WebSocketRoute) -> None:
        sockets.append(socket)
        if len(sockets) == 1:
            socket.connect_to_server()
        else:
            await relay_second.wait()
            socket.connect_to_server()

    await page.route_web_socket(re.compile(r"/api/ws"), relay)
    await log_in(page, stack.hub_url, OFFICER, stack.secrets.users[OFFICER])
    first = await field.alarm_of(
        await field.fence_breach("xiyong-wharf", "xy-fence-02", "z2"), "xiyong-wharf"
    )
    await expect(alarm_card(page, first["id"])).to_be_visible()

    await sockets[0].close(code=4008, reason="too slow")
    await wait_for(lambda: len(sockets) == 2, timeout=2, what="an immediate reconnect")
    assert "since=" in sockets[1].url
    missed = await field.alarm_of(
        await field.fence_breach("danshui-bridge", "db-fence-01", "z1"), "danshui-bridge"
    )
    relay_second.set()
    await expect(alarm_card(page, missed["id"])).to_be_visible()
    await expect(alarm_card(page, first["id"])).to_be_visible()
    await expect(page.locator("body")).to_have_attribute("data-connection", "open")
