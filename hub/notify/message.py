"""The text of a call to a responder, in their language (zh-CN or English).

A ``Notice`` holds the facts (which alarm, where, how bad, what triggered it,
when, which level of the grid path, the links); ``render`` words them. Chat
and e-mail get a title and a body; an SMS gets one short line, since a long
text message arrives in pieces or not at all.

A notice's ``purpose`` is a call, or a stand-down: the alarm was resolved, or an
officer called the responder off, and they need not come (docs/protocol.md 7.44).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from riverguard.config import Site
from riverguard.responders import Language
from riverguard.wire.models import Alarm, EventKind, Severity

# What a message to a responder is for: to call them to an alarm, or to tell them
# it was resolved and they need not come.
Purpose = Literal["call", "stand_down"]


@dataclass(frozen=True)
class Notice:
    """What one call tells a responder about one alarm at one escalation level."""

    alarm_id: str
    site_id: str
    site_name: str
    site_name_en: str
    zone_id: str
    zone_name: str
    zone_name_en: str
    severity: Severity
    # What triggered the alarm, in the order first seen.
    kinds: tuple[EventKind, ...]
    opened_at: datetime
    timezone: str
    level: int
    level_name: str
    respond_url: str
    snapshot_url: str | None = None
    purpose: Purpose = "call"
    # When the alarm was resolved (a stand-down's).
    resolved_at: datetime | None = None

    @classmethod
    def of(
        cls,
        alarm: Alarm,
        site: Site,
        kinds: tuple[EventKind, ...],
        *,
        level: int,
        respond_url: str,
        snapshot_url: str | None,
        purpose: Purpose = "call",
    ) -> Notice:
        zone = next((z for z in site.zones if z.id == alarm.zone), None)
        level_name = "duty officer" if level == 0 else site.escalation[level - 1].level_name
        return cls(
            alarm_id=alarm.id,
            site_id=site.id,
            site_name=site.name,
            site_name_en=site.name_en,
            zone_id=alarm.zone,
            zone_name=zone.name if zone else alarm.zone,
            zone_name_en=zone.name_en if zone else "",
            severity=alarm.severity,
            kinds=kinds,
            opened_at=alarm.opened_at,
            timezone=site.timezone,
            level=level,
            level_name=level_name,
            respond_url=respond_url,
            snapshot_url=snapshot_url,
            purpose=purpose,
            resolved_at=alarm.resolved_at,
        )


@dataclass(frozen=True)
class Message:
    language: Language
    title: str
    body: str
    # One line for SMS.
    short: str


_SEVERITY: dict[Language, dict[str, str]] = {
    "zh-CN": {"critical": "紧急", "warning": "警告", "info": "提示"},
    "en": {"critical": "CRITICAL", "warning": "WARNING", "info": "INFO"},
}

# The console's words for the same kinds (console/i18n.js).
_KIND: dict[Language, dict[str, str]] = {
    "zh-CN": {
        "fence.breach": "围栏越界",
        "fence.clear": "围栏恢复",
        "fence.tamper": "围栏被破坏",
        "fence.fault": "围栏故障",
        "camera.intrusion": "区域入侵",
        "camera.line_crossing": "越线",
        "camera.loitering": "徘徊",
        "camera.water_entry": "有人下水",
    },
    "en": {
        "fence.breach": "fence breach",
        "fence.clear": "fence clear",
        "fence.tamper": "fence tamper",
        "fence.fault": "fence fault",
        "camera.intrusion": "intrusion",
        "camera.line_crossing": "line crossing",
        "camera.loitering": "loitering",
        "camera.water_entry": "person entering water",
    },
}


def local_time(notice: Notice, at: datetime | None = None) -> str:
    """When the alarm opened (or ``at``), on the site's clock, with its UTC offset (a
    responder in another zone, or a log read later, still knows which moment)."""
    local = (at or notice.opened_at).astimezone(ZoneInfo(notice.timezone))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


def render(notice: Notice, language: Language) -> Message:
    if notice.purpose == "stand_down":
        return _stand_down(notice, language)
    severity = _SEVERITY[language][notice.severity]
    kinds = [_KIND[language].get(kind, kind) for kind in notice.kinds]
    when = local_time(notice)
    if language == "zh-CN":
        site, zone = notice.site_name, notice.zone_name
        title = f"【{severity}】{site} {zone} 告警无人确认，请处置"
        lines = [
            f"地点：{site}",
            f"区域：{zone}",
            f"级别：{severity}",
            f"触发：{'、'.join(kinds) or '未知'}",
            f"时间：{when}",
            f"升级：第 {notice.level} 级（{notice.level_name}）",
        ]
        if notice.snapshot_url:
            lines.append(f"抓拍：{notice.snapshot_url}")
        lines.append(f"接受任务并上报进展：{notice.respond_url}")
        short = f"【{severity}】{site} {zone} 告警（{when[11:16]}），请处置：{notice.respond_url}"
    else:
        site = notice.site_name_en or notice.site_name
        zone = notice.zone_name_en or notice.zone_name
        title = f"[{severity}] {site}, {zone}: unacknowledged alarm, please respond"
        lines = [
            f"Site: {site}",
            f"Zone: {zone}",
            f"Severity: {severity}",
            f"Triggered by: {', '.join(kinds) or 'unknown'}",
            f"Opened: {when}",
            f"Escalation: level {notice.level} ({notice.level_name})",
        ]
        if notice.snapshot_url:
            lines.append(f"Snapshot: {notice.snapshot_url}")
        lines.append(f"Accept and report progress: {notice.respond_url}")
        short = f"[{severity}] {site}, {zone} alarm at {when[11:16]}: {notice.respond_url}"
    return Message(language=language, title=title, body="\n".join(lines), short=short)


def _stand_down(notice: Notice, language: Language) -> Message:
    """The alarm a responder was called to is resolved, or an officer called them off
    while it is still open: they need not come. No link: there is nothing left for
    them to do."""
    opened = local_time(notice)
    resolved = local_time(notice, notice.resolved_at) if notice.resolved_at else None
    if language == "zh-CN":
        site, zone = notice.site_name, notice.zone_name
        why, done = ("告警已处置", "已处置") if resolved else ("值班员已取消出警", "出警已取消")
        title = f"【解除】{site} {zone} {why}，无需前往"
        lines = [f"地点：{site}", f"区域：{zone}", f"告警时间：{opened}"]
        if resolved:
            lines.append(f"处置时间：{resolved}")
        lines.append("您的出警任务已取消，无需前往现场。")
        short = f"【解除】{site} {zone} 告警（{opened[11:16]}）{done}，无需前往。"
    else:
        site = notice.site_name_en or notice.site_name
        zone = notice.zone_name_en or notice.zone_name
        why = "alarm resolved" if resolved else "the duty officer called you off"
        title = f"[STAND DOWN] {site}, {zone}: {why}, no need to come"
        lines = [f"Site: {site}", f"Zone: {zone}", f"Opened: {opened}"]
        if resolved:
            lines.append(f"Resolved: {resolved}")
        lines.append("Your dispatch is called off; you need not go to the scene.")
        done = "resolved" if resolved else "called off"
        short = f"[STAND DOWN] {site}, {zone} alarm at {opened[11:16]} {done}; no need to come."
    return Message(language=language, title=title, body="\n".join(lines), short=short)
