"""``riverguard devices``: list, add, rotate and revoke device logins of a stack.

Works on the data directory of ``riverguard up`` (its ``secrets.json`` holds the
broker's administration login, ``stack.json`` the broker's port). A change
reaches the running broker at once; with ``--offline`` (the stack stopped) it
is only recorded, and ``riverguard up`` applies it at its next start.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from riverguard import broker_acl
from riverguard.config import ConfigError, load_config
from riverguard.mqtt import BrokerSettings
from riverguard.provisioning import DeviceLoginStore, Provisioner, ProvisioningError


def _admin(data_dir: Path) -> BrokerSettings:
    try:
        secrets = json.loads((data_dir / "secrets.json").read_text(encoding="utf-8"))
        stack = json.loads((data_dir / "stack.json").read_text(encoding="utf-8"))
        return BrokerSettings(
            host=stack["broker"]["host"],
            port=stack["broker"]["port"],
            username=broker_acl.ADMIN,
            password=SecretStr(secrets["broker"][broker_acl.ADMIN]),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ProvisioningError(
            f"no running stack's broker login in {data_dir} ({exc}); "
            "start `riverguard up` or use --offline"
        ) from None


def run(action: str, device: str | None, data_dir: Path, config: Path, offline: bool) -> int:
    """The command's exit code: 0 done, 1 refused (the reason on stderr)."""
    try:
        _run(action, device, data_dir, config, offline)
    except (ProvisioningError, ConfigError) as exc:
        print(f"riverguard devices {action}: {exc}", file=sys.stderr)
        return 1
    return 0


def _run(action: str, device: str | None, data_dir: Path, config: Path, offline: bool) -> None:
    loaded = load_config(config)
    admin = None if offline or action == "list" else _admin(data_dir)
    provisioner = Provisioner(loaded, DeviceLoginStore.in_data_dir(data_dir), admin)
    if action == "list":
        _print_table(provisioner.list())
        return
    if device is None:
        raise ProvisioningError("a device id is needed")
    if action == "revoke":
        asyncio.run(provisioner.revoke(device))
        note = "" if admin else " (recorded; applied at the next `riverguard up`)"
        print(f"revoked the login of {device}{note}")
        return
    change = provisioner.add if action == "add" else provisioner.rotate
    login = asyncio.run(change(device))
    settings: dict[str, Any] = login.connection_settings()
    if admin is None:
        settings["note"] = "recorded; the broker takes it at the next `riverguard up`"
    print(json.dumps(settings, indent=2, ensure_ascii=False))


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'device':<24} {'site':<20} {'type':<8} {'login':<30} state")
    for row in rows:
        print(
            f"{row['device']:<24} {row['site']:<20} {row['type']:<8} "
            f"{row['username']:<30} {row['state']}"
        )
