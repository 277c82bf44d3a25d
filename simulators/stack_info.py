"""What a simulator needs to know of a running stack, read from its ``stack.json`` (PROTOCOL 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from riverguard.mqtt import BrokerSettings
from simulators.errors import SimulatorError

DEFAULT_STACK_JSON = Path(".riverguard") / "stack.json"
# Roles that may announce, acknowledge and resolve, most fitting first.
ACTING_ROLES = ("officer", "supervisor", "admin")


class Login(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    username: str
    password: str
    role: str = "admin"


class StackInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    hub_url: str
    broker: BrokerSettings
    logins: dict[str, Login] = {}
    admin: Login | None = None

    @field_validator("broker", mode="before")
    @classmethod
    def _plain_listener(cls, value: Any) -> Any:
        """``host`` and ``port`` are the plain listener; the TLS one (``tls_port``,
        ``ca_file``, PROTOCOL 6) is not what simulators on the stack's machine use."""
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k not in ("tls_port", "ca_file")}
        return value

    @classmethod
    def load(cls, path: Path) -> StackInfo:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SimulatorError(
                f"cannot read {path}: {exc.strerror} (is the stack up? `riverguard up` writes it)"
            ) from exc
        except ValueError as exc:
            raise SimulatorError(f"{path} is not JSON: {exc}") from exc
        return cls.parse(raw, str(path))

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str = "stack info") -> StackInfo:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise SimulatorError(f"{where}: not a stack description: {exc}") from exc

    def acting_login(self) -> Login:
        """The login that announces, acknowledges and resolves: an officer if there is one."""
        for role in ACTING_ROLES:
            for login in self.logins.values():
                if login.role == role:
                    return login
        if self.admin is not None:
            return self.admin
        raise SimulatorError("the stack lists no login that may act on alarms")
