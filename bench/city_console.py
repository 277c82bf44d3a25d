"""The duty console at city scale: hello size, login to a usable wall, breach to wall.

Writes a fleet configuration (``riverguard sim fleet-config``), starts
``riverguard up --no-sim`` on it and the simulated fleet (``riverguard sim
fleet``, every device's status heartbeat, no noise) against it, waits until the
hub counts 90 % of the devices online or the count stops rising (a loaded machine
keeps some reconnecting; the report says how many were online), then measures in
headless Chromium at 1920x1080:

- the ``hello`` the hub sends a console, in bytes, over a real WebSocket;
- login to a usable wall: from the click on "sign in" to the wall drawn from the
  hub's ``hello`` (the site strip drawn, the socket open), in a fresh browser context
  each time;
- breach to wall: a fence breach published as the device does, at a new site and
  zone each time, to its alarm card on the open wall (the page's own clock, the
  same machine's), while the fleet's heartbeats run; with ``--screenshots DIR``,
  the wall and the city overview after the first few breaches.

Not a test: run it by hand and put the figures in docs/performance.md::

    .venv/bin/python bench/city_console.py --sites 200 --devices-per-site 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import websockets
from paho.mqtt.enums import CallbackAPIVersion
from playwright.async_api import Browser, Page, async_playwright

from riverguard.config import Config, load_config
from riverguard.testing import fence_report
from riverguard.wire import topics
from riverguard.wire.socket_auth import subprotocols
from simulators.fleet_config import fleet_config

UP_TIMEOUT_S = 900.0
FLEET_ONLINE_SHARE = 0.9
FLEET_TIMEOUT_S = 1800.0
FLEET_SETTLED_S = 90.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
USABLE_TIMEOUT_MS = 60_000
# Under the fleet's heartbeats on a loaded machine a breach has taken tens of seconds.
CARD_TIMEOUT_S = 180.0
# Screenshots of a city with a few open alarms, taken between two breaches.
SCREENSHOT_AFTER = 4
# The page notes when each alarm card first appears, by its own clock.
WATCH_CARDS_JS = """() => {
  window.cardSeen = {};
  new MutationObserver(() => {
    for (const card of document.querySelectorAll('article.alarm[data-alarm-id]')) {
      window.cardSeen[card.dataset.alarmId] ??= Date.now();
    }
  }).observe(document.body, {childList: true, subtree: true});
}"""


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 1),
        "p99_ms": round(_percentile(values, 0.99), 1),
        "max_ms": round(max(values), 1),
    }


def _start(command: list[str], log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for_line(log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(encoding="utf-8", errors="replace")
        if text in content:
            return
        if "failed:" in content:
            raise RuntimeError(content[-2000:])
        time.sleep(1)
    raise TimeoutError(f"no {text!r} in {log} after {timeout} s")


async def _token(http: httpx.AsyncClient, login: dict[str, str]) -> str:
    answer = await http.post(
        "/api/auth/token", data={"username": login["username"], "password": login["password"]}
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


async def _online(http: httpx.AsyncClient, token: str) -> int:
    sites = (await http.get("/api/sites", headers={"Authorization": f"Bearer {token}"})).json()
    return sum(c["online"] for s in sites for c in s["devices"].values())


async def _wait_fleet_online(http: httpx.AsyncClient, token: str, total: int) -> tuple[float, int]:
    """Seconds until the hub counts FLEET_ONLINE_SHARE of the devices online, or until the
    count stops rising for FLEET_SETTLED_S (a loaded machine keeps some reconnecting);
    and the count then."""
    started = time.monotonic()
    best, best_at = 0, started
    while time.monotonic() - started < FLEET_TIMEOUT_S:
        online = await _online(http, token)
        now = time.monotonic()
        if online > best:
            best, best_at = online, now
        if online >= FLEET_ONLINE_SHARE * total or now - best_at > FLEET_SETTLED_S:
            return now - started, online
        await asyncio.sleep(5)
    raise TimeoutError("the fleet did not come online")


async def _hello_bytes(hub_url: str, token: str) -> int:
    url = hub_url.replace("http://", "ws://") + "/api/ws"
    async with websockets.connect(
        url,
        max_size=None,
        subprotocols=subprotocols(token),
    ) as ws:
        frame = await ws.recv()
    return len(frame.encode() if isinstance(frame, str) else frame)


async def _log_in(browser: Browser, hub_url: str, login: dict[str, str]) -> tuple[Page, float]:
    """A fresh context's login; the ms from the click to the wall drawn from the hello."""
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page = await context.new_page()
    await page.goto(f"{hub_url}/")
    await page.fill("#login-username", login["username"])
    await page.fill("#login-password", login["password"])
    started = time.monotonic()
    await page.click("#login-submit")
    await page.wait_for_function(
        "() => document.body.dataset.view === 'console'"
        " && document.body.dataset.connection === 'open'"
        " && document.querySelector('#status-strip').childElementCount > 0",
        timeout=USABLE_TIMEOUT_MS,
    )
    return page, (time.monotonic() - started) * 1000


def _fences(config: Config) -> list[tuple[str, str, str]]:
    """(site, fence, zone) for each zone of each site that has a fence, site by site."""
    found: dict[tuple[str, str], str] = {}
    for device in config.devices:
        if device.type == "fence":
            for zone in device.zones:
                found.setdefault((device.site, zone), device.id)
    return [(site, fence, zone) for (site, zone), fence in found.items()]


async def _screenshots(page: Page, into: Path) -> None:
    """The city's wall and overview in both languages (the console starts in zh-CN)."""
    for lang in ("zh", "en"):
        await page.keyboard.press("1")
        await page.screenshot(path=into / f"console-city-wall-{lang}.png")
        await page.keyboard.press("6")
        await page.keyboard.press("Escape")
        await page.screenshot(path=into / f"console-city-{lang}.png")
        await page.keyboard.press("l")
    await page.keyboard.press("1")


async def _breaches(
    page: Page,
    broker: dict[str, Any],
    config: Config,
    count: int,
    screenshots: Path | None,
) -> list[tuple[str, str, float, float]]:
    """(site, zone, published at, card seen at) per breach, in ms since the epoch."""
    await page.evaluate(WATCH_CARDS_JS)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-city-{time.time_ns()}")
    client.username_pw_set(broker["username"], broker["password"])
    client.connect(broker["host"], broker["port"])
    client.loop_start()
    latencies: list[tuple[str, str, float, float]] = []
    try:
        seq = time.time_ns() // 1_000_000 % 1_000_000_000
        for site, fence, zone in _fences(config)[:count]:
            before = await page.evaluate("() => Object.keys(window.cardSeen).length")
            seq += 1
            payload = json.dumps(fence_report(seq, zone))
            sent = time.time() * 1000
            client.publish(
                topics.field_report(site, "fence", fence), payload, qos=1
            ).wait_for_publish()
            await page.wait_for_function(
                f"() => Object.keys(window.cardSeen).length > {before}",
                timeout=CARD_TIMEOUT_S * 1000,
            )
            seen = await page.evaluate("() => Math.max(...Object.values(window.cardSeen))")
            latencies.append((site, zone, sent, seen))
            if screenshots is not None and len(latencies) == SCREENSHOT_AFTER:
                await _screenshots(page, screenshots)
    finally:
        client.loop_stop()
        client.disconnect()
    return latencies


async def measure(
    sites: int,
    devices_per_site: int,
    *,
    logins: int,
    breaches: int,
    tmp: Path,
    screenshots: Path | None = None,
) -> dict[str, Any]:
    config_path = tmp / "fleet.toml"
    config_path.write_text(fleet_config(sites, devices_per_site), encoding="utf-8")
    config = load_config(config_path)
    data_dir = tmp / "stack"
    python = [sys.executable, "-m", "riverguard"]
    up = _start([*python, "up", "--no-sim", "--config", str(config_path),
                 "--data-dir", str(data_dir)], tmp / "up.log")  # fmt: skip
    fleet: subprocess.Popen[str] | None = None
    try:
        _wait_for_line(tmp / "up.log", "Riverguard is up", UP_TIMEOUT_S)
        info = json.loads((data_dir / "stack.json").read_text(encoding="utf-8"))
        fleet = _start([*python, "sim", "fleet", "--config", str(config_path),
                        "--stack", str(data_dir), "--noise", "0"], tmp / "fleet.log")  # fmt: skip
        officer = next(u for u in info["logins"].values() if u["role"] == "officer")
        async with httpx.AsyncClient(base_url=info["hub_url"], timeout=30) as http:
            token = await _token(http, officer)
            online_s, online = await _wait_fleet_online(http, token, len(config.devices))
            hello = await _hello_bytes(info["hub_url"], token)
        load_start = [round(x, 1) for x in os.getloadavg()]
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            usable = []
            page: Page | None = None
            for _ in range(logins):
                if page is not None:
                    await page.context.close()
                page, ms = await _log_in(browser, info["hub_url"], officer)
                usable.append(ms)
            assert page is not None
            breached = await _breaches(page, info["broker"], config, breaches, screenshots)
            await browser.close()
        async with httpx.AsyncClient(base_url=info["hub_url"], timeout=30) as http:
            token = await _token(http, officer)
            online_end = await _online(http, token)
            alarms = (
                await http.get(
                    "/api/alarms?state=open&limit=1000",
                    headers={"Authorization": f"Bearer {token}"},
                )
            ).json()
        # Where the time went: to the hub's opening of the alarm, then on to the wall.
        opened = {
            (a["site"], a["zone"]): datetime.fromisoformat(a["opened_at"]).timestamp() * 1000
            for a in alarms
        }
        latencies = [seen - sent for _, _, sent, seen in breached]
        to_hub = [
            opened[site, zone] - sent for site, zone, sent, _ in breached if (site, zone) in opened
        ]
        return {
            "sites": sites,
            "devices": len(config.devices),
            "fleet_online_after_s": round(online_s, 1),
            "devices_online_at_start": online,
            "devices_online_at_end": online_end,
            "hello_bytes": hello,
            "load_average_at_start": load_start,
            "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
            "login_to_usable_wall": _summary(usable),
            "breach_to_wall": _summary(latencies),
            "breach_to_hub_alarm": _summary(to_hub),
            "breaches_ms": [round(x) for x in latencies],
            "breaches_to_hub_ms": [round(x) for x in to_hub],
        }
    finally:
        if fleet is not None:
            _stop(fleet)
        _stop(up)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--devices-per-site", type=int, default=100)
    parser.add_argument("--logins", type=int, default=10)
    parser.add_argument("--breaches", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--screenshots", type=Path, default=None, help="the wall and city overview, 1920x1080"
    )
    args = parser.parse_args()
    if args.screenshots is not None:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="riverguard-city-console-") as tmp:
        report = asyncio.run(
            measure(
                args.sites,
                args.devices_per_site,
                logins=args.logins,
                breaches=args.breaches,
                tmp=Path(tmp),
                screenshots=args.screenshots,
            )
        )
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
