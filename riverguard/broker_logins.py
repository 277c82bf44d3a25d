"""``riverguard broker-logins``: a deployment's broker logins and access lists.

The same rules ``riverguard up`` runs its broker with (``riverguard.broker_acl``,
docs/security.md), written for a broker that runs as a service: into one
folder, ``logins.json`` (every login's password, kept across runs: a login
keeps its password until it is removed from the file), the dynamic security
plugin's ``dynamic-security.json`` and the client id guard's
``bound-client-ids``, all 0600.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from riverguard import broker_acl
from riverguard.config import load_config
from riverguard.services import generate_password

LOGINS = "logins.json"
DYNSEC = "dynamic-security.json"
BOUND_IDS = "bound-client-ids"


@dataclass(frozen=True)
class Written:
    made: list[str]
    kept: list[str]
    directory: Path


def write(config_path: Path, directory: Path, *, devices: bool) -> Written:
    """Logins for every identity of the configuration (its devices' too with
    ``devices``), their passwords kept from an earlier run where there was one."""
    config = load_config(config_path)
    device_ids = [device.id for device in config.devices] if devices else []
    found = broker_acl.identities(config, devices=device_ids)
    logins_path = directory / LOGINS
    stored: dict[str, str] = {}
    if logins_path.exists():
        stored = json.loads(logins_path.read_text(encoding="utf-8"))
    passwords = {i.username: stored.get(i.username) or generate_password() for i in found}
    access = broker_acl.broker_access(config, passwords, devices=device_ids)
    directory.mkdir(parents=True, exist_ok=True)
    access.write(directory / DYNSEC, directory / BOUND_IDS)
    staging = logins_path.with_name(LOGINS + ".new")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(passwords, file, indent=2)
    os.replace(staging, logins_path)
    made = [name for name in passwords if name not in stored]
    kept = [name for name in passwords if name in stored]
    return Written(made, kept, directory)
