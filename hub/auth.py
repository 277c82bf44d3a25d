"""Users, sessions and bearer tokens.

Users come from the site configuration's ``[[users]]``; their passwords from
the users file (JSON ``{"username": "password"}``), stored only as argon2
hashes. A login opens a session: a short-lived access token (the bearer) and a
refresh token that renews it, each good once, until the session's end; logout
ends the session. Tokens are opaque random strings; the store keeps their
sha256. A user no longer in the configuration is disabled: their sessions end
at start-up, and neither their tokens nor their password work.

Logins are throttled before any hashing (``LoginThrottle``) and at most
``login_hash_concurrency`` passwords are hashed at once; what cannot be served
is refused at once with ``LoginRefused`` (429 and Retry-After).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.errors import HubError
from hub.signed_links import LinkSigner
from hub.store import AuditEntry, Store, TokenRow, UserRow
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


@dataclass(frozen=True, slots=True)
class Session:
    """What a live access token stands for."""

    user: UserRow
    session_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Grant:
    """The tokens a login or a refresh hands out."""

    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class LoginRefused(HubError):
    """A login not even tried: throttled, or too many waiting to be hashed (``reason``)."""

    status = 429

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = reason
        self.retry_after_s = max(1, math.ceil(retry_after_s))

    @property
    def detail(self) -> str:
        if self.reason == "throttled":
            return "too many failed logins; try again later"
        return "too many logins at once; try again shortly"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after_s)}


# Keys remembered by the throttle at most; past it, the stalest go first.
_THROTTLE_KEYS_MAX = 10_000


class LoginThrottle:
    """Failed logins per username and per address, in this process's memory.

    Per user: ``free`` failures within ``window_s`` cost nothing; after them each
    attempt must wait 1, 2, 4 … seconds (up to ``max_delay_s``) after the last
    failure. Per address: ``address_limit`` failures within the window block the
    address until the oldest of them leaves the window.
    """

    def __init__(
        self,
        *,
        free: int,
        max_delay_s: float,
        address_limit: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.max_delay_s = max_delay_s
        self.address_limit = address_limit
        self.window_s = window_s
        self.clock = clock
        self._users: dict[str, deque[float]] = {}
        self._addresses: dict[str, deque[float]] = {}

    def _recent(self, table: dict[str, deque[float]], key: str, now: float) -> deque[float]:
        times = table.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del table[key]
        return times

    def wait_s(self, username: str, address: str) -> tuple[float, str]:
        """Seconds until this attempt may be tried (0: now), and which limit holds it."""
        now = self.clock()
        user = self._recent(self._users, username, now)
        user_wait = 0.0
        if len(user) >= self.free:
            delay = min(self.max_delay_s, 2.0 ** (len(user) - self.free))
            user_wait = user[-1] + delay - now
        address_times = self._recent(self._addresses, address, now)
        address_wait = 0.0
        if len(address_times) >= self.address_limit:
            address_wait = address_times[-self.address_limit] + self.window_s - now
        if address_wait >= user_wait:
            return max(0.0, address_wait), "address"
        return max(0.0, user_wait), "user"

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        for table, key in ((self._users, username), (self._addresses, address)):
            if key not in table and len(table) >= _THROTTLE_KEYS_MAX:
                stalest = sorted(table, key=lambda k: table[k][-1] if table[k] else 0.0)
                for gone in stalest[: _THROTTLE_KEYS_MAX // 2]:
                    del table[gone]
            table.setdefault(key, deque(maxlen=max(self.free + 64, self.address_limit))).append(now)

    def last_failure(self, username: str | None, address: str) -> float:
        """When the user's (or with None, the address's) latest failure was."""
        times = self._users.get(username) if username is not None else None
        if username is None:
            times = self._addresses.get(address)
        return times[-1] if times else 0.0

    def succeeded(self, username: str) -> None:
        # The address keeps its failures: a login to one's own account must not wipe
        # the record of guesses at others from the same address.
        self._users.pop(username, None)


class Auth:
    def __init__(
        self,
        store: Store,
        ttl_s: int,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], datetime] = utcnow,
        *,
        session_ttl_s: int = 12 * 3600,
        throttle: LoginThrottle | None = None,
        hash_concurrency: int = 1,
        queue_max: int = 4,
        links: LinkSigner | None = None,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.session_ttl_s = session_ttl_s
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self.throttle = throttle or LoginThrottle(
            free=5, max_delay_s=60.0, address_limit=20, window_s=900.0
        )
        self.links = links or LinkSigner(None, 60)
        self._dummy_hash: str | None = None
        # Users of the configuration; anyone else is disabled.
        self.enabled: frozenset[str] = frozenset()
        self._hashing = asyncio.Semaphore(hash_concurrency)
        self._queue_max = queue_max
        self._waiting = 0
        # Most passwords ever being hashed at once (the bound holds: tests read it).
        self.hashing_now = 0
        self.hashing_peak = 0
        # Throttled keys already audited, with the failure that throttled them.
        self._reported: dict[str, float] = {}

    async def sync_users(self, config: Config, users_file: Path | None) -> None:
        """Upsert the configuration's users; hash passwords that changed; end the
        sessions of users that are no longer configured."""
        passwords = read_users_file(users_file)
        known = {user.username for user in config.users}
        self.enabled = frozenset(known)
        for extra in sorted(set(passwords) - known):
            log.warning("users file names a user not in the configuration", username=extra)
        for user in config.users:
            password = passwords.get(user.username)
            existing = await self.store.users.get(user.username)
            password_hash = existing.password_hash if existing else None
            if password is None:
                password_hash = None
            elif password_hash is None or not await self._verify(password_hash, password):
                # argon2 is deliberately slow: keep it off the event loop.
                password_hash = await asyncio.to_thread(self.hasher.hash, password)
            await self.store.users.upsert(
                user.username, user.name, user.role, password_hash, self.clock()
            )
        removed = sorted(set(await self.store.users.usernames()) - known)
        if removed:
            now = self.clock()
            audit = [
                AuditEntry(
                    ts=now,
                    username="system",
                    action="logout",
                    target=name,
                    detail="user removed from the configuration: disabled",
                )
                for name in removed
            ]
            ended = await self.store.users.end_sessions(usernames=removed, audit=audit)
            log.warning(
                "users removed from the configuration are disabled",
                usernames=removed,
                tokens_revoked=ended,
            )

    async def _verify(self, password_hash: str, password: str) -> bool:
        try:
            # argon2 is deliberately slow: keep it off the event loop.
            return await asyncio.to_thread(self.hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _bounded_verify(self, password_hash: str | None, password: str) -> bool:
        """``_verify`` with at most ``login_hash_concurrency`` running; past the queue, refused."""
        if self._hashing.locked() and self._waiting >= self._queue_max:
            raise LoginRefused("busy", 1)
        self._waiting += 1
        try:
            await self._hashing.acquire()
        finally:
            self._waiting -= 1
        self.hashing_now += 1
        self.hashing_peak = max(self.hashing_peak, self.hashing_now)
        try:
            if password_hash is None:
                # Verify against a throwaway hash so unknown usernames take as long as
                # known ones.
                if self._dummy_hash is None:
                    self._dummy_hash = await asyncio.to_thread(
                        self.hasher.hash, secrets.token_hex(8)
                    )
                await self._verify(self._dummy_hash, password)
                return False
            return await self._verify(password_hash, password)
        finally:
            self.hashing_now -= 1
            self._hashing.release()

    async def login(self, username: str, password: str, address: str = "unknown") -> Grant | None:
        """A new session for valid credentials, else None; both are audited first.

        Raises ``LoginRefused`` (audited once per throttling) without hashing anything
        when the user or the address is throttled, or when too many logins wait.
        """
        # The username column is bounded; a long made-up name is cut, not refused.
        name = username[:63]
        wait, limit = self.throttle.wait_s(name, address)
        if wait > 0:
            await self._throttled(name, address, limit, wait)
            raise LoginRefused("throttled", wait)
        user = await self.store.users.get(name) if name == username else None
        disabled = user is not None and user.username not in self.enabled
        good = await self._bounded_verify(
            None if user is None or disabled else user.password_hash, password
        )
        if user is None or disabled or user.password_hash is None or not good:
            self.throttle.failed(name, address)
            if user is None:
                reason = "unknown user"
            elif disabled:
                reason = "user disabled (not in the configuration)"
            elif user.password_hash is None:
                reason = "no password set"
            else:
                reason = "wrong password"
            await self._failed(name, reason, address)
            return None
        self.throttle.succeeded(name)
        now = self.clock()
        session_id = secrets.token_hex(16)
        session_end = now + _seconds(self.session_ttl_s)
        grant, rows = self._grant(user.username, session_id, now, session_end)
        audit = AuditEntry(
            ts=now,
            username=user.username,
            action="login",
            target=user.username,
            after={
                "role": user.role,
                "expires_at": format_ts(now + _seconds(grant.expires_in)),
                "session_expires_at": format_ts(session_end),
                "address": address,
            },
        )
        await self.store.users.insert_tokens(rows, audit)
        log.info("login", username=user.username, address=address)
        return grant

    def _grant(
        self, username: str, session_id: str, now: datetime, session_end: datetime
    ) -> tuple[Grant, list[TokenRow]]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        access_end = min(now + _seconds(self.ttl_s), session_end)
        rows = [
            TokenRow(token_hash(access), username, "access", session_id, now, access_end),
            TokenRow(token_hash(refresh), username, "refresh", session_id, now, session_end),
        ]
        grant = Grant(
            access_token=access,
            expires_in=max(1, int((access_end - now).total_seconds())),
            refresh_token=refresh,
            refresh_expires_in=max(1, int((session_end - now).total_seconds())),
        )
        return grant, rows

    async def refresh(self, refresh_token: str) -> Grant | None:
        """New access and refresh tokens for a live refresh token, which is used up;
        the session keeps its end. None for anything else."""
        if not refresh_token or len(refresh_token) > 200:
            return None
        now = self.clock()
        old = token_hash(refresh_token)
        owner = await self.store.users.token_owner(old, "refresh", now)
        if owner is None:
            return None
        user, session_id, session_end = owner.user, owner.session_id, owner.expires_at
        if user.username not in self.enabled:
            return None
        grant, rows = self._grant(user.username, session_id, now, session_end)
        if not await self.store.users.insert_tokens(rows, replaces=old):
            return None
        return grant

    async def logout(self, session: Session) -> None:
        """End the session: its access and refresh tokens stop working at once."""
        audit = AuditEntry(
            ts=self.clock(),
            username=session.user.username,
            action="logout",
            target=session.user.username,
        )
        await self.store.users.end_sessions(session_id=session.session_id, audit=[audit])
        log.info("logout", username=session.user.username)

    async def _throttled(self, name: str, address: str, limit: str, wait: float) -> None:
        key = name if limit == "user" else f"address:{address}"
        marker = self.throttle.last_failure(name if limit == "user" else None, address)
        if self._reported.get(key) == marker:
            return
        if len(self._reported) >= _THROTTLE_KEYS_MAX:
            self._reported.clear()
        self._reported[key] = marker
        await self.store.audit.save(
            [
                AuditEntry(
                    ts=self.clock(),
                    username=name,
                    action="login_throttled",
                    target=name,
                    after={"address": address, "limit": limit, "retry_after_s": math.ceil(wait)},
                    detail=f"too many failed logins per {limit}",
                )
            ]
        )
        log.warning("login throttled", username=name, address=address, limit=limit)

    async def _failed(self, name: str, reason: str, address: str) -> None:
        await self.store.audit.save(
            [
                AuditEntry(
                    ts=self.clock(),
                    username=name,
                    action="login_failed",
                    target=name,
                    after={"address": address},
                    detail=reason,
                )
            ]
        )
        log.warning("login failed", username=name, reason=reason)

    async def session_for(self, token: str | None) -> Session | None:
        """The session of a live access token of an enabled user."""
        if not token or len(token) > 200:
            return None
        owner = await self.store.users.token_owner(token_hash(token), "access", self.clock())
        if owner is None or owner.user.username not in self.enabled:
            return None
        return Session(owner.user, owner.session_id, owner.expires_at)

    async def user_for(self, token: str | None) -> UserRow | None:
        session = await self.session_for(token)
        return session.user if session else None

    async def session_alive(self, session: Session) -> bool:
        """Still logged in (not logged out, not past its end, the user still enabled)."""
        if session.user.username not in self.enabled:
            return False
        return await self.store.users.session_alive(session.session_id, self.clock())


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
