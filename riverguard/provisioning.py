"""Device logins: add, rotate and revoke a device's broker credentials.

The broker learns of a change at once on the dynamic security plugin's control
topic (``$CONTROL/dynamic-security/v1``, with the ``broker-admin`` login);
revoking deletes the device's login, which disconnects it at once. The logins
are kept in ``device-logins.json`` of the data directory (0600), from which
``riverguard up`` builds the broker's logins at its next start, and
``stack.json`` beside it lists them as ``device_logins``. The command line
(``riverguard devices``) and the hub's admin API both come here.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from riverguard.broker_acl import (
    CONTROL_TOPIC,
    Identity,
    create_client_command,
    device_identity,
    device_username,
    role_json,
)
from riverguard.config import Config, Device
from riverguard.credentials import generate_password, write_private
from riverguard.errors import RiverguardError
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.mqtt_client import MqttError, Subscription

STORE_NAME = "device-logins.json"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
CONTROL_TIMEOUT_S = 10.0

LoginState = Literal["active", "revoked", "none"]


class ProvisioningError(RiverguardError):
    """The device is unknown, or the change does not apply to its login's state."""


class BrokerControlError(ProvisioningError):
    """The broker's control topic could not be reached, or the broker refused the change."""


@dataclass
class StoredLogins:
    """``devices``: device id -> password; ``revoked``: devices that must have none."""

    devices: dict[str, str] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)

    def state(self, device: str) -> LoginState:
        if device in self.devices:
            return "active"
        return "revoked" if device in self.revoked else "none"


class DeviceLoginStore:
    """``device-logins.json``: written whole (rename), under a lock, mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> DeviceLoginStore:
        return cls(data_dir / STORE_NAME)

    def read(self) -> StoredLogins:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return StoredLogins()
        except (OSError, ValueError) as exc:
            raise ProvisioningError(f"{self.path} is unreadable: {exc}") from exc
        devices = raw.get("devices") if isinstance(raw, dict) else None
        revoked = raw.get("revoked") if isinstance(raw, dict) else None
        if not isinstance(devices, dict) or not isinstance(revoked, list):
            raise ProvisioningError(f"{self.path} is not a device login store")
        return StoredLogins(
            devices={str(k): str(v) for k, v in devices.items()}, revoked=set(map(str, revoked))
        )

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @asynccontextmanager
    async def locked_async(self) -> AsyncIterator[None]:
        """``locked`` for a coroutine: the wait for the lock happens in a thread, so a
        second change in the same process (the hub's API) waits without blocking the
        event loop the first one needs to finish."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a") as lock:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write(self, logins: StoredLogins) -> None:
        """Replace the store (the caller holds ``locked``), and ``stack.json``'s list."""
        body = {"devices": dict(sorted(logins.devices.items())), "revoked": sorted(logins.revoked)}
        write_private(self.path, json.dumps(body, indent=2))
        stack_json = self.path.with_name("stack.json")
        if stack_json.exists():
            info = json.loads(stack_json.read_text(encoding="utf-8"))
            info["device_logins"] = device_logins_json(logins)
            write_private(stack_json, json.dumps(info, indent=2, ensure_ascii=False))

    def ensure(self, config: Config) -> StoredLogins:
        """Every configured device gets a login unless it was revoked."""
        with self.locked():
            logins = self.read()
            missing = [d.id for d in config.devices if logins.state(d.id) == "none"]
            for device in missing:
                logins.devices[device] = generate_password()
            if missing or not self.path.exists():
                self.write(logins)
            return logins


def device_logins_json(logins: StoredLogins) -> dict[str, dict[str, str]]:
    """``stack.json``'s ``device_logins`` (docs/protocol.md 6)."""
    return {
        device: {"username": device_username(device), "password": password}
        for device, password in sorted(logins.devices.items())
    }


@dataclass(frozen=True)
class DeviceLogin:
    """What a device needs to connect, as printed and answered by the API."""

    device: Device
    identity: Identity
    password: str
    host: str
    port: int

    def connection_settings(self) -> dict[str, Any]:
        return {
            "device": self.device.id,
            "site": self.device.site,
            "type": self.device.type,
            "host": self.host,
            "port": self.port,
            "protocol": "MQTT 5 (3.1.1 accepted)",
            "username": self.identity.username,
            "password": self.password,
            "client_id": self.identity.client_id,
            "publish": list(self.identity.publish),
            "subscribe": list(self.identity.read),
        }


class BrokerControl:
    """A connection of the ``broker-admin`` login to the plugin's control topic."""

    def __init__(self, admin: BrokerSettings) -> None:
        self.client = make_client(admin)

    async def __aenter__(self) -> BrokerControl:
        try:
            await self.client.__aenter__()
            await self.client.subscribe([Subscription(RESPONSE_TOPIC, qos=1)])
        except (MqttError, OSError) as exc:
            raise BrokerControlError(f"cannot reach the broker's control topic: {exc}") from exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.__aexit__(None, None, None)

    async def run(self, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        """Send ``commands`` in one message; their responses, in order."""
        tag = secrets.token_hex(8)
        sent = [{**c, "correlationData": f"{tag}-{n}"} for n, c in enumerate(commands)]
        try:
            await self.client.publish(CONTROL_TOPIC, json.dumps({"commands": sent}), qos=1)
            async with asyncio.timeout(CONTROL_TIMEOUT_S):
                while True:
                    for message in await self.client.next_batch(100):
                        responses = _responses(message.payload)
                        ours = [
                            r
                            for r in responses
                            if str(r.get("correlationData", "")).startswith(tag)
                        ]
                        if ours:
                            return ours
        except TimeoutError:
            raise BrokerControlError("the broker did not answer on its control topic") from None
        except MqttError as exc:
            raise BrokerControlError(f"the broker's control topic failed: {exc}") from exc


def _responses(payload: bytes) -> list[dict[str, Any]]:
    try:
        body = json.loads(payload)
    except ValueError:
        return []
    found = body.get("responses") if isinstance(body, dict) else None
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def _raise_errors(responses: list[dict[str, Any]], tolerated: Callable[[str], bool]) -> None:
    for response in responses:
        error = response.get("error")
        if error and not tolerated(str(error)):
            raise BrokerControlError(f"the broker refused {response.get('command')}: {error}")


class Provisioner:
    """Add, rotate and revoke device logins of one deployment."""

    def __init__(
        self,
        config: Config,
        store: DeviceLoginStore,
        admin: BrokerSettings | None,
        *,
        public_host: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.admin = admin
        self.public_host = public_host

    def _device(self, device_id: str) -> Device:
        device = self.config.device_by_id.get(device_id)
        if device is None:
            raise ProvisioningError(f"no device {device_id!r} in the configuration")
        return device

    def _login(self, device: Device, password: str) -> DeviceLogin:
        host = self.public_host or (self.admin.host if self.admin else "127.0.0.1")
        port = self.admin.port if self.admin else 1883
        return DeviceLogin(device, device_identity(device), password, host, port)

    def list(self) -> list[dict[str, Any]]:
        logins = self.store.read()
        return [
            {
                "device": d.id,
                "site": d.site,
                "type": d.type,
                "username": device_username(d.id),
                "state": logins.state(d.id),
            }
            for d in self.config.devices
        ]

    async def add(self, device_id: str) -> DeviceLogin:
        """A login for a device that has none (never had, or was revoked)."""
        device = self._device(device_id)
        async with self.store.locked_async():
            logins = self.store.read()
            if logins.state(device.id) == "active":
                raise ProvisioningError(f"device {device.id} has a login already: rotate it")
            password = generate_password()
            await self._create(device, password)
            logins.devices[device.id] = password
            logins.revoked.discard(device.id)
            self.store.write(logins)
        return self._login(device, password)

    async def rotate(self, device_id: str) -> DeviceLogin:
        """A new password; the old one stops working and its connection is closed."""
        device = self._device(device_id)
        async with self.store.locked_async():
            logins = self.store.read()
            if logins.state(device.id) != "active":
                raise ProvisioningError(f"device {device.id} has no login: add one")
            password = generate_password()
            username = device_username(device.id)
            if self.admin is not None:
                async with BrokerControl(self.admin) as control:
                    responses = await control.run(
                        {
                            "command": "setClientPassword",
                            "username": username,
                            "password": password,
                        },
                        # Disabling closes the connection made with the old password.
                        {"command": "disableClient", "username": username},
                        {"command": "enableClient", "username": username},
                    )
                _raise_errors(responses, lambda error: False)
            logins.devices[device.id] = password
            self.store.write(logins)
        return self._login(device, password)

    async def revoke(self, device_id: str) -> None:
        """No login any more; a connected device is disconnected at once."""
        device = self._device(device_id)
        async with self.store.locked_async():
            logins = self.store.read()
            if logins.state(device.id) != "active":
                raise ProvisioningError(f"device {device.id} has no login to revoke")
            if self.admin is not None:
                username = device_username(device.id)
                async with BrokerControl(self.admin) as control:
                    responses = await control.run(
                        {"command": "deleteClient", "username": username},
                        {"command": "deleteRole", "rolename": username},
                    )
                _raise_errors(responses, lambda error: "not found" in error.lower())
            del logins.devices[device.id]
            logins.revoked.add(device.id)
            self.store.write(logins)

    async def _create(self, device: Device, password: str) -> None:
        if self.admin is None:
            return
        identity = device_identity(device)
        async with BrokerControl(self.admin) as control:
            responses = await control.run(
                {"command": "createRole", **role_json(identity)},
                create_client_command(identity, password),
            )
        # The role may be left from an earlier login of the device; the client may not.
        _raise_errors(responses[:1], lambda error: "already exists" in error.lower())
        _raise_errors(responses[1:], lambda error: False)
