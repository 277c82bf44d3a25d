"""The words of a printed timeline: the wire's values (states, kinds, outcomes) as a
reader of the page says them, in zh-CN and English, as the console says them.

A value this table does not know is printed as it is: a newer hub's kind is still
shown, only untranslated.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]

_WORDS: dict[Lang, dict[str, str]] = {
    "zh": {
        "state.open": "未确认",
        "state.acknowledged": "已确认",
        "state.resolved": "已处置",
        "severity.critical": "紧急",
        "severity.warning": "警告",
        "severity.info": "提示",
        "kind.fence.breach": "围栏越界",
        "kind.fence.clear": "围栏恢复",
        "kind.fence.tamper": "围栏被破坏",
        "kind.fence.fault": "围栏故障",
        "kind.camera.intrusion": "区域入侵",
        "kind.camera.line_crossing": "越线",
        "kind.camera.loitering": "徘徊",
        "kind.camera.water_entry": "有人下水",
        "outcome.persuaded_away": "已劝离",
        "outcome.rescued": "已救援",
        "outcome.false_alarm": "误报",
        "outcome.patrol_sent": "已派巡逻",
        "outcome.other": "其他",
        "speaker.pending": "待发送",
        "speaker.received": "已接收",
        "speaker.playing": "播放中",
        "speaker.done": "已播完",
        "speaker.failed": "失败",
        "speaker.expired": "已过期",
        "dispatch.notified": "已通知",
        "dispatch.accepted": "已接受任务",
        "dispatch.on_the_way": "正在赶往现场",
        "dispatch.on_scene": "已到达现场",
        "dispatch.finished": "处置完成",
        "dispatch.declined": "无法前往",
        "dispatch.no_answer": "未应答",
        "dispatch.cancelled": "已取消",
        "dispatch.overdue": "（超时未到达）",
        "reason.unacknowledged": "升级原因：未及时确认",
        "reason.trigger_after_announcement": "升级原因：警告后再次触发",
        "reason.by_officer": "升级原因：{who} 立即通知下一级",
        "reason.dispatch_exhausted": "升级原因：已通知人员均无法到场",
        "level.duty_officer": "值班员",
        "level.grid_officer": "网格员",
        "level.street": "街道",
        "level.district": "区级",
        "level.village_police": "村（社区）警务",
        "level.street_duty_leader": "街道值班领导",
        "cause.quiet_gap": "静默后再次触发",
        "cause.after_gone": "区域清空后再次进入",
        "next_step.repeat": "再次喊话",
        "next_step.stronger_clip": "换用更强烈的喊话",
        "next_step.live_talk": "人工实时喊话",
        "next_step.send_patrol": "派出巡逻",
        "channel.sms": "短信",
        "channel.email": "邮件",
        "channel.webhook": "接口推送",
        "channel.wecombot": "企业微信群机器人",
        "channel.dingtalk": "钉钉群机器人",
        "channel.feishu": "飞书",
        "clip.spoken": "语音合成",
        "clip.site_warning": "站点默认警告",
        "times": "时间均为 {tz} 当地时间",
        "note.quiet_after_announcement": "广播后 {seconds} 秒内无触发，系统自动处置",
    },
    "en": {
        "state.open": "Unacknowledged",
        "state.acknowledged": "Acknowledged",
        "state.resolved": "Resolved",
        "severity.critical": "Critical",
        "severity.warning": "Warning",
        "severity.info": "Info",
        "kind.fence.breach": "Fence breach",
        "kind.fence.clear": "Fence clear",
        "kind.fence.tamper": "Fence tamper",
        "kind.fence.fault": "Fence fault",
        "kind.camera.intrusion": "Intrusion",
        "kind.camera.line_crossing": "Line crossing",
        "kind.camera.loitering": "Loitering",
        "kind.camera.water_entry": "Person entering water",
        "outcome.persuaded_away": "Persuaded away",
        "outcome.rescued": "Rescued",
        "outcome.false_alarm": "False alarm",
        "outcome.patrol_sent": "Patrol sent",
        "outcome.other": "Other",
        "speaker.pending": "pending",
        "speaker.received": "received",
        "speaker.playing": "playing",
        "speaker.done": "done",
        "speaker.failed": "failed",
        "speaker.expired": "expired",
        "dispatch.notified": "called",
        "dispatch.accepted": "accepted",
        "dispatch.on_the_way": "on the way",
        "dispatch.on_scene": "on scene",
        "dispatch.finished": "finished",
        "dispatch.declined": "declined",
        "dispatch.no_answer": "no answer",
        "dispatch.cancelled": "called off",
        "dispatch.overdue": " (late)",
        "reason.unacknowledged": "why: not acknowledged in time",
        "reason.trigger_after_announcement": "why: triggered again after a warning",
        "reason.by_officer": "why: {who} called the next level",
        "reason.dispatch_exhausted": "why: nobody called is coming",
        "level.duty_officer": "duty officer",
        "level.grid_officer": "grid officer",
        "level.street": "street",
        "level.district": "district",
        "level.village_police": "village police",
        "level.street_duty_leader": "street duty leader",
        "cause.quiet_gap": "after a quiet spell",
        "cause.after_gone": "after the zone was clear",
        "next_step.repeat": "announce again",
        "next_step.stronger_clip": "use a stronger clip",
        "next_step.live_talk": "talk live",
        "next_step.send_patrol": "send a patrol",
        "channel.sms": "SMS",
        "channel.email": "e-mail",
        "channel.webhook": "webhook",
        "channel.wecombot": "WeCom group robot",
        "channel.dingtalk": "DingTalk group robot",
        "channel.feishu": "Feishu",
        "clip.spoken": "Spoken text",
        "clip.site_warning": "The site's warning",
        "times": "All times are local times in {tz}",
        "note.quiet_after_announcement": "no trigger for {seconds} s after the announcement",
    },
}


def word(lang: Lang, group: str, value: object) -> str:
    """``value`` of ``group`` (state, severity, kind, outcome, speaker, dispatch, level,
    cause, next_step, channel) in ``lang``."""
    text = str(value if value is not None else "")
    return _WORDS[lang].get(f"{group}.{text}", text)


def known(lang: Lang, group: str, value: object) -> bool:
    """Whether the page has words for ``value``: a reason it has none for is left out
    rather than printed as the wire's code (PROTOCOL 7.40)."""
    return f"{group}.{value}" in _WORDS[lang]


def reason(lang: Lang, value: object, who: str) -> str:
    """Why an alarm climbed (PROTOCOL 7.40), ``who``: the officer who called the level."""
    return _WORDS[lang][f"reason.{value}"].format(who=who)


def channel(lang: Lang, label: str) -> str:
    """A call's channel label (``sms:<gateway>``, ``webhook:<name>``, ``email`` or an
    Apprise URL's scheme) by its kind; the configured gateway or webhook name as
    written."""
    kind, _, name = label.partition(":")
    said = word(lang, "channel", kind)
    return f"{said} {name}" if name else said


def times_note(lang: Lang, tz: str) -> str:
    return _WORDS[lang]["times"].format(tz=tz)


def note(lang: Lang, text: object, code: object, window_s: object) -> str:
    """An alarm's resolve note: the hub's own (PROTOCOL 7.42) in ``lang``, an officer's
    as written; a code the page has no words for falls back to the written note."""
    said = _WORDS[lang].get(f"note.{code}")
    if said is None or not isinstance(window_s, int | float):
        return str(text or "")
    return said.format(seconds=f"{window_s:g}")
