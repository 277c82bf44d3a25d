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
        "clip.spoken": "语音合成",
        "times": "时间均为 {tz} 当地时间",
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
        "clip.spoken": "Spoken text",
        "times": "All times are local times in {tz}",
    },
}


def word(lang: Lang, group: str, value: object) -> str:
    """``value`` of ``group`` (state, severity, kind, outcome, speaker, dispatch) in ``lang``."""
    text = str(value if value is not None else "")
    return _WORDS[lang].get(f"{group}.{text}", text)


def times_note(lang: Lang, tz: str) -> str:
    return _WORDS[lang]["times"].format(tz=tz)
