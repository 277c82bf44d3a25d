"""Incident timelines: one alarm's story, as JSON and as a printable HTML page.

Events (with snapshot links), announcements with each speaker's states, and
the audited acts on the alarm (ack, escalation, new intrusion, suggestion,
resolve, a responder's steps) and each call of a responder (by an escalation or
an officer, with its level and channels), in time order. A device's repeated
detections of one person, one after the other, are one entry with their count,
so that the acts between them are not buried (PROTOCOL 7.36). Read from the state store only: a
timeline is complete even while InfluxDB is down.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hub.alarms import SYSTEM
from hub.announcer import shape as shape_announcement
from hub.clips import ClipInfo
from hub.dispatch import Dispatch
from hub.edge_warnings import EDGE_AUTO
from hub.store import AuditEntry, NotificationRow, Store
from hub.timeline_words import Lang, channel, known, note, reason, times_note, word
from riverguard.config import Config
from riverguard.wire.models import Alarm
from riverguard.wire.times import format_ts, parse_ts

LABELS: dict[Lang, dict[str, str]] = {
    "zh": {
        "title": "事件时间线",
        "site": "地点",
        "zone": "区域",
        "alarm": "告警",
        "state": "状态",
        "severity": "级别",
        "opened": "告警开启",
        "event": "事件",
        "announcement": "广播",
        "speaker": "喇叭",
        "ack": "确认",
        "escalate": "升级",
        "intrusion": "新闯入",
        "dispatch": "处置人员",
        "suggest": "建议",
        "resolve": "处置完成",
        "time": "时间",
        "what": "内容",
        "by": "人员",
        "detail": "详情",
        "outcome": "结果",
        "note": "备注",
        "snapshot": "抓拍",
        "system": "系统",
        "generated": "生成时间",
        "level": "级别",
        "by_hand": "值班员派遣",
        "channels": "渠道",
        "edge_auto": "边缘自动警告",
    },
    "en": {
        "title": "Incident timeline",
        "site": "Site",
        "zone": "Zone",
        "alarm": "Alarm",
        "state": "State",
        "severity": "Severity",
        "opened": "Alarm opened",
        "event": "Event",
        "announcement": "Announcement",
        "speaker": "Speaker",
        "ack": "Acknowledged",
        "escalate": "Escalated",
        "intrusion": "New intrusion",
        "dispatch": "Responder",
        "suggest": "Suggestion",
        "resolve": "Resolved",
        "time": "Time",
        "what": "What",
        "by": "By",
        "detail": "Detail",
        "outcome": "Outcome",
        "note": "Note",
        "snapshot": "snapshot",
        "system": "system",
        "generated": "Generated",
        "level": "level",
        "by_hand": "sent by hand",
        "channels": "channels",
        "edge_auto": "the edge by itself",
    },
}

# The acts on an alarm that the audit log holds and a timeline shows.
_ACTS = ("ack", "escalate", "intrusion", "suggest", "resolve", "dispatch")


def _entry(ts: datetime | str, type_: str, by: str | None, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "ts": ts if isinstance(ts, str) else format_ts(ts),
        "type": type_,
        "by": by,
        "data": data,
    }


async def build(store: Store, config: Config, alarm: Alarm, now: datetime) -> dict[str, Any]:
    site = config.site_by_id.get(alarm.site)
    zone = next((z for z in site.zones if z.id == alarm.zone), None) if site else None
    events = []
    entries = []
    alarm_events = await store.events.of_alarm(alarm.id)
    # A Frigate snapshot may come after its event was sent with ``snapshot: false``
    # (PROTOCOL 7.10): what the store holds counts, not only the flag.
    pictured = await store.events.with_snapshot([event.id for event, _ in alarm_events])
    for event, received_at in alarm_events:
        item = event.model_dump(mode="json")
        item["received_at"] = format_ts(received_at)
        has_snapshot = event.snapshot or event.id in pictured
        item["snapshot_url"] = f"/api/events/{event.id}/snapshot" if has_snapshot else None
        events.append(item)
        entries.append(_entry(event.ts, "event", None, item))
    announcements = []
    for record in await store.announcements.of_alarm(alarm.id):
        shaped = shape_announcement(record)
        announcements.append(shaped)
        entries.append(_entry(record.created_at, "announcement", record.requested_by, shaped))
        for step in shaped["history"]:
            if step["state"] != "pending":
                entries.append(
                    _entry(step["ts"], "speaker", None, dict(step, announcement=shaped["id"]))
                )
    # A stand-down (7.44) is in the audit entry of the cancel that queued it.
    messages = [
        row for row in await store.notifications.for_alarm(alarm.id) if row.call.purpose == "call"
    ]
    channels = _channels_of_calls(messages)
    audit = await store.audit.find(alarm_id=alarm.id, limit=10_000, oldest_first=True)
    audited = {
        (str(act.after.get("responder")), int(act.after.get("level") or 0))
        for act in audit
        if act.action == "dispatch" and act.after and act.after.get("state") == "notified"
    }
    dispatches = await store.dispatches.of_alarm(alarm.id)
    # Each escalation's calls follow it (same instant): time order alone would not.
    calls = _escalation_calls(config, messages, dispatches, audited, channels)
    for act in audit:
        if act.action in _ACTS:
            after = act.after or {}
            if act.action == "dispatch":
                entries.append(_dispatch_step(act, channels))
                continue
            if act.action == "intrusion":
                # The intrusion that re-raised the alarm: its device and why it is new.
                raised = (after.get("intrusions") or [{}])[-1]
                entries.append(
                    _entry(
                        act.ts,
                        "intrusion",
                        act.username,
                        {
                            "detail": act.detail,
                            "cause": raised.get("cause"),
                            "device": raised.get("device"),
                            "intrusion_count": after.get("intrusion_count"),
                        },
                    )
                )
                continue
            data = {
                "detail": act.detail,
                "escalation_level": after.get("escalation_level"),
                "escalation_name": after.get("escalation_name"),
                # Why it climbed (7.40); absent from alarms audited before.
                "escalation_reason": after.get("escalation_reason"),
                "escalated_by": after.get("escalated_by"),
                "suggestion": after.get("suggestion"),
                "next_step": after.get("next_step"),
                "outcome": after.get("outcome"),
                "note": after.get("note"),
                "note_code": after.get("note_code"),
                "note_window_s": after.get("note_window_s"),
            }
            entries.append(_entry(act.ts, act.action, act.username, data))
            if act.action == "escalate":
                level = after.get("escalation_level")
                entries.extend(c for c in calls if c["data"]["level"] == level)
                calls = [c for c in calls if c["data"]["level"] != level]
    entries.extend(calls)
    entries.sort(key=lambda e: parse_ts(e["ts"]))
    entries = fold_repeats(entries)
    # The opening comes first even though its first event happened (device time) earlier.
    first = events[0]["severity"] if events else alarm.severity
    opened = _entry(alarm.opened_at, "opened", None, {"severity": first})
    entries.insert(0, opened)
    outcome = None
    if alarm.state == "resolved":
        outcome = {
            "outcome": alarm.outcome,
            "note": alarm.note,
            "note_code": alarm.note_code,
            "note_window_s": alarm.note_window_s,
            "resolved_by": alarm.resolved_by,
            "resolved_at": format_ts(alarm.resolved_at) if alarm.resolved_at else None,
        }
    return {
        "alarm": alarm.model_dump(mode="json"),
        "site": {
            "id": alarm.site,
            "name": site.name if site else alarm.site,
            "name_en": site.name_en if site else "",
            "grid": site.grid if site else "",
        },
        "zone": {
            "id": alarm.zone,
            "name": zone.name if zone else alarm.zone,
            "name_en": zone.name_en if zone else "",
        },
        "entries": entries,
        "events": events,
        "announcements": announcements,
        "audit": [act.shape() for act in audit],
        "outcome": outcome,
        "generated_at": format_ts(now),
    }


def _dispatch_step(act: AuditEntry, channels: dict[tuple[str, int], list[str]]) -> dict[str, Any]:
    """A responder's audited step: who, how far, their note (hub/dispatcher.py)."""
    after = act.after or {}
    data = {
        "detail": act.detail,
        "responder": after.get("responder"),
        "responder_name": after.get("responder_name"),
        "state": after.get("state"),
        "level": after.get("level"),
        "note": after.get("note"),
        "overdue_at": after.get("overdue_at"),
    }
    if data["state"] == "notified":
        # A call, audited when made with its channels (before they were audited, the
        # outbox rows say which).
        data["channels"] = after.get("channels") or channels.get(
            (str(data["responder"]), int(data["level"] or 0)), []
        )
    return _entry(act.ts, "dispatch", act.username, data)


def _channels_of_calls(messages: list[NotificationRow]) -> dict[tuple[str, int], list[str]]:
    """The channels each responder was messaged on, by (responder, level), from the
    notification outbox (hub/notify)."""
    channels: dict[tuple[str, int], list[str]] = {}
    for row in messages:
        labels = channels.setdefault((row.call.responder_id, row.call.level), [])
        if row.call.channel_label not in labels:
            labels.append(row.call.channel_label)
    return channels


def _escalation_calls(
    config: Config,
    messages: list[NotificationRow],
    dispatches: list[Dispatch],
    audited: set[tuple[str, int]],
    channels: dict[tuple[str, int], list[str]],
) -> list[dict[str, Any]]:
    """A ``dispatch`` entry in state ``notified`` for each responder called without
    an audit entry of the call (``audited``): an escalation stored before calls
    were audited. The outbox rows (one per channel, written with it) say when, at
    which level and on which channels, and a dispatch without rows still shows as
    a call at its own time."""
    first: dict[tuple[str, int], datetime] = {}
    for row in messages:
        first.setdefault((row.call.responder_id, row.call.level), row.created_at)
    for dispatch in dispatches:
        first.setdefault((dispatch.responder_id, dispatch.level), dispatch.notified_at)
    entries = []
    for (responder_id, level), ts in first.items():
        if (responder_id, level) in audited:
            continue
        responder = config.responder_by_id.get(responder_id)
        data = {
            "detail": f"called at level {level}",
            "responder": responder_id,
            "responder_name": responder.name if responder else None,
            "state": "notified",
            "level": level,
            "note": None,
            "overdue_at": None,
            "channels": channels.get((responder_id, level), []),
        }
        entries.append(_entry(ts, "dispatch", SYSTEM, data))
    return entries


def _repeat_key(entry: dict[str, Any]) -> tuple[Any, ...] | None:
    if entry["type"] != "event":
        return None
    data = entry["data"]
    return data["device"], data["kind"], data.get("attrs", {}).get("frigate_id")


def fold_repeats(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive events of one device, kind and track as one entry with ``count`` and
    ``last_ts``: a camera reports a swimmer every few seconds, and dozens of rows of
    it hid the acknowledgement and the announcements between them."""
    folded: list[dict[str, Any]] = []
    for entry in entries:
        key = _repeat_key(entry)
        last = folded[-1] if folded else None
        if key is not None and last is not None and _repeat_key(last) == key:
            last["count"] = last.get("count", 1) + 1
            last["last_ts"] = entry["ts"]
            continue
        folded.append(dict(entry))
    return folded


@dataclass(frozen=True)
class Clips:
    """What a printed page names announcements' clips by: the library's clips, and
    the ids of the sites' own warnings (rendered from their configured text)."""

    library: Mapping[str, ClipInfo] = field(default_factory=dict)
    site_warnings: frozenset[str] = frozenset()


class _Page:
    """How a printed page says things: its language, the site's clock, people's and
    clips' names."""

    def __init__(self, lang: Lang, tz: ZoneInfo, people: Mapping[str, str], clips: Clips) -> None:
        self.lang = lang
        self.tz = tz
        self.people = people
        self.clips = clips

    def word(self, group: str, value: object) -> str:
        return word(self.lang, group, value)

    def time(self, ts: str | None) -> str:
        """An instant as the site's clock read it (the officer reads the page there)."""
        if not ts:
            return ""
        return parse_ts(ts).astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def person(self, username: str | None) -> str:
        return self.people.get(username or "", username or "")

    def level(self, name: object) -> str:
        """A grid-path level's name: the configuration's own ones in the page's
        language, a site's own names as written."""
        return self.word("level", str(name or "").replace(" ", "_")) if name else ""

    def clip(self, clip: dict[str, Any]) -> str:
        """A clip by its name in the page's language, as the console names it; an id
        only for a clip the hub no longer has."""
        clip_id = str(clip.get("id", ""))
        # A spoken text's file is named by a hash: say what it is instead.
        if clip_id.startswith("tts-"):
            return self.word("clip", "spoken")
        if clip_id in self.clips.site_warnings:
            return self.word("clip", "site_warning")
        info = self.clips.library.get(clip_id)
        if info is None:
            return clip_id
        return (info.name_en if self.lang == "en" else info.name_zh) or info.title or clip_id


def _dispatch_detail(data: dict[str, Any], labels: dict[str, str], page: _Page) -> str:
    who = data["responder_name"] or data["responder"]
    if data["state"] != "notified":
        # A step the timer marked late keeps its state: say it is late.
        late = page.word("dispatch", "overdue") if data.get("overdue_at") else ""
        return f"{who}: {page.word('dispatch', data['state'])}{late} {data['note'] or ''}"
    # The call itself: at which level of the grid path (0: by hand), on what.
    level = data.get("level") or 0
    how = f"{labels['level']} {level}" if level else labels["by_hand"]
    detail = f"{who}: {page.word('dispatch', 'notified')} · {how}"
    if data.get("channels"):
        said = ", ".join(channel(page.lang, label) for label in data["channels"])
        detail += f" · {labels['channels']}: {said}"
    return detail


def _escalation_detail(data: dict[str, Any], labels: dict[str, str], page: _Page) -> str:
    """The level climbed to and why (PROTOCOL 7.40), in the page's words: not the
    audit's English detail. A climb audited before 7.40 has no reason to print."""
    detail = f"{labels['level']} {data['escalation_level']}"
    if data.get("escalation_name"):
        detail += f" ({page.level(data['escalation_name'])})"
    why = data.get("escalation_reason")
    if known(page.lang, "reason", why):
        detail += f" · {reason(page.lang, why, page.person(data.get('escalated_by')))}"
    return detail


def _what(entry: dict[str, Any], labels: dict[str, str], page: _Page) -> tuple[str, str]:
    """The entry's label and its detail, as plain text."""
    data = entry["data"]
    kind = entry["type"]
    if kind == "event":
        kind_word, severity = (
            page.word("kind", data["kind"]),
            page.word("severity", data["severity"]),
        )
        detail = f"{kind_word} · {data['device']} · {severity}"
        if entry.get("count", 1) > 1:
            detail += f" ×{entry['count']} … {page.time(entry['last_ts'])}"
    elif kind == "announcement":
        speakers = ", ".join(
            f"{s}: {page.word('speaker', st)}" for s, st in data["speakers"].items()
        )
        detail = f"{page.clip(data['clip'])} · {speakers}"
    elif kind == "speaker":
        detail = f"{data['speaker']}: {page.word('speaker', data['state'])} {data['detail']}"
    elif kind == "opened":
        detail = page.word("severity", data["severity"])
    elif kind == "escalate":
        detail = _escalation_detail(data, labels, page)
    elif kind == "intrusion":
        cause = page.word("cause", data["cause"]) if data["cause"] else ""
        detail = f"{data['device']} · {cause}" if cause else str(data["device"] or "")
    elif kind == "suggest":
        # The suggested outcome or next step; the audit's detail is the hub's English.
        suggested = [page.word("outcome", data["suggestion"])] if data["suggestion"] else []
        if data.get("next_step"):
            suggested.append(page.word("next_step", data["next_step"]))
        detail = " · ".join(suggested)
    elif kind == "resolve":
        said = note(page.lang, data["note"], data.get("note_code"), data.get("note_window_s"))
        detail = f"{page.word('outcome', data['outcome'])} {said}"
    elif kind == "dispatch":
        detail = _dispatch_detail(data, labels, page)
    else:
        detail = data.get("detail") or ""
    return labels.get(kind, kind), detail.strip()


def render_html(
    timeline: dict[str, Any],
    lang: Lang,
    url: Callable[[str], str] = str,
    *,
    tz: str = "UTC",
    people: Mapping[str, str] | None = None,
    clips: Clips | None = None,
) -> str:
    """A self-contained page for printing: no scripts, no external resources.
    ``url`` turns a snapshot path into the URL the page shows (a signed link); times
    are printed on the clock of ``tz`` (the site's), people by their ``people`` names,
    clips by their names in ``clips``."""
    labels = LABELS[lang]
    page = _Page(lang, ZoneInfo(tz), people or {}, clips or Clips())
    esc = html.escape
    alarm = timeline["alarm"]
    site = timeline["site"]
    zone = timeline["zone"]
    site_name = site["name_en"] if lang == "en" and site["name_en"] else site["name"]
    zone_name = zone["name_en"] if lang == "en" and zone["name_en"] else zone["name"]
    rows = []
    for entry in timeline["entries"]:
        what, detail = _what(entry, labels, page)
        data = entry["data"]
        if entry["type"] == "event" and data.get("snapshot_url"):
            link = f' <a href="{esc(url(data["snapshot_url"]))}">{esc(labels["snapshot"])}</a>'
        else:
            link = ""
        by = entry["by"]
        if by == SYSTEM:
            who = labels["system"]
        elif by == EDGE_AUTO:
            who = labels["edge_auto"]
        else:
            who = page.person(by)
        rows.append(
            f'<tr class="{esc(entry["type"])}"><td>{esc(page.time(entry["ts"]))}</td>'
            f"<td>{esc(what)}</td>"
            f"<td>{esc(who)}</td><td>{esc(detail)}{link}</td></tr>"
        )
    outcome = timeline["outcome"]
    outcome_html = ""
    if outcome is not None:
        outcome_html = (
            f"<p><b>{esc(labels['outcome'])}:</b> {esc(page.word('outcome', outcome['outcome']))}"
            f" · {esc(page.person(outcome['resolved_by']))}"
            f" · {esc(page.time(outcome['resolved_at']))}</p>"
        )
        said = note(lang, outcome["note"], outcome.get("note_code"), outcome.get("note_window_s"))
        if said:
            outcome_html += f"<p><b>{esc(labels['note'])}:</b> {esc(said)}</p>"
    html_lang = "zh-CN" if lang == "zh" else "en"
    return f"""<!doctype html>
<html lang="{html_lang}"><head><meta charset="utf-8">
<title>{esc(labels["title"])} {esc(alarm["id"])}</title>
<style>
body{{font-family:sans-serif;margin:2em;color:#000}}
table{{border-collapse:collapse;width:100%}}
th,td{{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top}}
tr.escalate td,tr.intrusion td,tr.resolve td{{font-weight:bold}}
@media print{{a{{color:#000;text-decoration:none}}}}
</style></head><body>
<h1>{esc(labels["title"])}</h1>
<p><b>{esc(labels["alarm"])}:</b> {esc(alarm["id"])} · <b>{esc(labels["state"])}:</b>
{esc(page.word("state", alarm["state"]))} · <b>{esc(labels["severity"])}:</b>
{esc(page.word("severity", alarm["severity"]))}</p>
<p><b>{esc(labels["site"])}:</b> {esc(site_name)} ({esc(site["grid"])}) ·
<b>{esc(labels["zone"])}:</b> {esc(zone_name)}</p>
{outcome_html}
<table><thead><tr><th>{esc(labels["time"])}</th><th>{esc(labels["what"])}</th>
<th>{esc(labels["by"])}</th><th>{esc(labels["detail"])}</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<p>{esc(labels["generated"])}: {esc(page.time(timeline["generated_at"]))} ·
{esc(times_note(lang, tz))}</p>
</body></html>
"""
