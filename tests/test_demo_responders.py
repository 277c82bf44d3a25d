"""riverguard up --webhook: the hub's copy of the demo configuration calls someone at
every level of every site's grid path, all through the watcher's signed webhook;
the edges keep the configuration as it was."""

from __future__ import annotations

from pathlib import Path

from riverguard.config import Config, load_config
from riverguard.demo_responders import write_demo_config
from riverguard.on_call import on_call
from riverguard.responders import WebhookChannel
from riverguard.settings import DEFAULT_CONFIG
from riverguard.stack import Stack
from riverguard.wire.times import utcnow


def test_every_level_of_every_site_calls_someone_through_the_webhook(
    tmp_path: Path, example_config: Config
) -> None:
    path, secret = write_demo_config(example_config, "https://watch.example.org/hook", tmp_path)
    demo = load_config(path)
    now = utcnow()
    for site in demo.sites:
        assert ["grid officer", "village police", "street duty leader", "district"] == [
            level.level_name for level in site.escalation
        ]
        called = [on_call(demo, site.id, level, now) for level in range(1, 5)]
        assert all(len(responders) == 1 for responders in called)
        assert f"{site.id}-grid-officer" == called[0][0].id
    assert all(
        [WebhookChannel(webhook="demo")] == responder.channels for responder in demo.responders
    )
    [webhook] = demo.notify.webhooks
    assert ("https://watch.example.org/hook", secret) == (
        webhook.url,
        webhook.secret.get_secret_value(),
    )
    assert [s.model_dump() for s in example_config.sites] != [s.model_dump() for s in demo.sites]
    assert example_config.devices == demo.devices
    assert example_config.users == demo.users


def test_the_webhook_secret_is_kept_across_runs(tmp_path: Path, example_config: Config) -> None:
    _, first = write_demo_config(example_config, "https://a.example.org/", tmp_path)
    _, again = write_demo_config(example_config, "https://b.example.org/", tmp_path)
    assert first == again
    assert 0o600 == (tmp_path / "webhook-secret.txt").stat().st_mode & 0o777


def _env(stack: Stack, name: str) -> dict[str, str]:
    env = stack.components[name].process.env
    assert env is not None
    return env


def test_with_a_webhook_the_stacks_hub_reads_the_copy_and_keeps_its_link_key(
    tmp_path: Path,
) -> None:
    first = Stack(data_dir=tmp_path, simulators=(), ports=None, webhook="https://w.example.org/")
    hub = _env(first, "hub")
    assert str(tmp_path / "config-with-responders.json") == hub["RIVERGUARD_CONFIG"]
    again = Stack(data_dir=tmp_path, simulators=(), ports=None, webhook="https://w.example.org/")
    key = _env(again, "hub")["RIVERGUARD_RESPONDER_KEY"]
    assert 16 <= len(key)
    assert hub["RIVERGUARD_RESPONDER_KEY"] == key
    edges = [_env(first, name) for name in first.components if name.startswith("edge")]
    assert edges
    assert all(str(DEFAULT_CONFIG.resolve()) == env["RIVERGUARD_CONFIG"] for env in edges)


def test_without_a_webhook_the_hub_calls_nobody(tmp_path: Path) -> None:
    stack = Stack(data_dir=tmp_path, simulators=(), ports=None)
    hub = _env(stack, "hub")
    assert str(DEFAULT_CONFIG.resolve()) == hub["RIVERGUARD_CONFIG"]
    assert "RIVERGUARD_RESPONDER_KEY" not in hub
