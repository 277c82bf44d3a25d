"""``riverguard broker-files``: a deployment's broker logins and access lists, as files.

Writes into one directory what a production Mosquitto loads in place of what
``riverguard up`` generates for its own (see ``mosquitto.conf``):
``dynamic-security.json`` (the logins, hashed, and their access lists, for
``plugin_opt_config_file``), ``bound-client-ids`` (for the client id guard's
``plugin_opt_bound_ids``) and ``clientid_guard.so`` (the guard, built for this
machine). The passwords stay in ``secrets.json`` (the hub's, edges', NVRs',
``sim``, ``observer``, ``broker-admin``) and ``device-logins.json`` (0600),
kept across runs, so that running it again after a configuration change keeps
every existing login and adds the new ones; ``riverguard devices --offline
--data-dir DIR`` changes device logins there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from riverguard import broker_acl, clientid_guard
from riverguard.config import ConfigError, load_config
from riverguard.provisioning import DeviceLoginStore
from riverguard.stack import Secrets

DYNSEC_FILE = "dynamic-security.json"
BOUND_IDS_FILE = "bound-client-ids"
GUARD_FILE = "clientid_guard.so"


def write_broker_files(config_path: Path, out: Path) -> broker_acl.BrokerAccess:
    config = load_config(config_path)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)
    secrets = Secrets.load_or_create(out / "secrets.json", config)
    devices = DeviceLoginStore.in_data_dir(out).ensure(config)
    passwords = {
        **secrets.broker,
        **{broker_acl.device_username(d): p for d, p in devices.devices.items()},
    }
    access = broker_acl.broker_access(
        config,
        passwords,
        devices=[d for d in devices.devices if d in config.device_by_id],
    )
    access.write(out / DYNSEC_FILE, out / BOUND_IDS_FILE)
    shutil.copyfile(clientid_guard.plugin_path(), out / GUARD_FILE)
    return access


def run(config_path: Path, out: Path) -> int:
    try:
        access = write_broker_files(config_path, out)
    except (ConfigError, clientid_guard.GuardBuildError, OSError) as exc:
        print(f"riverguard broker-files: {exc}")
        return 1
    kinds: dict[str, int] = {}
    for identity in access.identities:
        kinds[identity.kind] = kinds.get(identity.kind, 0) + 1
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    print(f"{len(access.identities)} broker logins ({summary}) in {out}:")
    for name in (DYNSEC_FILE, BOUND_IDS_FILE, GUARD_FILE, "secrets.json", "device-logins.json"):
        print(f"  {out / name}")
    return 0
