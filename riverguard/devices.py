"""``riverguard devices``: list, add, rotate and revoke device logins of a stack.

Works on the data directory of ``riverguard up`` (its ``secrets.json`` holds the
broker's administration login, ``stack.json`` the broker's port). A change
reaches the running broker at once; with ``--offline`` (the stack stopped) it
is only recorded, and ``riverguard up`` applies it at its next start.

A deployment's broker instead (``--broker-logins DIR --broker HOST:PORT``): the
folder ``riverguard broker-logins`` writes, whose ``logins.json`` holds the
``broker-admin`` password and whose ``device-logins.json`` is the device store
both commands change; over TLS with ``--ca-file`` (and the client certificate
the broker's TLS listener asks for: ``--cert``, ``--key``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from riverguard import broker_acl, broker_logins
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


@dataclass(frozen=True)
class Deployment:
    """A deployment's broker: its ``riverguard broker-logins`` folder and address."""

    logins_dir: Path
    broker: str | None = None
    ca_file: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    def store(self) -> DeviceLoginStore:
        return DeviceLoginStore(self.logins_dir / broker_logins.DEVICE_LOGINS)

    def admin(self) -> BrokerSettings:
        if self.broker is None:
            raise ProvisioningError("--broker HOST:PORT is needed (or --offline)")
        host, _, port = self.broker.rpartition(":")
        if not host or not port.isdigit():
            raise ProvisioningError(f"--broker {self.broker!r} is not HOST:PORT")
        path = self.logins_dir / broker_logins.LOGINS
        try:
            password = json.loads(path.read_text(encoding="utf-8"))[broker_acl.ADMIN]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ProvisioningError(f"no {broker_acl.ADMIN} login in {path} ({exc})") from None
        try:
            return BrokerSettings(
                host=host.strip("[]"),
                port=int(port),
                username=broker_acl.ADMIN,
                password=SecretStr(password),
                tls=self.ca_file is not None or self.certfile is not None,
                ca_file=self.ca_file,
                certfile=self.certfile,
                keyfile=self.keyfile,
            )
        except ValidationError as exc:  # plain text to a broker off this machine
            raise ProvisioningError("; ".join(e["msg"] for e in exc.errors())) from None


def run(
    action: str,
    device: str | None,
    data_dir: Path,
    config: Path,
    offline: bool,
    *,
    deployment: Deployment | None = None,
) -> int:
    """The command's exit code: 0 done, 1 refused (the reason on stderr)."""
    try:
        _run(action, device, data_dir, config, offline, deployment=deployment)
    except (ProvisioningError, ConfigError) as exc:
        print(f"riverguard devices {action}: {exc}", file=sys.stderr)
        return 1
    return 0


def _run(
    action: str,
    device: str | None,
    data_dir: Path,
    config: Path,
    offline: bool,
    *,
    deployment: Deployment | None,
) -> None:
    loaded = load_config(config)
    admin: BrokerSettings | None = None
    if deployment is not None:
        store = deployment.store()
        if not offline and action != "list":
            admin = deployment.admin()
    else:
        store = DeviceLoginStore.in_data_dir(data_dir)
        if not offline and action != "list":
            admin = _admin(data_dir)
    provisioner = Provisioner(loaded, store, admin)
    later = (
        "the broker takes it when `riverguard broker-logins` writes its files again"
        if deployment is not None
        else "the broker takes it at the next `riverguard up`"
    )
    if action == "list":
        _print_table(provisioner.list())
        return
    if device is None:
        raise ProvisioningError("a device id is needed")
    if action == "revoke":
        asyncio.run(provisioner.revoke(device))
        note = "" if admin else f" (recorded; {later})"
        print(f"revoked the login of {device}{note}")
        return
    change = provisioner.add if action == "add" else provisioner.rotate
    login = asyncio.run(change(device))
    settings: dict[str, Any] = login.connection_settings()
    if admin is None:
        settings["note"] = f"recorded; {later}"
    print(json.dumps(settings, indent=2, ensure_ascii=False))


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'device':<24} {'site':<20} {'type':<8} {'login':<30} state")
    for row in rows:
        print(
            f"{row['device']:<24} {row['site']:<20} {row['type']:<8} "
            f"{row['username']:<30} {row['state']}"
        )
