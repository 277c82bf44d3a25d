"""What a simulator needs to know of a running stack, read from its ``stack.json`` (PROTOCOL 6)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from riverguard.mqtt import BrokerSettings
from simulators.errors import SimulatorError

DEFAULT_STACK_JSON = Path(".riverguard") / "stack.json"
STACK_JSON = "stack.json"
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
    data_dir: str | None = None

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


def locate(given: Path | None, here: Path | None = None) -> Path:
    """The ``stack.json`` a simulator talks to.

    ``given`` is a ``stack.json`` or the data directory of ``riverguard up
    --data-dir DIR``. Without it: the one stack running under ``here`` (the
    current directory), looked for in ``.riverguard/`` and in each directory
    right below ``here``; a stack runs while one of the processes its
    ``stack.json`` lists is alive. ``SimulatorError`` when there is none or
    more than one to choose from.
    """
    if given is not None:
        return given / STACK_JSON if given.is_dir() else given
    here = here or Path.cwd()
    candidates = {*here.glob(f"*/{STACK_JSON}"), here / DEFAULT_STACK_JSON}
    found = sorted(path for path in candidates if path.is_file())
    running = [path for path in found if _running(path)]
    if len(running) == 1:
        return running[0]
    if len(running) > 1:
        listed = ", ".join(str(path) for path in running)
        raise SimulatorError(f"several stacks are running here ({listed}): choose one with --stack")
    if len(found) == 1:
        return found[0]  # stopped: connecting to it says so
    if found:
        listed = ", ".join(str(path) for path in found)
        raise SimulatorError(f"no stack is running here; stopped ones: {listed}")
    raise SimulatorError(
        f"no {DEFAULT_STACK_JSON} here: start a stack (scripts/run), "
        "or say which with --stack DIR/stack.json"
    )


def _running(stack_json: Path) -> bool:
    """Whether a process that ``stack_json`` lists is still alive."""
    try:
        processes = json.loads(stack_json.read_text(encoding="utf-8")).get("processes", {})
    except (OSError, ValueError, AttributeError):
        return False
    if not isinstance(processes, dict):
        return False
    return any(_alive(pid) for pid in processes.values() if isinstance(pid, int) and pid > 0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    # A zombie (exited, not yet reaped by its parent) answers kill(0) too.
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return False
    return "\nState:\tZ" not in status
