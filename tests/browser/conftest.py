"""Real Chromium through Playwright's async API, and the console served as static files.

One browser per test: the tests are asyncio tests with a loop per test, and a
headless Chromium starts in a few hundred milliseconds.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, ViewportSize, async_playwright

from riverguard.hub_session import HubSession
from riverguard.stack import Stack
from tests.browser.console import OFFICER, Field, log_in
from tests.conftest import REPO

CONSOLE_DIR = REPO / "console"
# Screenshots go to test-artifacts/ (ignored by git) so a test run leaves the
# tree clean; RIVERGUARD_UPDATE_SCREENSHOTS=1 writes the README's copies instead.
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
SCREENSHOTS = (
    REPO / "docs" / "screenshots"
    if os.environ.get("RIVERGUARD_UPDATE_SCREENSHOTS") == "1"
    else ARTIFACTS
)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WALL_SCREEN = ViewportSize(width=1920, height=1080)


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


class PageErrors:
    """JavaScript exceptions, i18n misses and Content Security Policy refusals a page
    reported (the hub serves the console with a CSP without inline script or style)."""

    def __init__(self, page: Page) -> None:
        self.exceptions: list[str] = []
        self.i18n: list[str] = []
        self.csp: list[str] = []
        page.on("pageerror", lambda error: self.exceptions.append(str(error)))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and message.text.startswith("i18n:"):
            self.i18n.append(message.text)
        if message.type == "error" and "Content Security Policy" in message.text:
            self.csp.append(message.text)


@pytest.fixture
async def page(chromium: Browser) -> AsyncIterator[Page]:
    """A fresh browser context (empty storage) at wall-screen size; fails on JS errors."""
    context = await chromium.new_context(viewport=WALL_SCREEN)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors = PageErrors(page)
    yield page
    await context.close()
    assert [] == errors.exceptions, "the console threw"
    assert [] == errors.i18n, "the console asked for strings the table lacks"
    assert [] == errors.csp, "the console did something its CSP forbids"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def static_console() -> Iterator[str]:
    """The console folder over plain HTTP (ES modules will not load from file://)."""
    handler = functools.partial(_QuietHandler, directory=str(CONSOLE_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test.static-console")
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()
    server.server_close()


def console_path(name: str) -> Path:
    return CONSOLE_DIR / name


@pytest.fixture
async def officer_api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=10) as client:
        session = await HubSession.login_async(client, OFFICER, stack.secrets.users[OFFICER])
        client.headers.update(session.headers)
        yield client


@pytest.fixture
async def field(stack: Stack, officer_api: httpx.AsyncClient) -> AsyncIterator[Field]:
    devices = Field(stack, officer_api)
    yield devices
    await devices.resolve_leftovers()


@pytest.fixture
async def officer_page(stack: Stack, page: Page) -> Page:
    await log_in(page, stack.hub_url, OFFICER, stack.secrets.users[OFFICER])
    return page


# Every device of the example configuration, as (site, type, id).
DEVICES = [
    ("danshui-bridge", "fence", "db-fence-01"),
    ("danshui-bridge", "fence", "db-fence-02"),
    ("danshui-bridge", "camera", "db-cam-01"),
    ("danshui-bridge", "camera", "db-cam-02"),
    ("xiyong-wharf", "fence", "xy-fence-01"),
    ("xiyong-wharf", "fence", "xy-fence-02"),
    ("xiyong-wharf", "camera", "xy-cam-01"),
    ("xiyong-wharf", "camera", "xy-cam-02"),
]


@pytest.fixture
async def field_devices(field: Field) -> AsyncIterator[Field]:
    """Every fence and camera online with battery and signal; back online after the test."""
    for index, (site, kind, device) in enumerate(DEVICES):
        await field.device_status(
            site, kind, device, online=True, battery=0.9 - index * 0.04, rssi=-55 - index * 3
        )
    yield field
    for index, (site, kind, device) in enumerate(DEVICES):
        await field.device_status(
            site, kind, device, online=True, battery=0.9 - index * 0.04, rssi=-55 - index * 3
        )
