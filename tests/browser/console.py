"""Helpers that drive the duty console page, shared by the browser tests."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Locator, Page, expect

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
