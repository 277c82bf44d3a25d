"""The text of a call to a responder, in their language (zh-CN or English).

A ``Notice`` holds the facts (which alarm, where, how bad, what triggered it,
when, which level of the grid path, the links); ``render`` words them. Chat
and e-mail get a title and a body; an SMS gets one short line, since a long
text message arrives in pieces or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from riverguard.config import Site
from riverguard.responders import Language
from riverguard.wire.models import Alarm, EventKind, Severity


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


def local_time(notice: Notice) -> str:
    """When the alarm opened, on the site's clock, with its UTC offset (a responder
    in another zone, or a log read later, still knows which moment)."""
    local = notice.opened_at.astimezone(ZoneInfo(notice.timezone))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


def render(notice: Notice, language: Language) -> Message:
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
