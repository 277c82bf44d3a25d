"""A call reads in the responder's language: where, how bad, what triggered it,
when on the site's clock, which level, and the links."""

from __future__ import annotations

import pytest

from hub.notify.links import ResponderLinks
from hub.notify.message import render
from riverguard.config import Config
from tests.notify.support import notice, stand_down_notice


def test_a_call_in_chinese_names_site_zone_severity_trigger_local_time_level_and_links(
    example_config: Config,
) -> None:
    message = render(notice(example_config), "zh-CN")
    assert "【紧急】淡水大桥东岸 桥下亲水平台 告警无人确认，请处置" == message.title
    assert [
        "地点：淡水大桥东岸",
        "区域：桥下亲水平台",
        "级别：紧急",
        "触发：围栏越界、有人下水",
        "时间：2026-07-18 19:05:12 +08:00",
        "升级：第 1 级（grid officer）",
        "抓拍：https://riverguard.example.cn/respond/tok-123/snapshot",
        "接受任务并上报进展：https://riverguard.example.cn/respond/tok-123",
    ] == message.body.splitlines()
    assert "19:05" in message.short
    assert message.short.endswith("https://riverguard.example.cn/respond/tok-123")


def test_a_call_in_english_uses_the_english_names(example_config: Config) -> None:
    message = render(notice(example_config, level=2), "en")
    assert (
        "[CRITICAL] Danshui Bridge, east bank, Under-bridge waterside deck: "
        "unacknowledged alarm, please respond"
    ) == message.title
    assert "Triggered by: fence breach, person entering water" in message.body
    assert "Opened: 2026-07-18 19:05:12 +08:00" in message.body
    assert "Escalation: level 2 (street)" in message.body
    assert "\n" not in message.short


def test_links_carry_the_token_escaped_under_the_base_url() -> None:
    links = ResponderLinks("https://hub.example.cn:8443/riverguard/")
    assert "https://hub.example.cn:8443/riverguard/respond/a%2Fb%3Fc" == links.page("a/b?c")
    assert links.snapshot("t").endswith("/respond/t/snapshot")


@pytest.mark.parametrize("base", ["ftp://hub.example.cn", "hub.example.cn", "https://"])
def test_links_refuse_a_base_url_that_is_not_http(base: str) -> None:
    with pytest.raises(ValueError, match="http"):
        ResponderLinks(base)


def test_a_stand_down_in_chinese_says_the_alarm_is_resolved_and_gives_no_link(
    example_config: Config,
) -> None:
    message = render(stand_down_notice(example_config), "zh-CN")
    assert "【解除】淡水大桥东岸 桥下亲水平台 告警已处置，无需前往" == message.title
    assert [
        "地点：淡水大桥东岸",
        "区域：桥下亲水平台",
        "告警时间：2026-07-18 19:05:12 +08:00",
        "处置时间：2026-07-18 19:09:40 +08:00",
        "您的出警任务已取消，无需前往现场。",
    ] == message.body.splitlines()
    assert "【解除】淡水大桥东岸 桥下亲水平台 告警（19:05）已处置，无需前往。" == message.short
    assert "http" not in message.body + message.short


def test_a_stand_down_in_english_uses_the_english_names(example_config: Config) -> None:
    message = render(stand_down_notice(example_config), "en")
    assert (
        "[STAND DOWN] Danshui Bridge, east bank, Under-bridge waterside deck: "
        "alarm resolved, no need to come"
    ) == message.title
    assert "Resolved: 2026-07-18 19:09:40 +08:00" in message.body
    assert "you need not go to the scene" in message.body
    assert "\n" not in message.short
    assert message.short.startswith("[STAND DOWN] ")


def test_a_stand_down_while_the_alarm_is_open_says_the_officer_called_them_off(
    example_config: Config,
) -> None:
    zh = render(stand_down_notice(example_config, resolved=False), "zh-CN")
    assert "【解除】淡水大桥东岸 桥下亲水平台 值班员已取消出警，无需前往" == zh.title
    assert "处置时间" not in zh.body
    assert "【解除】淡水大桥东岸 桥下亲水平台 告警（19:05）出警已取消，无需前往。" == zh.short
    en = render(stand_down_notice(example_config, resolved=False), "en")
    assert en.title.endswith(": the duty officer called you off, no need to come")
    assert "Resolved:" not in en.body
    assert en.short.endswith("alarm at 19:05 called off; no need to come.")
