"""A notice about an alarm at the example's Danshui bridge, and configurations that
point the example's channels at the test's own receivers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.notify.links import ResponderLinks
from hub.notify.message import Notice
from riverguard.config import Config, load_config
from riverguard.responders import Notify, Responder
from riverguard.wire.models import Alarm
from tests.conftest import EXAMPLE_CONFIG

OPENED = datetime(2026, 7, 18, 11, 5, 12, tzinfo=UTC)
LINKS = ResponderLinks("https://riverguard.example.cn/")
TOKEN = "tok-123"


def alarm(**changes: Any) -> Alarm:
    values: dict[str, Any] = {
        "id": "a-1",
        "site": "danshui-bridge",
        "zone": "z1",
        "state": "open",
        "severity": "critical",
        "opened_at": OPENED,
        "updated_at": OPENED,
        "event_count": 2,
        "event_ids": ["db-fence-01:1", "db-cam-01:2"],
        "last_event_id": "db-cam-01:2",
        "escalation_level": 1,
        "escalation_name": "grid officer",
    }
    return Alarm.model_validate(values | changes)


def notice(config: Config, level: int = 1) -> Notice:
    return Notice.of(
        alarm(),
        config.site("danshui-bridge"),
        ("fence.breach", "camera.water_entry"),
        level=level,
        respond_url=LINKS.page(TOKEN),
        snapshot_url=LINKS.snapshot(TOKEN),
    )


def responder(language: str = "zh-CN", **changes: Any) -> Responder:
    values: dict[str, Any] = {
        "id": "wang",
        "name": "王网格员",
        "phone": "+8613800000001",
        "email": "wang@example.cn",
        "language": language,
        "channels": [{"kind": "email"}],
    }
    return Responder.model_validate(values | changes)


def notify(**values: Any) -> Notify:
    return Notify.model_validate(values)


SITE = "danshui-bridge"
# The grid officer's webhook key in config_with_a_grid_officer.
SECRET = "grid-officer-webhook-secret"


def config_with_a_grid_officer(tmp_path: Path, webhook_url: str) -> Path:
    """The example, with a grid officer (chen, zh-CN, a signed webhook at
    ``webhook_url``) on call at the first level of the bridge site; its path."""
    raw: dict[str, Any] = load_config(EXAMPLE_CONFIG).model_dump(mode="json")
    site = next(s for s in raw["sites"] if s["id"] == SITE)
    site["escalation"][0]["call"] = ["chen"]
    raw["notify"] = {"webhooks": [{"id": "duty", "url": webhook_url, "secret": SECRET}]}
    raw["responders"] = [
        {
            "id": "chen",
            "name": "陈网格员",
            "language": "zh-CN",
            "channels": [{"kind": "webhook", "webhook": "duty"}],
        }
    ]
    path = tmp_path / "site.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path


RESOLVED = datetime(2026, 7, 18, 11, 9, 40, tzinfo=UTC)


def stand_down_notice(config: Config, resolved: bool = True) -> Notice:
    """The alarm of ``notice``, resolved (or still open, the grid officer called off by
    an officer): the grid officer need not come."""
    closed = {"state": "resolved", "resolved_at": RESOLVED, "resolved_by": "officer-li"}
    return Notice.of(
        alarm(**closed, outcome="other") if resolved else alarm(),
        config.site("danshui-bridge"),
        ("fence.breach", "camera.water_entry"),
        level=1,
        respond_url=LINKS.page(TOKEN),
        snapshot_url=LINKS.snapshot(TOKEN),
        purpose="stand_down",
    )
