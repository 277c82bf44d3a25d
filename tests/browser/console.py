"""Helpers that drive the duty console page, shared by the browser tests."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import httpx
from playwright.async_api import Locator, Page, expect

from edge.event_ids import EventIds
from riverguard.mqtt import BrokerSettings
from riverguard.stack import Stack
from riverguard.testing import TINY_JPEG, camera_report, fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.times import format_ts, utcnow
from tests.aiomqtt_client import aiomqtt_client
from tests.conftest import stack_logs

OFFICER = "officer-li"
# A speaker plays the default warning (~12 s) at the stack fixture's 10x speed.
SPEAKER_DONE_TIMEOUT_MS = 30_000

# Everything a user can read: visible text, the tab title, tooltips, labels.
# Then every fragment of the other language's table (split at {placeholders})
# that shows up, and every raw key or missing-string marker.
_UNTRANSLATED_JS = r"""
async () => {
  const { STRINGS, getLang, otherLang } = await import("./i18n.js");
  const lang = getLang();
  const other = otherLang(lang);
  const labelled = document.querySelectorAll("[title], [placeholder], [aria-label], img[alt]");
  const attributes = [...labelled]
    .flatMap((el) => [el.title, el.placeholder, el.getAttribute("aria-label"), el.alt]);
  let body = document.body.innerText;
  // Names of people are data and marked translate="no"; leave them out.
  for (const el of document.querySelectorAll("[translate=no]")) {
    body = body.replace(el.innerText, "");
  }
  const text = [body, document.title, ...attributes].filter(Boolean).join("\n");
  const own = Object.values(STRINGS[lang]).join("\n");
  const found = [];
  for (const [key, value] of Object.entries(STRINGS[other])) {
    // The switch button names the other language on purpose.
    if (key === "lang.switch") continue;
    for (const fragment of value.split(/\{\w+\}/)) {
      const piece = fragment.trim();
      if (piece.length < 2 || own.includes(piece)) continue;
      // English fragments match as words ("done" must not hit "abandoned").
      const ascii = /^[\x00-\x7f]+$/.test(piece);
      const escaped = piece.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const hit = ascii ? new RegExp(`\\b${escaped}\\b`).test(text) : text.includes(piece);
      if (hit) found.push(`${key}: ${piece}`);
    }
  }
  for (const key of Object.keys(STRINGS[lang])) {
    if (text.includes(key)) found.push(`raw key ${key}`);
  }
  if (text.includes("\u27e6")) found.push("missing-string marker");
  return { lang, htmlLang: document.documentElement.lang, found };
}
"""


async def untranslated(page: Page) -> dict[str, Any]:
    """``{"lang", "htmlLang", "found": [other-language fragments and raw keys seen]}``."""
    result: dict[str, Any] = await page.evaluate(_UNTRANSLATED_JS)
    return result


async def log_in(page: Page, hub_url: str, username: str, password: str) -> None:
    """Sign in through the form (the click also arms the alarm sound)."""
    await page.goto(f"{hub_url}/")
    await page.fill("#login-username", username)
    await page.fill("#login-password", password)
    await page.click("#login-submit")
    await expect(page.locator("body")).to_have_attribute("data-view", "console")
    await expect(page.locator("body")).to_have_attribute("data-connection", "open")


def alarm_card(page: Page, alarm_id: str) -> Locator:
    return page.locator(f'article.alarm[data-alarm-id="{alarm_id}"]')


class Field:
    """Publishes raw device reports as field devices do, and remembers their event ids."""

    def __init__(self, stack: Stack, api: httpx.AsyncClient) -> None:
        self.stack = stack
        self.api = api
        self.event_ids: list[str] = []
        # Unique across runs against one stack: the edge deduplicates on device and seq.
        self._seq = int(time.time() * 1000) % 1_000_000_000

    def _broker(self, login: str = "sim") -> BrokerSettings:
        return BrokerSettings(
            host="127.0.0.1",
            port=self.stack.broker_port,
            username=login,
            password=self.stack.secrets.broker[login],
        )

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _publish(
        self, site: str, device_type: str, device: str, payload: dict[str, Any]
    ) -> str:
        async with aiomqtt_client(self._broker()) as client:
            await client.publish(
                topics.field_report(site, device_type, device), json.dumps(payload), qos=1
            )
        # The id the site's edge gives it, with the key it made at its start (7.10).
        ids = EventIds.load_or_create(self.stack.data_dir / f"edge-{site}")
        event_id = ids.mint(f"{device}:{payload['seq']}")
        self.event_ids.append(event_id)
        return event_id

    async def device_status(
        self,
        site: str,
        device_type: str,
        device: str,
        *,
        online: bool,
        battery: float | None = None,
        rssi: int | None = None,
    ) -> None:
        """A retained status as the device publishes it (PROTOCOL 2.3)."""
        status: dict[str, Any] = {"online": online}
        if battery is not None:
            status["battery"] = battery
        if rssi is not None:
            status["rssi"] = rssi
        async with aiomqtt_client(self._broker()) as client:
            await client.publish(
                topics.field_status(site, device_type, device),
                json.dumps(status),
                qos=1,
                retain=True,
            )

    async def fence_breach(self, site: str, device: str, zone: str) -> str:
        return await self._publish(site, "fence", device, fence_report(self._next_seq(), zone))

    async def fence_clear(self, site: str, device: str, zone: str) -> str:
        """The fence reports the person gone."""
        report = fence_report(self._next_seq(), zone, state="clear")
        return await self._publish(site, "fence", device, report)

    async def person_in_water(
        self, site: str, device: str, zone: str, *, snapshot: bytes | None = TINY_JPEG
    ) -> str:
        report = camera_report(self._next_seq(), zone, snapshot=snapshot)
        return await self._publish(site, "camera", device, report)

    async def late_snapshot(self, site: str, event_id: str, jpeg: bytes) -> None:
        """As the edge sends a Frigate picture that came after its event (PROTOCOL 7.10)."""
        async with aiomqtt_client(self._broker(f"edge-{site}")) as client:
            await client.publish(topics.snapshot(site, event_id), jpeg, qos=1)

    async def edge_auto_warning(self, site: str, zone: str, speaker: str) -> str:
        """The acks of the edge's own warning on ``speaker`` (local deterrence, PROTOCOL 7.10)."""
        ann_id = f"edge-auto-{zone}-{int(time.time() * 1000)}"
        async with aiomqtt_client(self._broker(f"edge-{site}")) as client:
            for state, detail in (("received", "edge-auto"), ("playing", ""), ("done", "")):
                ack = {"id": ann_id, "state": state, "ts": format_ts(utcnow()), "detail": detail}
                await client.publish(topics.speaker_ack(site, speaker), json.dumps(ack), qos=1)
        return ann_id

    async def edge_status(self, site: str, state: str, ts: datetime) -> None:
        """An edge status (PROTOCOL 2.3, 7.10) as the site's edge publishes it, not retained."""
        status = {"online": state == "online", "state": state, "ts": format_ts(ts), "outbox": 0}
        async with aiomqtt_client(self._broker(f"edge-{site}")) as client:
            await client.publish(topics.edge_status(site), json.dumps(status), qos=1)

    async def alarm_of(self, event_id: str, site: str) -> dict[str, Any]:
        """The hub's alarm holding ``event_id``, once the event has made it there."""
        found: dict[str, Any] = {}

        async def holds_event() -> bool:
            response = await self.api.get("/api/alarms", params={"site": site})
            response.raise_for_status()
            for alarm in response.json():
                if event_id in alarm["event_ids"]:
                    found.update(alarm)
                    return True
            return False

        try:
            await wait_for(holds_event, timeout=15, what=f"an alarm holding {event_id}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{stack_logs(self.stack)}") from None
        return found

    async def resolve_leftovers(self) -> None:
        """Resolve alarms this test opened and left active, so zones are quiet for the next."""
        mine = set(self.event_ids)
        for state in ("open", "acknowledged"):
            response = await self.api.get("/api/alarms", params={"state": state})
            for alarm in response.json():
                if mine & set(alarm["event_ids"]):
                    await self.api.post(
                        f"/api/alarms/{alarm['id']}/resolve",
                        json={"outcome": "false_alarm"},
                    )
