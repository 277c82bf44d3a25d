"""Users and bearer tokens.

Users come from the site configuration's ``[[users]]``; their passwords from
the users file (JSON ``{"username": "password"}``), stored only as argon2
hashes. Tokens are opaque random strings; the store keeps their sha256.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.errors import HubError
from hub.store import AuditEntry, Store, UserRow
from riverguard.config import Config
from riverguard.wire.times import format_ts, utcnow

log = structlog.get_logger()

# Roles in order of what they may do: each may do everything of the ones before it.
# viewer: read; officer: ack, resolve, announce; supervisor: audit log; admin: users.
ROLE_RANK = {"viewer": 0, "officer": 1, "supervisor": 2, "admin": 3}
# Roles that may act (ack, resolve, announce); viewers only read.
ACTING_ROLES = frozenset(role for role, rank in ROLE_RANK.items() if rank >= 1)


def has_role(role: str, needed: str) -> bool:
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[needed]


class UsersFileError(HubError):
    """The users file is unreadable or not a JSON object of strings."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_users_file(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsersFileError(f"cannot read users file {path}: {exc}") from exc
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise UsersFileError(f"users file {path} must be a JSON object of username: password")
    return raw


class Auth:
    def __init__(
        self,
        store: Store,
        ttl_s: int,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    async def sync_users(self, config: Config, users_file: Path | None) -> None:
        """Upsert the configuration's users; hash passwords that changed."""
        passwords = read_users_file(users_file)
        known = {user.username for user in config.users}
        for extra in sorted(set(passwords) - known):
            log.warning("users file names a user not in the configuration", username=extra)
        for user in config.users:
            password = passwords.get(user.username)
            existing = await self.store.get_user(user.username)
            password_hash = existing.password_hash if existing else None
            if password is None:
                password_hash = None
            elif password_hash is None or not await self._verify(password_hash, password):
                # argon2 is deliberately slow: keep it off the event loop.
                password_hash = await asyncio.to_thread(self.hasher.hash, password)
            await self.store.upsert_user(
                user.username, user.name, user.role, password_hash, self.clock()
            )

    async def _verify(self, password_hash: str, password: str) -> bool:
        try:
            # argon2 is deliberately slow: keep it off the event loop.
            return await asyncio.to_thread(self.hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def login(self, username: str, password: str) -> str | None:
        """A new token for valid credentials, else None; both are audited first."""
        user = await self.store.get_user(username)
        if user is None or user.password_hash is None:
            # Verify against a throwaway hash so unknown usernames take as long as known ones.
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(self.hasher.hash, secrets.token_hex(8))
            await self._verify(self._dummy_hash, password)
            await self._failed(username, "unknown user" if user is None else "no password set")
            return None
        if not await self._verify(user.password_hash, password):
            await self._failed(username, "wrong password")
            return None
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + timedelta(seconds=self.ttl_s)
        audit = AuditEntry(
            ts=now,
            username=username,
            action="login",
            target=username,
            after={"role": user.role, "expires_at": format_ts(expires)},
        )
        await self.store.insert_token(token_hash(token), username, now, expires, audit)
        log.info("login", username=username)
        return token

    async def _failed(self, username: str, reason: str) -> None:
        # The username column is bounded; a long made-up name is cut, not refused.
        name = username[:63]
        await self.store.audit(
            [
                AuditEntry(
                    ts=self.clock(),
                    username=name,
                    action="login_failed",
                    target=name,
                    detail=reason,
                )
            ]
        )
        log.warning("login failed", username=name, reason=reason)

    async def user_for(self, token: str | None) -> UserRow | None:
        if not token or len(token) > 200:
            return None
        return await self.store.user_for_token(token_hash(token), self.clock())
