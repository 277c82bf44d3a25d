"""A notice about an alarm at the example's Danshui bridge, and configurations that
point the example's channels at the test's own receivers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hub.notify.links import ResponderLinks
from hub.notify.message import Notice
from riverguard.config import Config
from riverguard.responders import Notify, Responder
from riverguard.wire.models import Alarm

# Apprise loads its e-mail plugin with its first use of any service, and that plugin
# imports imghdr (deprecated in 3.11, gone in 3.13, where Apprise brings a shim):
# the warning is Apprise's, not ours.
APPRISE_IMGHDR = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

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
