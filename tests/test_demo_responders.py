"""riverguard up --webhook: the hub's copy of the demo configuration calls someone at
every level of every site's grid path, all through the watcher's signed webhook;
the edges keep the configuration as it was."""

from __future__ import annotations

from pathlib import Path

from riverguard.config import Config, load_config
from riverguard.demo_responders import write_demo_config
from riverguard.on_call import on_call
from riverguard.responders import WebhookChannel
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
