"""The console's logic for responders, run in real Chromium from the static files (no
hub needed): how dispatches merge into the picture (PROTOCOL 7.38), the card's line,
each responder's timer against the site's deadlines, and the officer's picker."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.async_api import Page, expect

pytestmark = pytest.mark.browser

SITE = {"id": "s", "dispatch": {"accept_s": 120, "arrive_s": 900}}


@pytest.fixture
async def console_page(page: Page, static_console: str) -> Page:
    await page.goto(f"{static_console}/index.html")
    await expect(page.locator("body")).to_have_attribute("data-view", "login")
    return page


def js(value: Any) -> str:
    return json.dumps(value)


async def run(page: Page, body: str) -> Any:
    """Evaluate ``body`` with the modules imported as i18n, state and dispatches, in English."""
    return await page.evaluate(
        "async () => { const i18n = await import('./i18n.js');"
        " const state = await import('./state.js');"
        " const dispatches = await import('./dispatches.js');"
        f" i18n.setLang('en'); {body} }}"
    )


def _alarm(alarm_id: str, state: str = "open") -> dict[str, Any]:
    return {
        "id": alarm_id,
        "site": "s",
        "zone": "z1",
        "state": state,
        "severity": "critical",
        "opened_at": "2026-07-27T21:00:00.000Z",
        "updated_at": "2026-07-27T21:00:00.000Z",
    }


def _dispatch(
    responder: str, alarm_id: str = "a1", state: str = "notified", **times: str | None
) -> dict[str, Any]:
    return {
        "id": f"d-{alarm_id}-{responder}",
        "alarm_id": alarm_id,
        "responder": responder,
        "responder_name": responder.title(),
        "level": 1,
        "state": state,
        "note": None,
        "notified_at": "2026-07-27T21:01:00.000Z",
        "accepted_at": None,
        "departed_at": None,
        "arrived_at": None,
        "ended_at": None,
        "overdue_at": None,
    } | times


async def test_dispatches_come_with_the_hello_follow_their_steps_and_leave_with_the_alarm(
    console_page: Page,
) -> None:
    accepted = _dispatch("chen", state="accepted", accepted_at="2026-07-27T21:02:00.000Z")
    result = await run(
        console_page,
        "const s = state.createState(); const seen = [];"
        " const step = (m) => { state.applyMessage(s, m);"
        "   seen.push(state.dispatchesOf(s, 'a1').map((d) => d.responder + ':' + d.state)); };"
        f" step({{seq: 1, type: 'hello', data: {{alarms: [{js(_alarm('a1'))}],"
        f"   dispatches: [{js(_dispatch('chen'))}, {js(_dispatch('wu', alarm_id='gone'))}]}}}});"
        f" step({{seq: 2, type: 'dispatch', data: {js(accepted)}}});"
        f" step({{seq: 3, type: 'dispatch', data: {js(_dispatch('wu'))}}});"
        f" step({{seq: 4, type: 'alarm', data: {js(_alarm('a1', 'resolved'))}}});"
        " return [seen, s.dispatches.size];",
    )
    assert [
        [
            ["chen:notified"],
            ["chen:accepted"],
            ["chen:accepted", "wu:notified"],
            [],
        ],
        0,
    ] == result


async def test_a_hello_without_dispatches_from_an_older_hub_shows_nobody(
    console_page: Page,
) -> None:
    result = await run(
        console_page,
        f"const s = state.createState(); const alarms = [{js(_alarm('a1'))}];"
        " state.applyMessage(s, {seq: 1, type: 'hello', data: {alarms}});"
        " return state.dispatchesOf(s, 'a1');",
    )
    assert [] == result


async def test_the_card_puts_the_furthest_along_first_and_leaves_out_the_called_off(
    console_page: Page,
) -> None:
    called = [
        _dispatch("chen"),
        _dispatch("wu", state="on_scene", arrived_at="2026-07-27T21:09:00.000Z"),
        _dispatch("li", state="cancelled", ended_at="2026-07-27T21:03:00.000Z"),
        _dispatch("zhao", state="declined", ended_at="2026-07-27T21:02:00.000Z"),
    ]
    result = await run(
        console_page,
        f"const line = dispatches.cardResponders({js(called)}, {js(SITE)});"
        " return [line.list.map((r) => r.name + ':' + r.state), line.more];",
    )
    assert [["Wu:on_scene", "Chen:notified"], 1] == result


@pytest.mark.parametrize(
    ("dispatch", "now", "text", "late"),
    [
        # Called at 21:01, 120 s to accept.
        (_dispatch("chen"), "2026-07-27T21:02:00.000Z", "01:00 · accept within 01:00", "no"),
        (_dispatch("chen"), "2026-07-27T21:03:30.000Z", "02:30 · ⚠ late: not accepted", "yes"),
        # Accepted at 21:02, 900 s to be on scene: the hub marked it overdue.
        (
            _dispatch(
                "chen",
                state="on_the_way",
                accepted_at="2026-07-27T21:02:00.000Z",
                departed_at="2026-07-27T21:05:00.000Z",
                overdue_at="2026-07-27T21:17:00.000Z",
            ),
            "2026-07-27T21:18:00.000Z",
            "13:00 · ⚠ late: not on scene",
            "yes",
        ),
        (
            _dispatch(
                "chen",
                state="on_the_way",
                accepted_at="2026-07-27T21:02:00.000Z",
                departed_at="2026-07-27T21:05:00.000Z",
            ),
            "2026-07-27T21:06:00.000Z",
            "01:00 · on scene within 11:00",
            "no",
        ),
        # On scene: nothing more is due.
        (
            _dispatch(
                "chen",
                state="on_scene",
                accepted_at="2026-07-27T21:02:00.000Z",
                arrived_at="2026-07-27T21:20:00.000Z",
            ),
            "2026-07-27T21:25:00.000Z",
            "05:00",
            "no",
        ),
    ],
)
async def test_a_responders_timer_counts_the_sites_deadline_down_and_says_late_in_words(
    console_page: Page, dispatch: dict[str, Any], now: str, text: str, late: str
) -> None:
    result = await run(
        console_page,
        f"const d = {js(dispatch)};"
        " const root = document.createElement('div');"
        ' root.innerHTML = `<li data-dispatch-id="${d.id}">${dispatches.timerHtml('
        f"   dispatches.dispatchClock(d, {js(SITE)}), false)}}</li>`;"
        f" dispatches.updateDispatchTimers(root, Date.parse({js(now)}));"
        " const timer = root.querySelector('.dispatch-timer');"
        " const row = root.firstChild;"
        " return [timer.textContent, timer.dataset.late, row.classList.contains('late')];",
    )
    assert [text, late, late == "yes"] == result


async def test_the_picker_lists_the_sites_on_call_level_by_level_then_everyone_else_by_name(
    console_page: Page,
) -> None:
    directory = {
        "responders": [
            {"id": "zhao", "name": "Zhao"},
            {"id": "wu", "name": "Wu"},
            {"id": "chen", "name": "Chen"},
            {"id": "an", "name": "An"},
        ],
        "on_call": {"s": {"2": ["wu"], "1": ["chen"], "3": []}, "other": {"1": ["an"]}},
    }
    result = await run(
        console_page,
        f"return dispatches.pickerGroups({js(directory)}, 's', new Set(['chen']));",
    )
    assert [
        {
            "label": "On call now · level 1",
            "options": [{"id": "chen", "name": "Chen", "sent": True}],
        },
        {"label": "On call now · level 2", "options": [{"id": "wu", "name": "Wu", "sent": False}]},
        {
            "label": "Everyone else",
            "options": [
                {"id": "an", "name": "An", "sent": False},
                {"id": "zhao", "name": "Zhao", "sent": False},
            ],
        },
    ] == result
