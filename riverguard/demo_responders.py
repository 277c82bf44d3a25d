"""Demo responders: someone at every level of every site's grid path, all reached
through one signed webhook of the watcher's own (``riverguard up --webhook URL``).

The demo configuration calls nobody by itself (a call needs somewhere to go).
With a webhook, the stack runs the hub on a copy of the configuration whose
sites climb grid officer -> village police -> street duty leader -> district,
each site's first level calling its own grid officer and the levels above the
village police, the street's duty leader and the district office, shared by
the sites; every call arrives at ``URL``, signed with the secret printed at
start, with the link to the responder page in it. The edges keep the
configuration as it was: they never call anyone.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from riverguard.config import Config

# The demo's grid path: (seconds unacknowledged at the level below, level name).
GRID_PATH = (
    (60.0, "grid officer"),
    (120.0, "village police"),
    (180.0, "street duty leader"),
    (300.0, "district"),
)
# Above each site's own grid officer, one responder per level, shared by the sites.
SHARED_LEVELS = (
    ("village-police", "淡水派出所值班室", "zh-CN"),
    ("street-duty", "淡水街道值班领导", "zh-CN"),
    ("district-duty", "District duty office", "en"),
)


def with_demo_responders(config: Config, webhook_url: str, secret: str) -> dict[str, Any]:
    """``config`` (as loaded) with a responder called at each level of each site, all
    through one webhook; the raw configuration, for ``load_config`` to read back."""
    raw: dict[str, Any] = config.model_dump(mode="json", exclude={"notify", "responders"})
    channel = [{"kind": "webhook", "webhook": "demo"}]
    responders: list[dict[str, Any]] = [
        {"id": responder, "name": name, "language": language, "channels": channel}
        for responder, name, language in SHARED_LEVELS
    ]
    for site in raw["sites"]:
        officer = f"{site['id']}-grid-officer"
        responders.append(
            {
                "id": officer,
                "name": f"{site['name']}网格员",
                "language": "zh-CN",
                "channels": channel,
            }
        )
        site["escalation"] = [
            {
                "after_s": after_s,
                "level_name": name,
                "call": [officer] if number == 0 else [SHARED_LEVELS[number - 1][0]],
            }
            for number, (after_s, name) in enumerate(GRID_PATH)
        ]
    raw["responders"] = responders
    raw["rotas"] = []
    raw["notify"] = {"webhooks": [{"id": "demo", "url": webhook_url, "secret": secret}]}
    return raw


def write_demo_config(config: Config, webhook_url: str, directory: Path) -> tuple[Path, str]:
    """The demo configuration with responders, written into ``directory``; its path and
    the webhook's secret (kept in ``directory`` across runs)."""
    secret_file = directory / "webhook-secret.txt"
    if secret_file.exists():
        secret = secret_file.read_text(encoding="utf-8").strip()
    else:
        secret = secrets.token_urlsafe(24)
        secret_file.write_text(secret, encoding="utf-8")
        secret_file.chmod(0o600)
    path = directory / "config-with-responders.json"
    raw = with_demo_responders(config, webhook_url, secret)
    path.write_text(json.dumps(raw, ensure_ascii=False, indent=1), encoding="utf-8")
    path.chmod(0o600)
    return path, secret
