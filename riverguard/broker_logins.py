"""``riverguard broker-logins``: a deployment's broker logins and access lists.

The same rules ``riverguard up`` runs its broker with (``riverguard.broker_acl``,
docs/security.md), written for a broker that runs as a service: into one
folder, ``logins.json`` (every login's password but the devices', kept across
runs: a login keeps its password until it is removed from the file),
``device-logins.json`` (the devices' passwords, and the devices revoked, in the
store ``riverguard devices`` changes: ``riverguard.provisioning``), the dynamic
security plugin's ``dynamic-security.json`` and the client id guard's
``bound-client-ids``, all 0600. A revoked device stays without a login until
``riverguard devices add`` gives it one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from riverguard import broker_acl
from riverguard.config import load_config
from riverguard.credentials import generate_password
from riverguard.provisioning import STORE_NAME, DeviceLoginStore

LOGINS = "logins.json"
DYNSEC = "dynamic-security.json"
BOUND_IDS = "bound-client-ids"
DEVICE_LOGINS = STORE_NAME


@dataclass(frozen=True)
class Written:
    made: list[str]
    kept: list[str]
    directory: Path


def write(config_path: Path, directory: Path, *, devices: bool) -> Written:
    """Logins for every identity of the configuration, their passwords kept from an
    earlier run where there was one. Devices: every active login of the device store,
    and with ``devices`` one for each configured device that never had one."""
    config = load_config(config_path)
    logins_path = directory / LOGINS
    stored: dict[str, str] = {}
    if logins_path.exists():
        stored = json.loads(logins_path.read_text(encoding="utf-8"))
    store = DeviceLoginStore(directory / DEVICE_LOGINS)
    directory.mkdir(parents=True, exist_ok=True)
    with store.locked():
        device_logins = store.read()
        made_devices: list[str] = []
        for device in config.devices:
            if device_logins.state(device.id) != "none":
                continue
            # A device password of logins.json (written before the device store) moves over.
            earlier = stored.get(broker_acl.device_username(device.id))
            if earlier or devices:
                device_logins.devices[device.id] = earlier or generate_password()
                if not earlier:
                    made_devices.append(broker_acl.device_username(device.id))
        device_ids = [d.id for d in config.devices if d.id in device_logins.devices]
        found = broker_acl.identities(config, devices=device_ids)
        device_names = {broker_acl.device_username(d): d for d in device_ids}
        passwords = {
            i.username: device_logins.devices[device_names[i.username]]
            if i.username in device_names
            else stored.get(i.username) or generate_password()
            for i in found
        }
        access = broker_acl.broker_access(config, passwords, devices=device_ids)
        access.write(directory / DYNSEC, directory / BOUND_IDS)
        store.write(device_logins)
    others = {name: password for name, password in passwords.items() if name not in device_names}
    staging = logins_path.with_name(LOGINS + ".new")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(others, file, indent=2)
    os.replace(staging, logins_path)
    made = [name for name in others if name not in stored] + made_devices
    kept = [name for name in passwords if name not in made]
    return Written(made, kept, directory)
