"""The printed timeline's words for what the hub stores as codes: a late responder,
a climb's reason the page has no words for, a channel of a kind it does not know, the
hub's own resolve note."""

from __future__ import annotations

from typing import Any

from hub.timeline import render_html


def _timeline(*entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "alarm": {"id": "alm-1", "state": "open", "severity": "critical"},
        "site": {"id": "s", "name": "淡水大桥东岸", "name_en": "", "grid": "g"},
        "zone": {"id": "z1", "name": "桥下", "name_en": ""},
        "entries": list(entries),
        "outcome": None,
        "generated_at": "2026-12-07T12:00:00Z",
    }


def _step(state: str, overdue_at: str | None) -> dict[str, Any]:
    data = {
        "detail": "overdue",
        "responder": "chen",
        "responder_name": "陈网格员",
        "state": state,
        "level": 1,
        "note": None,
        "overdue_at": overdue_at,
    }
    return {"ts": "2026-12-07T12:00:00Z", "type": "dispatch", "by": "system", "data": data}


def _climb(reason: str | None) -> dict[str, Any]:
    data = {
        "detail": "",
        "escalation_level": 1,
        "escalation_name": "grid officer",
        "escalation_reason": reason,
        "escalated_by": None,
    }
    return {"ts": "2026-12-07T12:00:00Z", "type": "escalate", "by": "system", "data": data}


def test_a_responder_the_timer_found_late_is_said_late() -> None:
    page = render_html(_timeline(_step("on_the_way", "2026-12-07T12:00:00Z")), "zh")
    assert "陈网格员: 正在赶往现场（超时未到达）" in page
    assert "overdue" not in page
    on_time = render_html(_timeline(_step("on_the_way", None)), "en")
    assert "陈网格员: on the way</td>" in on_time


def test_a_climb_without_a_reason_the_page_knows_prints_no_code() -> None:
    for reason in (None, "a_newer_hubs_reason"):
        page = render_html(_timeline(_climb(reason)), "zh")
        assert "级别 1 (网格员)</td>" in page
        assert "a_newer_hubs_reason" not in page


def _resolved(note: str, code: str | None, window_s: float | None) -> dict[str, Any]:
    said = {"note": note, "note_code": code, "note_window_s": window_s}
    data = {"detail": "", "outcome": "persuaded_away", **said}
    timeline = _timeline(
        {"ts": "2026-12-07T12:00:00Z", "type": "resolve", "by": "system", "data": data}
    )
    outcome = {"outcome": "persuaded_away", "resolved_by": "system", "resolved_at": None}
    timeline["outcome"] = {**outcome, **said}
    return timeline


def test_the_hubs_own_resolve_note_is_said_in_the_pages_language() -> None:
    english = "no trigger for 30 s after the announcement"
    auto = _resolved(english, "quiet_after_announcement", 30.0)
    zh = render_html(auto, "zh")
    assert zh.count("广播后 30 秒内无触发，系统自动处置") == 2  # the entry and the outcome
    assert "no trigger" not in zh
    assert english in render_html(auto, "en")
    # An officer's note, and a code the page has no words for, as written.
    for code in (None, "a_newer_hubs_code"):
        assert render_html(_resolved("已劝离岸边", code, 30.0), "zh").count("已劝离岸边") == 2
