"""Responders, rotas and call lists load from the configuration and refuse what
could never reach anyone, with a reason that names the culprit."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from riverguard.config import Config, ConfigError, load_config, site_part
from riverguard.responders import SmsGateway

SITE = """
[[sites]]
id = "s1"
name = "S1"
grid = "city/district"
timezone = "Asia/Shanghai"
[[sites.zones]]
id = "z1"
name = "Z1"
[[sites.escalation]]
after_s = 60
level_name = "grid officer"
call = ["grid-team", "wang"]
[[sites.escalation]]
after_s = 120
level_name = "village police"
call = ["police"]
"""

PEOPLE = """
[notify]
email = "mailto://riverguard:pw@mail.example.cn:2525?from=riverguard@example.cn"
[[notify.webhooks]]
id = "dispatch"
url = "https://dispatch.example.cn/hook"
secret = "0123456789abcdef0123"
[[notify.sms_gateways]]
id = "sms"
url = "https://sms.example.cn/send"
body = { to = "{phone}", content = "{text}" }

[[responders]]
id = "wang"
name = "王网格员"
phone = "+8613800000001"
email = "wang@example.cn"
channels = [{ kind = "email" }, { kind = "sms", gateway = "sms" }]

[[responders]]
id = "li"
name = "Li"
language = "en"
channels = [{ kind = "apprise", url = "wecombot://0123456789abcdef" }]

[[responders]]
id = "police"
name = "派出所"
channels = [{ kind = "webhook", webhook = "dispatch" }]

[[rotas]]
id = "grid-team"
  [[rotas.shifts]]
  responder = "wang"
  days = ["mon", "tue", "wed", "thu", "fri"]
  start = "08:00"
  end = "20:00"
  [[rotas.shifts]]
  responder = "li"
  days = ["mon", "tue", "wed", "thu", "fri"]
  start = "20:00"
  end = "08:00"
"""


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return load_config(path)


def test_responders_rotas_and_call_lists_load(tmp_path: Path) -> None:
    config = _load(tmp_path, SITE + PEOPLE)
    assert ["wang", "li", "police"] == [responder.id for responder in config.responders]
    assert ["grid-team", "wang"] == config.site("s1").escalation[0].call
    assert "en" == config.responder_by_id["li"].language
    assert "0123456789abcdef0123" == config.notify.webhooks[0].secret.get_secret_value()


def test_an_edge_gets_no_responder_and_no_call_list(tmp_path: Path) -> None:
    part = site_part(_load(tmp_path, SITE + PEOPLE), "s1")
    assert [] == part.responders
    assert [[], []] == [level.call for level in part.site("s1").escalation]
    assert ["grid officer", "village police"] == [
        level.level_name for level in part.site("s1").escalation
    ]


def test_a_site_without_call_lists_still_loads(example_config: Config) -> None:
    assert all(not level.call for site in example_config.sites for level in site.escalation)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ('call = ["police"]', 'call = ["nobody"]', r"level 2 \(village police\) calls unknown"),
        ('call = ["police"]', 'call = ["police", "police"]', "duplicate call-list id"),
        ('responder = "li"', 'responder = "zhao"', "rota grid-team names unknown responder"),
        ('id = "grid-team"', 'id = "wang"', "has the id of a responder"),
        ('end = "08:00"', 'end = "09:00"', "overlap on tue at 08:00"),
        (
            'days = ["mon", "tue", "wed", "thu", "fri"]\n  start = "20:00"',
            'days = []\n  start = "20:00"',
            "days",
        ),
        ('start = "20:00"', 'start = "24:00"', "start"),
        ('webhook = "dispatch"', 'webhook = "pager"', "unknown webhook pager"),
        ('gateway = "sms"', 'gateway = "sms2"', "unknown sms gateway sms2"),
        ('phone = "+8613800000001"\n', "", "sms channel, no phone"),
        ('email = "wang@example.cn"\n', "", "email channel, no email"),
        ('email = "mailto://', 'email = "slack://', "mailto:// or mailtos://"),
        ('url = "https://dispatch.example.cn/hook"', 'url = "ftp://dispatch.example.cn"', "http"),
        ('secret = "0123456789abcdef0123"', 'secret = "short"', "secret"),
        ('url = "wecombot://0123456789abcdef"', 'url = "not a url"', "Apprise URL"),
        ('content = "{text}"', 'content = "{text.__class__}"', "unknown placeholders"),
        ('language = "en"', 'language = "fr"', "language"),
        ('channels = [{ kind = "webhook", webhook = "dispatch" }]', "channels = []", "channels"),
        ('phone = "+8613800000001"', 'phone = "call me"', "phone"),
    ],
)
def test_responders_that_cannot_be_reached_are_refused(
    tmp_path: Path, old: str, new: str, reason: str
) -> None:
    text = SITE + PEOPLE
    assert old in text
    with pytest.raises(ConfigError, match=reason):
        _load(tmp_path, text.replace(old, new, 1))


def test_an_empty_rota_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shifts"):
        _load(tmp_path, SITE + PEOPLE + '[[rotas]]\nid = "empty"\nshifts = []\n')


@pytest.mark.parametrize(
    ("gateway", "reason"),
    [
        ({"method": "GET", "body": {"t": "{text}"}}, "a GET sends no body"),
        ({"body_encoding": "form", "body": {"to": ["{phone}"]}}, "a form body holds no tables"),
        ({"headers": {"X-Key": "{secret}"}}, "unknown placeholders"),
        ({"url": "https://sms.example.cn/{who}"}, "unknown placeholders"),
    ],
)
def test_an_sms_gateway_template_that_could_not_be_sent_is_refused(
    gateway: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        SmsGateway.model_validate({"id": "gw", "url": "https://sms.example.cn/send"} | gateway)


def test_the_configuration_in_docs_responders_md_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "responders.md").read_text()
    block = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    site = SITE.split("[[sites.escalation]]", 1)[0]
    config = _load(tmp_path, site + block)
    assert ["grid officer", "village police"] == [
        level.level_name for level in config.site("s1").escalation
    ]
    assert {"wang-grid07", "danshui-police"} <= set(config.responder_by_id)
