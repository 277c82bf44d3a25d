"""The console's own logic, run in real Chromium from the static files (no hub needed).

The translation tables, the ordering of alarm cards, how hub messages merge
into the picture, the reconnect delays, and the login page in both languages.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import CONSOLE_DIR
from tests.browser.console import untranslated

pytestmark = pytest.mark.browser

# Keys built at run time from a known prefix and a value from the wire.
DYNAMIC_PREFIXES = {
    "kind.": ["fence.breach", "fence.clear", "fence.tamper", "fence.fault",
              "camera.intrusion", "camera.line_crossing", "camera.loitering",
              "camera.water_entry"],
    "severity.": ["info", "warning", "critical"],
    "state.": ["open", "acknowledged", "resolved"],
    "risk.": ["blue", "yellow", "orange", "red", "unknown"],
    "device.": ["fence", "camera", "speaker"],
    "device_one.": ["fence", "camera", "speaker"],
    "ann.state.": ["pending", "received", "playing", "done", "failed", "expired"],
    "outcome.": ["persuaded_away", "rescued", "false_alarm", "patrol_sent", "other"],
    "top.role.": ["viewer", "officer", "supervisor", "admin"],
    "sound.": ["armed", "sounding", "blocked", "unsupported"],
    "status.": ["edge_online", "edge_offline", "edge_unknown", "edge_stopped"],
    "health.": ["online", "offline", "unknown"],
    "voice.": ["cmn", "yue", "en"],
    "next_step.": ["repeat", "stronger_clip", "live_talk", "send_patrol"],
    "escalation.name.": ["duty_officer", "grid_officer", "street", "district"],
    "map.reason_": ["edge"],
    "detail.source_": ["hub", "built"],
    "alarm.intrusion_cause.": ["quiet_gap", "after_gone"],
    "alarm.why.": ["unacknowledged", "trigger_after_announcement", "by_officer",
                   "dispatch_exhausted"],
    "note.": ["quiet_after_announcement"],
}  # fmt: skip


@pytest.fixture
async def console_page(page: Page, static_console: str) -> Page:
    await page.goto(f"{static_console}/index.html")
    await expect(page.locator("body")).to_have_attribute("data-view", "login")
    return page


def js(value: Any) -> str:
    return json.dumps(value)


async def run(page: Page, body: str) -> Any:
    """Evaluate ``body`` with the console's modules imported as i18n and state."""
    return await page.evaluate(
        "async () => { const i18n = await import('./i18n.js');"
        f" const state = await import('./state.js'); {body} }}"
    )


def _alarm(alarm_id: str, severity: str, state: str, opened_at: str) -> dict[str, Any]:
    return {
        "id": alarm_id,
        "site": "s",
        "zone": "z1",
        "state": state,
        "severity": severity,
        "opened_at": opened_at,
        "updated_at": opened_at,
        "event_count": 1,
        "event_ids": [f"{alarm_id}-e"],
        "last_event_id": f"{alarm_id}-e",
        "announcements": [],
    }


async def test_both_languages_have_the_same_keys(console_page: Page) -> None:
    keys = await run(
        console_page,
        "return Object.fromEntries(i18n.LANGS.map("
        "  (lang) => [lang, Object.keys(i18n.STRINGS[lang]).sort()]));",
    )
    assert keys["zh-CN"] == keys["en"]


async def test_every_key_the_console_uses_is_in_the_table(console_page: Page) -> None:
    table = set(await run(console_page, "return Object.keys(i18n.STRINGS['zh-CN']);"))
    used: set[str] = set()
    for path in CONSOLE_DIR.glob("*.js"):
        used |= set(re.findall(r"\bt\(\s*\"([a-z_.]+)\"", path.read_text(encoding="utf-8")))
    html = (CONSOLE_DIR / "index.html").read_text(encoding="utf-8")
    used |= set(re.findall(r'data-i18n(?:-title|-placeholder|-aria)?="([a-z_.]+)"', html))
    for prefix, values in DYNAMIC_PREFIXES.items():
        used |= {prefix + value for value in values}
    assert set() == used - table
    assert len(used) > 50


async def test_default_language_is_chinese_and_the_choice_is_remembered(console_page: Page) -> None:
    await expect(console_page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(console_page.locator("#login-submit")).to_have_text("登录并启用警报声")
    await console_page.click("#login-view .lang-button")
    await expect(console_page.locator("#login-submit")).to_have_text("Sign in and arm alarm sound")
    await console_page.reload()
    await expect(console_page.locator("html")).to_have_attribute("lang", "en")
    assert "en" == await console_page.evaluate("localStorage.getItem('riverguard.lang')")


async def test_login_page_shows_no_string_of_the_other_language(console_page: Page) -> None:
    """Including a login error shown before the switch (a static server refuses the POST)."""
    await console_page.click("#login-submit")
    await expect(console_page.locator("#login-error")).to_contain_text("登录失败")
    zh = await untranslated(console_page)
    await console_page.click("#login-view .lang-button")
    await expect(console_page.locator("html")).to_have_attribute("lang", "en")
    await expect(console_page.locator("#login-error")).to_contain_text("Sign-in failed")
    en = await untranslated(console_page)
    assert ("zh-CN", []) == (zh["lang"], zh["found"])
    assert ("en", []) == (en["lang"], en["found"])


async def test_alarms_sort_critical_first_then_unacknowledged_then_longest_waiting(
    console_page: Page,
) -> None:
    alarms = [
        _alarm("warn-new", "warning", "open", "2026-07-27T21:30:00.000Z"),
        _alarm("crit-acked", "critical", "acknowledged", "2026-07-27T21:00:00.000Z"),
        _alarm("info-old", "info", "open", "2026-07-27T20:00:00.000Z"),
        _alarm("crit-new", "critical", "open", "2026-07-27T21:20:00.000Z"),
        _alarm("warn-old", "warning", "open", "2026-07-27T21:10:00.000Z"),
        _alarm("crit-old", "critical", "open", "2026-07-27T21:05:00.000Z"),
    ]
    order = await run(
        console_page,
        f"const s = state.createState();"
        f" state.applyMessage(s, {{seq: 1, type: 'hello', data: {{alarms: {js(alarms)}}}}});"
        " return [state.sortedAlarms(s).map((a) => a.id), state.topUnacknowledged(s).id,"
        " state.needsAlarmSound(s)];",
    )
    expected = ["crit-old", "crit-new", "crit-acked", "warn-old", "warn-new", "info-old"]
    assert [expected, "crit-old", True] == order


async def test_replayed_messages_are_ignored_but_a_hello_always_replaces_the_picture(
    console_page: Page,
) -> None:
    first = _alarm("a1", "warning", "open", "2026-07-27T21:00:00.000Z")
    acked = {**first, "state": "acknowledged", "acked_by": "officer-li"}
    resolved = {**first, "state": "resolved"}
    other = _alarm("a2", "critical", "open", "2026-07-27T21:01:00.000Z")
    result = await run(
        console_page,
        f"const s = state.createState(); const seen = [];"
        f" const step = (m) => {{ const r = state.applyMessage(s, m);"
        f"   seen.push([r.applied, [...s.alarms.values()].map((a) => a.id + ':' + a.state)]); }};"
        f" step({{seq: 10, type: 'hello', data: {{alarms: [{js(first)}]}}}});"
        f" step({{seq: 11, type: 'alarm', data: {js(acked)}}});"
        f" step({{seq: 11, type: 'alarm', data: {js(first)}}});"  # replayed after ?since
        f" step({{seq: 12, type: 'alarm', data: {js(resolved)}}});"
        f" step({{seq: 3, type: 'hello', data: {{alarms: [{js(other)}]}}}});"  # a restarted hub
        f" step({{seq: 4, type: 'no-such-type', data: {{}}}});"
        f" step({{seq: 'x', type: 'alarm', data: {js(other)}}});"
        " return [seen, s.lastSeq];",
    )
    assert [
        [
            [True, ["a1:open"]],
            [True, ["a1:acknowledged"]],
            [False, ["a1:acknowledged"]],
            [True, []],
            [True, ["a2:open"]],
            [True, ["a2:open"]],
            [False, ["a2:open"]],
        ],
        4,
    ] == result


async def test_announcement_updates_replace_the_previous_state_of_each_speaker(
    console_page: Page,
) -> None:
    alarm = _alarm("a1", "warning", "open", "2026-07-27T21:00:00.000Z")
    ann = {"id": "ann-1", "alarm_id": "a1", "created_at": "2026-07-27T21:01:00.000Z"}
    result = await run(
        console_page,
        f"const s = state.createState();"
        f" state.applyMessage(s, {{seq: 1, type: 'hello', data: {{alarms: [{js(alarm)}]}}}});"
        f" state.applyMessage(s, {{seq: 2, type: 'announcement',"
        f"   data: {{...{js(ann)}, speakers: {{'spk-1': 'pending'}}}}}});"
        f" state.applyMessage(s, {{seq: 3, type: 'announcement',"
        f"   data: {{...{js(ann)}, speakers: {{'spk-1': 'done'}}}}}});"
        " return state.announcementsOf(s, s.alarms.get('a1')).map((a) => a.speakers);",
    )
    assert [{"spk-1": "done"}] == result


async def test_a_snapshot_message_gives_known_and_later_events_their_picture(
    console_page: Page,
) -> None:
    """A late Frigate picture: its event was sent with ``snapshot: false``."""
    event = {"id": "cam:1", "kind": "camera.intrusion", "snapshot": False}
    result = await run(
        console_page,
        f"const s = state.createState();"
        f" state.applyMessage(s, {{seq: 1, type: 'hello', data: {{}}}});"
        f" state.addEvent(s, {js(event)}, true);"
        f" const r = state.applyMessage(s, {{seq: 2, type: 'snapshot',"
        f"   data: {{event_id: 'cam:1', site: 's'}}}});"
        f" state.applyMessage(s, {{seq: 3, type: 'snapshot', data: {{event_id: 'cam:2'}}}});"
        f" state.addEvent(s, {{...{js(event)}, id: 'cam:2'}});"
        " return [r.snapshot, [...r.parts], s.events.get('cam:1').snapshot,"
        "   s.events.get('cam:2').snapshot];",
    )
    assert ["cam:1", ["alarms"], True, True] == result


async def test_site_counts_come_from_the_hub_and_unknown_is_not_offline(
    console_page: Page,
) -> None:
    counts = {
        "fence": {"online": 1, "offline": 0, "unknown": 1, "total": 2},
        "speaker": {"online": 1, "offline": 0, "unknown": 0, "total": 1},
    }
    moved = {**counts, "speaker": {"online": 0, "offline": 1, "unknown": 0, "total": 1}}
    result = await run(
        console_page,
        f"const s = state.createState();"
        f" state.applyMessage(s, {{seq: 1, type: 'hello', data: {{sites: [{{id: 's',"
        f"   devices: {js(counts)}}}], edges: [{{site: 's', online: true, outbox: 0}}]}}}});"
        " const before = state.siteSummary(s, 's').counts;"
        " state.applyMessage(s, {seq: 2, type: 'site',"
        f"   data: {{id: 's', devices: {js(moved)}}}}});"
        " state.applyMessage(s, {seq: 3, type: 'edge', data: {site: 's', online: false,"
        "   outbox: 7}});"
        " return [before, state.siteSummary(s, 's')];",
    )
    none = {"online": 0, "offline": 0, "unknown": 0, "total": 0}
    assert [
        {**counts, "camera": none},
        {"edge": {"site": "s", "online": False, "outbox": 7}, "counts": {**moved, "camera": none}},
    ] == result


async def test_only_fetched_sites_keep_devices_and_what_came_during_the_fetch_wins(
    console_page: Page,
) -> None:
    result = await run(
        console_page,
        "const s = state.createState();"
        " state.applyMessage(s, {seq: 1, type: 'hello', data: {sites: [{id: 'a'}, {id: 'b'}]}});"
        # A site nobody fetched: its heartbeats are dropped, nothing to redraw.
        " const dropped = state.applyMessage(s, {seq: 2, type: 'device', data: {id: 'b1',"
        "   site: 'b', type: 'fence', online: true}});"
        # While site a is fetched, its speaker goes offline: that beats the older answer.
        " state.expectDevices(s, 'a');"
        " state.applyMessage(s, {seq: 3, type: 'device', data: {id: 'a1', site: 'a',"
        "   type: 'speaker', online: false}});"
        " state.mergeDevices(s, 'a', [{id: 'a1', site: 'a', type: 'speaker', online: true},"
        "   {id: 'a2', site: 'a', type: 'fence', online: true}]);"
        " const kept = state.applyMessage(s, {seq: 4, type: 'device', data: {id: 'a2',"
        "   site: 'a', type: 'fence', online: false}});"
        " const fetched = [[...s.devices.keys()], [...s.deviceSites], s.devices.get('a1').online,"
        "   s.devices.get('a2').online, [...dropped.parts], [...kept.parts]];"
        " state.applyMessage(s, {seq: 5, type: 'hello', data: {sites: [{id: 'a'}]}});"
        " return [fetched, [...s.devices.keys()], [...s.deviceSites]];",
    )
    assert [[["a1", "a2"], ["a"], False, False, [], ["devices"]], [], []] == result


async def test_an_edge_is_online_offline_stopped_or_unknown(console_page: Page) -> None:
    edges = [
        {"online": True, "state": "online"},
        {"online": False, "state": "offline"},
        {"online": False, "state": "stopped"},
        {"online": False},  # an older hub: no state
        None,
    ]
    health = await run(console_page, f"return {js(edges)}.map(state.edgeHealth);")
    assert ["online", "offline", "stopped", "offline", "unknown"] == health


async def test_reconnect_delays_double_from_half_a_second_and_stop_at_ten(
    console_page: Page,
) -> None:
    delays = await run(
        console_page,
        "return [0, 1, 2, 3, 4, 5, 9].map((n) => state.backoffDelay(n, () => 1));",
    )
    lowest = await run(console_page, "return state.backoffDelay(0, () => 0);")
    assert [500, 1000, 2000, 4000, 8000, 10_000, 10_000] == delays
    assert 250 == lowest


async def test_age_reads_as_a_clock(console_page: Page) -> None:
    ages = await run(
        console_page,
        "return [0, 59_999, 61_000, 3_599_000, 3_600_000, 36_061_000, -5].map(state.formatAge);",
    )
    assert ["00:00", "00:59", "01:01", "59:59", "1:00:00", "10:01:01", "00:00"] == ages


async def test_device_list_puts_offline_first_then_unreported_then_online(
    console_page: Page,
) -> None:
    devices = [
        {"id": "a", "site": "s", "online": True},
        {"id": "b", "site": "s", "online": None},
        {"id": "c", "site": "s", "online": False},
        {"id": "d", "site": "r", "online": False},
    ]
    order = await run(
        console_page,
        f"return {js(devices)}.sort(state.compareDeviceHealth).map((d) => d.id);",
    )
    assert ["d", "c", "b", "a"] == order


async def test_event_counts_fill_every_hour_of_the_period_including_empty_ones(
    console_page: Page,
) -> None:
    counts = await run(
        console_page,
        "const from = Date.parse('2026-07-01T10:30:00Z'), to = Date.parse('2026-07-01T13:10:00Z');"
        " const answer = {buckets: ['2026-07-01T10:40:00Z', '2026-07-01T10:59:59Z',"
        "   '2026-07-01T12:00:00Z', '2026-07-01T09:00:00Z'].map((start) => ({start, count: 1}))};"
        " const points = state.statsBuckets(answer);"
        " return state.alignBuckets(points, 'hour', from, to).map((b) => b.count);",
    )
    assert [2, 0, 1, 0] == counts


async def test_shift_summary_counts_the_shift_and_hands_over_what_is_still_open(
    console_page: Page,
) -> None:
    alarms = [
        {**_alarm("old", "warning", "resolved", "2026-07-01T01:00:00Z"), "outcome": "rescued"},
        {
            **_alarm("r1", "critical", "resolved", "2026-07-01T09:00:00Z"),
            "outcome": "false_alarm",
            "resolved_at": "2026-07-01T09:05:00Z",
        },
        _alarm("o1", "warning", "acknowledged", "2026-07-01T02:00:00Z"),
        _alarm("o2", "critical", "open", "2026-07-01T10:00:00Z"),
    ]
    summary = await run(
        console_page,
        f"const s = state.shiftSummary({js(alarms)}, Date.parse('2026-07-01T08:00:00Z'),"
        "   Date.parse('2026-07-01T12:00:00Z'));"
        " return [s.total, s.critical, s.open.map((a) => a.id),"
        "   s.resolved.map((a) => a.id), s.outcomes];",
    )
    assert [2, 2, ["o2", "o1"], ["r1"], {"false_alarm": 1}] == summary


async def test_hub_timeline_entries_become_console_entries_with_the_opening_first(
    console_page: Page,
) -> None:
    answer = {
        "entries": [
            {"ts": "2026-07-01T10:00:01Z", "type": "opened", "by": None,
             "data": {"severity": "critical"}},
            {"ts": "2026-07-01T10:00:00Z", "type": "event", "by": None,
             "data": {"id": "f:1", "kind": "fence.breach", "device": "f", "severity": "warning",
                      "snapshot": False}},
            {"ts": "2026-07-01T10:01:00Z", "type": "escalate", "by": None,
             "data": {"escalation_level": 1, "escalation_name": "grid officer"}},
            {"ts": "2026-07-01T10:02:00Z", "type": "speaker", "by": None,
             "data": {"speaker": "k", "state": "done", "detail": "", "announcement": "ann-1"}},
            {"ts": "2026-07-01T10:03:00Z", "type": "resolve", "by": "li",
             "data": {"outcome": "rescued", "note": "ok"}},
        ]
    }  # fmt: skip
    entries = await page_entries(console_page, answer)
    assert [
        ["opened", None, None],
        ["event", "f:1", None],
        ["escalation", None, None],
        ["speaker", None, "ann-1"],
        ["resolved", None, None],
    ] == entries


async def test_the_hubs_own_resolve_note_is_said_in_the_readers_language(
    console_page: Page,
) -> None:
    """An auto-resolved alarm's note (PROTOCOL 7.42) in history, handover and the detail
    timeline: the reader's words, not the hub's English; an officer's note as written."""
    english = "no trigger for 30 s after the announcement"
    auto = {
        **_alarm("auto", "warning", "resolved", "2026-07-01T09:00:00Z"),
        "resolved_at": "2026-07-01T09:05:00Z",
        "resolved_by": "system",
        "outcome": "persuaded_away",
        "note": english,
        "note_code": "quiet_after_announcement",
        "note_window_s": 30,
    }
    by_hand = {**auto, "id": "hand", "note": "已劝离岸边", "note_code": None}
    newer = {**auto, "id": "newer", "note": "a newer hub's note", "note_code": "from_a_newer_hub"}
    timeline = {
        "entries": [
            {"ts": "2026-07-01T09:05:00Z", "type": "resolve", "by": "system",
             "data": {key: auto[key] for key in ("outcome", "note", "note_code",
                                                  "note_window_s")}},
        ]
    }  # fmt: skip
    said = await run(
        console_page,
        f"""
        const pages = await import('./pages.js');
        const {{ alarmNote }} = await import('./view.js');
        const {{ hubTimeline }} = await import('./detail.js');
        const s = state.createState();
        const alarms = {js([auto, by_hand, newer])};
        const summary = {{ total: 3, critical: 0, open: [], resolved: alarms,
          outcomes: {{ persuaded_away: 3 }}, from: alarms[0].opened_at,
          to: alarms[0].resolved_at }};
        const [entry] = hubTimeline({js(timeline)}).filter((e) => e.type === 'resolved');
        const notes = (html) => {{
          const root = document.createElement('div');
          root.innerHTML = html;
          return [...root.querySelectorAll('tr[data-alarm-id], li[data-alarm-id]')].map((row) =>
            row.querySelector('.note-cell, .muted').textContent);
        }};
        const out = {{}};
        for (const lang of ['zh-CN', 'en']) {{
          i18n.setLang(lang);
          out[lang] = {{
            history: notes(`<table>${{pages.incidentsHtml(s, alarms, () => '')}}</table>`),
            handover: notes(pages.handoverHtml(s, summary, Date.now(), [])),
            detail: alarmNote(entry),
          }};
        }}
        i18n.setLang('zh-CN');
        return out;
        """,
    )
    zh = "广播后 30 秒内无触发，系统自动处置"
    en = "No trigger for 30 s after the announcement"
    assert {
        "zh-CN": {
            "history": [zh, "已劝离岸边", "a newer hub's note"],
            "handover": [zh, "已劝离岸边", "a newer hub's note"],
            "detail": zh,
        },
        "en": {
            "history": [en, "已劝离岸边", "a newer hub's note"],
            "handover": [en, "已劝离岸边", "a newer hub's note"],
            "detail": en,
        },
    } == said


async def test_a_responders_call_keeps_its_level_and_channels(console_page: Page) -> None:
    answer = {
        "entries": [
            {"ts": "2026-07-01T10:01:00Z", "type": "dispatch", "by": "system",
             "data": {"responder": "chen", "responder_name": "陈网格员", "state": "notified",
                      "level": 1, "channels": ["webhook:duty", "email"]}},
            {"ts": "2026-07-01T10:02:00Z", "type": "dispatch", "by": "responder:chen",
             "data": {"responder": "chen", "state": "accepted", "level": 1}},
        ]
    }  # fmt: skip
    calls = await console_page.evaluate(
        "async (answer) => { const d = await import('./detail.js');"
        " return d.hubTimeline(answer).map((e) => [e.responder, e.state, e.level, e.channels]); }",
        answer,
    )
    assert [
        ["陈网格员", "notified", 1, ["webhook:duty", "email"]],
        ["chen", "accepted", 1, []],
    ] == calls


async def page_entries(page: Page, answer: dict[str, Any]) -> Any:
    return await page.evaluate(
        "async (answer) => { const d = await import('./detail.js');"
        " return d.hubTimeline(answer).map((e) => [e.type, e.eventId ?? null, e.annId ?? null]); }",
        answer,
    )


async def test_without_a_hub_timeline_the_console_builds_one_from_events_and_announcements(
    console_page: Page,
) -> None:
    alarm = {
        **_alarm("a", "critical", "resolved", "2026-07-01T10:00:01Z"),
        "event_ids": ["f:1", "c:1"],
        "acked_by": "li",
        "acked_at": "2026-07-01T10:00:30Z",
        "resolved_by": "li",
        "resolved_at": "2026-07-01T10:05:00Z",
        "outcome": "rescued",
    }
    events = [
        {"id": "c:1", "ts": "2026-07-01T10:00:02Z", "kind": "camera.water_entry"},
        {"id": "f:1", "ts": "2026-07-01T10:00:00Z", "kind": "fence.breach"},
        {"id": "x:9", "ts": "2026-07-01T10:00:03Z", "kind": "fence.breach"},
    ]
    announcements = [
        {
            "id": "ann-1",
            "created_at": "2026-07-01T10:01:00Z",
            "requested_by": "li",
            "speakers": {"k": "done"},
            "history": [
                {"speaker": "k", "state": "pending", "ts": "2026-07-01T10:01:00Z"},
                {"speaker": "k", "state": "done", "ts": "2026-07-01T10:01:20Z"},
            ],
        }
    ]
    types = await console_page.evaluate(
        "async ([alarm, events, anns]) => { const d = await import('./detail.js');"
        " return d.buildTimeline(alarm, events, anns).map((e) => e.eventId ?? e.type); }",
        [alarm, events, announcements],
    )
    # Not the other zone's event, not the hub's "pending" bookkeeping.
    assert ["opened", "f:1", "c:1", "ack", "announcement", "speaker", "resolved"] == types


def _links(broker: bool = True, store: bool = True, influx: bool = True, **heard: bool) -> Any:
    at = "2026-07-27T01:20:03.000Z"
    return {
        "broker": {"up": broker, "since": at, "detail": ""},
        "store": {"up": store, "since": at, "detail": ""},
        "influx": {"up": influx, "since": at, "detail": ""},
        "last_event_at": "2026-07-27T01:20:00.000Z",
        "edge_silent_after_s": 60,
        "edges": [
            {"site": site, "heard": value, "since": at, "last_heard": at}
            for site, value in heard.items()
        ],
    }


async def test_what_the_hub_cannot_hear_makes_sites_and_edges_unknown_and_fills_the_banner(
    console_page: Page,
) -> None:
    """PROTOCOL 7.13: a silent edge is unknown whatever its status said; one stopped on
    purpose stays stopped and out of the banner; with the broker down every site is
    unknown; InfluxDB alone is no reason to sound; an older hub (no links) loses nothing."""
    sites = [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}, {"id": "c", "name": "C"}]
    edges = [
        {"site": "a", "online": True, "state": "online"},
        {"site": "b", "online": False, "state": "stopped"},
        {"site": "c", "online": False, "state": "offline"},
    ]
    picture = (
        f"const s = state.createState(); const hello = (links) => state.applyMessage(s, "
        f"{{seq: 1, type: 'hello', data: {{sites: {js(sites)}, edges: {js(edges)}, links}}}});"
        " const look = () => ({"
        "  edges: ['a', 'b', 'c'].map((id) => state.edgeStatus(s, id)),"
        "  known: ['a', 'b', 'c'].map((id) => state.siteKnown(s, id)),"
        "  lost: state.lostLinks(s).map((i) => [i.kind, i.site ?? null, i.severe]),"
        "  alarm: state.blindAlarm(s), deaf: state.hubDeaf(s)});"
    )
    results = await run(
        console_page,
        picture + f"hello({js(_links(a=True, b=True, c=True))}); const all = look();"
        f" hello({js(_links(a=False, b=False, c=False))}); const silent = look();"
        f" hello({js(_links(broker=False, a=False, b=False, c=False))}); const deaf = look();"
        " state.applyMessage(s, {seq: 2, type: 'links', data:"
        f" {js(_links(influx=False, a=True, b=True, c=True))}}}); const history = look();"
        " hello(undefined); const older = look();"
        " return {all, silent, deaf, history, older};",
    )
    assert {
        "edges": ["online", "stopped", "offline"],
        "known": [True, True, True],
        "lost": [],
        "alarm": False,
        "deaf": False,
    } == results["all"]
    assert {
        "edges": ["unknown", "stopped", "offline"],
        "known": [False, True, True],
        "lost": [["edge", "a", True], ["edge", "c", True]],
        "alarm": True,
        "deaf": False,
    } == results["silent"]
    assert {
        "edges": ["unknown", "unknown", "unknown"],
        "known": [False, False, False],
        "lost": [["broker", None, True]],
        "alarm": True,
        "deaf": True,
    } == results["deaf"]
    assert [["influx", None, False]] == results["history"]["lost"]
    assert (False, [True, True, True]) == (results["history"]["alarm"], results["history"]["known"])
    assert ([], [True, True, True]) == (results["older"]["lost"], results["older"]["known"])


async def test_sites_group_by_street_community_and_grid_and_filter(console_page: Page) -> None:
    sites = [
        {"id": "s3", "name": "三", "grid": "c/d/street-b/comm-1/grid-1", "risk": "red",
         "unguarded": ["z1"]},
        {"id": "s1", "name": "一", "name_en": "One", "grid": "c/d/street-a/comm-2/grid-9",
         "risk": "blue"},
        {"id": "s2", "name": "二", "grid": "c/d/street-a/comm-1/grid-1", "risk": "yellow"},
    ]  # fmt: skip
    alarms = [
        {"id": "a1", "site": "s1", "zone": "z1", "state": "open", "severity": "warning",
         "opened_at": "2026-07-01T10:00:00Z"},
        {"id": "a2", "site": "s2", "zone": "z1", "state": "acknowledged", "severity": "critical",
         "opened_at": "2026-07-01T09:00:00Z",
         "intrusions": [{"raised_at": "2026-07-01T09:00:00Z"},
                        {"raised_at": "2026-07-01T10:05:00Z"}]},
    ]  # fmt: skip
    result = await run(
        console_page,
        "const city = await import('./city.js');"
        " const s = state.createState();"
        f" state.applyMessage(s, {{seq: 1, type: 'hello', data: {{sites: {js(sites)},"
        f"   alarms: {js(alarms)}, edges: [], links: null}}}});"
        " const shape = (groups) => groups.map((g) => [g.path.join('/'),"
        "   g.sites.map((f) => [f.id, f.risk, f.alarms, f.unguarded])]);"
        " return [shape(city.citySites(s, '', 'all')), shape(city.citySites(s, 'ONE', 'all')),"
        "   shape(city.citySites(s, '', 'unguarded')), shape(city.citySites(s, '', 'alarms')),"
        "   shape(city.citySites(s, 'street-a', 'raised')), city.newestIntrusion(s).id];",
    )
    assert [
        [
            ["street-a/comm-1/grid-1", [["s2", "yellow", 1, 0]]],
            ["street-a/comm-2/grid-9", [["s1", "blue", 1, 0]]],
            ["street-b/comm-1/grid-1", [["s3", "red", 0, 1]]],
        ],
        [["street-a/comm-2/grid-9", [["s1", "blue", 1, 0]]]],
        [["street-b/comm-1/grid-1", [["s3", "red", 0, 1]]]],
        [
            ["street-a/comm-1/grid-1", [["s2", "yellow", 1, 0]]],
            ["street-a/comm-2/grid-9", [["s1", "blue", 1, 0]]],
        ],
        [],
        # a2 opened first, but a person entered its zone again after a1 opened.
        "a2",
    ] == result


async def test_a_citys_strip_counts_sites_by_risk_and_shows_those_needing_a_look(
    console_page: Page,
) -> None:
    risks = ["red", "orange", "blue", "blue", "blue", "blue", "blue"]
    sites = [
        {"id": f"s{i}", "name": f"站{i}", "grid": "c/d/st/g", "risk": risk,
         "unguarded": ["z1"] if i == 1 else []}
        for i, risk in enumerate(risks)
    ]  # fmt: skip
    edges = [{"site": f"s{i}", "online": True, "state": "online"} for i in range(len(risks))]
    alarm = {"id": "a1", "site": "s4", "zone": "z1", "state": "open", "severity": "warning",
             "opened_at": "2026-07-01T10:00:00Z"}  # fmt: skip
    result = await run(
        console_page,
        "const strip = await import('./city-strip.js');"
        " const s = state.createState();"
        f" state.applyMessage(s, {{seq: 1, type: 'hello', data: {{sites: {js(sites)},"
        f"   edges: {js(edges)}, alarms: [{js(alarm)}]}}}});"
        " const root = document.createElement('div');"
        " i18n.setLang('en'); strip.renderSiteStrip(root, s);"
        " return [[...root.querySelectorAll('.city-chips .risk')].map((c) => c.textContent"
        "   .replace(/\\s+/g, ' ').trim()),"
        "   root.querySelector('.site-line').textContent.replace(/\\s+/g, ' ').trim(),"
        "   [...root.querySelectorAll('.site-status')].map((c) => c.dataset.site)];",
    )
    assert [
        ["■ Red risk 1", "◆ Orange risk 1", "○ Blue risk 5"],
        "Open alarms at 1 sites Unguarded zones at 1 sites",
        ["s0", "s1", "s4"],
    ] == result


async def test_the_device_count_says_one_device_and_two_devices_in_english(
    console_page: Page,
) -> None:
    counts = await run(
        console_page,
        """
        const { renderDevices } = await import('./pages.js');
        i18n.setLang('en');
        const said = [];
        for (const ids of [['f1'], ['f1', 'f2']]) {
          const s = state.createState();
          s.sites.set('s', { id: 's', name: 'S', zones: [{ id: 'z1', name: 'Z' }] });
          for (const id of ids) s.devices.set(id, { id, site: 's', type: 'fence', zones: ['z1'] });
          const count = document.createElement('span');
          renderDevices(document.createElement('div'), document.createElement('table'), count, s,
            Date.now(), { sites: ['s'], offset: 0, size: 50 });
          said.push(count.textContent);
        }
        i18n.setLang('zh-CN');
        return said;
        """,
    )
    assert ["1 device, 0 offline", "2 devices, 0 offline"] == counts


async def test_the_hubs_own_changes_are_by_the_system_in_words_not_its_login(
    console_page: Page,
) -> None:
    """An auto-resolve or the timer's climb is audited as ``system``: the handover and
    the history say the system did it; a login the hub's map lacks is shown as it is."""
    names = await run(
        console_page,
        """
        const { personName } = await import('./view.js');
        const s = state.createState();
        s.people = new Map([['officer-li', '李值班员']]);
        const said = [];
        for (const lang of ['zh-CN', 'en']) {
          i18n.setLang(lang);
          said.push(['system', 'officer-li', 'someone-new'].map((who) => personName(s, who)));
        }
        i18n.setLang('zh-CN');
        return said;
        """,
    )
    assert [
        ["系统", "李值班员", "someone-new"],
        ["the system", "李值班员", "someone-new"],
    ] == names


async def test_a_people_message_renames_people_without_a_new_hello(console_page: Page) -> None:
    """A responder renamed by an admin (PROTOCOL 7.43): the whole map comes again, and
    a name that is not text is left out as in ``hello``."""
    result = await run(
        console_page,
        """
        const { personName } = await import('./view.js');
        const s = state.createState();
        state.applyMessage(s, {seq: 1, type: 'hello',
          data: {people: {'responder:chen': '陈网格员', 'officer-li': '李值班员'}}});
        const before = personName(s, 'responder:chen');
        const r = state.applyMessage(s, {seq: 2, type: 'people',
          data: {'responder:chen': '陈建国', 'officer-li': '李值班员', 'responder:x': 7}});
        return [before, personName(s, 'responder:chen'), personName(s, 'responder:x'),
          [...r.parts].sort()];
        """,
    )
    assert ["陈网格员", "陈建国", "responder:x", ["alarms", "user"]] == result
