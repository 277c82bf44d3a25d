"""Device logins on the broker (admin only): list, add, rotate, revoke.

Each change reaches the broker at once on its dynamic security control topic
(riverguard/provisioning.py); revoking disconnects a connected device. Add and
rotate answer the device's connection settings, password included, once: the
hub keeps no copy it would show again. Every change is audited
(``device_login``, detail ``add``, ``rotate`` or ``revoke``; never the password).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from hub.clock import Clock
from hub.deps import AdminUser, ClockDep, ConfigDep, SettingsDep, StoreDep
from hub.errors import ApiError
from hub.schemas import ErrorOut
from hub.settings import HubSettings
from hub.store import AuditEntry, Store
from riverguard.config import Config
from riverguard.provisioning import (
    BrokerControlError,
    DeviceLoginStore,
    Provisioner,
    ProvisioningError,
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 502, 503)
}

T = TypeVar("T")

router = APIRouter(prefix="/api/device-logins", responses=_ERRORS, tags=["device logins"])


class DeviceLoginOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str
    site: str
    type: str
    username: str
    state: str  # active | revoked | none


class ConnectionSettingsOut(BaseModel):
    """What a device needs to connect; ``password`` is shown this once."""

    model_config = ConfigDict(extra="forbid")

    device: str
    site: str
    type: str
    host: str
    port: int
    protocol: str
    username: str
    password: str
    client_id: str | None
    publish: list[str]
    subscribe: list[str]


def _provisioner(settings: HubSettings, config: Config) -> Provisioner:
    if settings.device_logins_file is None or settings.broker_admin is None:
        raise ApiError(503, "not_configured", "device login provisioning is not configured")
    return Provisioner(
        config,
        DeviceLoginStore(settings.device_logins_file),
        settings.broker_admin,
        public_host=settings.broker_public_host,
    )


def _refused(exc: ProvisioningError) -> ApiError:
    if isinstance(exc, BrokerControlError):
        return ApiError(502, "broker_refused", str(exc))
    return ApiError(409, "conflict", str(exc))


@dataclass(frozen=True, slots=True)
class _LoginChanges:
    """What each change of a device's login takes: the device known, the broker told,
    the change audited."""

    settings: HubSettings
    config: Config
    store: Store
    clock: Clock
    username: str

    async def make(
        self, device: str, detail: str, change: Callable[[Provisioner, str], Awaitable[T]]
    ) -> T:
        if device not in self.config.device_by_id:
            raise ApiError(404, "not_found", f"no device {device!r} in the configuration")
        try:
            done = await change(_provisioner(self.settings, self.config), device)
        except ProvisioningError as exc:
            raise _refused(exc) from None
        item = self.config.device_by_id[device]
        entry = AuditEntry(
            ts=self.clock.now(),
            username=self.username,
            action="device_login",
            target=device,
            after={"device": device, "site": item.site, "type": item.type},
            detail=detail,
        )
        await self.store.audit.save([entry])
        return done


async def _login_changes(
    settings: SettingsDep, config: ConfigDep, store: StoreDep, clock: ClockDep, user: AdminUser
) -> _LoginChanges:
    return _LoginChanges(settings, config, store, clock, user.username)


LoginChanges = Annotated[_LoginChanges, Depends(_login_changes)]


@router.get("")
async def list_device_logins(
    settings: SettingsDep, config: ConfigDep, _: AdminUser
) -> list[DeviceLoginOut]:
    try:
        return [DeviceLoginOut(**row) for row in _provisioner(settings, config).list()]
    except ProvisioningError as exc:
        raise _refused(exc) from None


@router.post("/{device}")
async def add_device_login(changes: LoginChanges, device: str) -> ConnectionSettingsOut:
    """A login for a device that has none (never had one, or was revoked)."""
    login = await changes.make(device, "add", Provisioner.add)
    return ConnectionSettingsOut(**login.connection_settings())


@router.post("/{device}/rotate")
async def rotate_device_login(changes: LoginChanges, device: str) -> ConnectionSettingsOut:
    """A new password; the old one stops working and its connection is closed."""
    login = await changes.make(device, "rotate", Provisioner.rotate)
    return ConnectionSettingsOut(**login.connection_settings())


@router.delete("/{device}", status_code=204)
async def revoke_device_login(changes: LoginChanges, device: str) -> None:
    """The login is deleted and a connected device disconnected at once."""
    await changes.make(device, "revoke", Provisioner.revoke)
