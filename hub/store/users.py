"""Users and their tokens: a login is a session of access and refresh tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, or_, select, update

from hub import tables
from hub.store.audit import insert_audit
from hub.store.db import Database
from hub.store.rows import AuditEntry, TokenOwner, TokenRow, UserRow


class Users:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def upsert(
        self, username: str, name: str, role: str, password_hash: str | None, now: datetime
    ) -> None:
        values = {"name": name, "role": role, "password_hash": password_hash, "updated_at": now}
        async with self._database.write() as conn:
            result = await conn.execute(
                update(tables.users).where(tables.users.c.username == username).values(**values)
            )
            if result.rowcount == 0:
                await conn.execute(insert(tables.users).values(username=username, **values))

    async def get(self, username: str) -> UserRow | None:
        async with self._database.read() as conn:
            result = await conn.execute(
                select(tables.users).where(tables.users.c.username == username)
            )
            row = result.one_or_none()
        return UserRow(row.username, row.name, row.role, row.password_hash) if row else None

    async def usernames(self) -> list[str]:
        async with self._database.read() as conn:
            result = await conn.execute(select(tables.users.c.username))
            return [row.username for row in result]

    async def insert_tokens(
        self,
        tokens: Sequence[TokenRow],
        audit: AuditEntry | None = None,
        *,
        replaces: str | None = None,
    ) -> bool:
        """Store ``tokens``; with ``replaces`` (a refresh token's hash), only if that token
        still exists, which is then removed with its session's access tokens, all in one
        transaction: a refresh token is good once. False when it was already used."""
        now = min(token.created_at for token in tokens)
        async with self._database.write() as conn:
            t = tables.tokens
            if replaces is not None:
                gone = await conn.execute(
                    delete(t).where(t.c.token_hash == replaces, t.c.kind == "refresh")
                )
                if gone.rowcount != 1:
                    return False
                sessions = {token.session_id for token in tokens}
                await conn.execute(
                    delete(t).where(t.c.session_id.in_(sessions), t.c.kind == "access")
                )
            if audit is not None:
                await conn.run_sync(insert_audit, [audit])
            await conn.execute(delete(t).where(t.c.expires_at < now))
            await conn.execute(
                insert(t),
                [
                    {
                        "token_hash": token.token_hash,
                        "username": token.username,
                        "created_at": token.created_at,
                        "expires_at": token.expires_at,
                        "kind": token.kind,
                        "session_id": token.session_id,
                    }
                    for token in tokens
                ],
            )
        return True

    async def token_owner(self, token_hash: str, kind: str, now: datetime) -> TokenOwner | None:
        """The user, session and expiry of a live token of that kind."""
        t = tables.tokens
        query = (
            select(tables.users, t.c.session_id, t.c.expires_at)
            .join(t, t.c.username == tables.users.c.username)
            .where(t.c.token_hash == token_hash, t.c.kind == kind, t.c.expires_at > now)
        )
        async with self._database.read() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        user = UserRow(row.username, row.name, row.role, row.password_hash)
        return TokenOwner(user, row.session_id, row.expires_at)

    async def session_alive(self, session_id: str, now: datetime) -> bool:
        """Whether the session still has a live token (its refresh token, at least)."""
        t = tables.tokens
        query = select(t.c.token_hash).where(t.c.session_id == session_id, t.c.expires_at > now)
        async with self._database.read() as conn:
            return (await conn.execute(query.limit(1))).first() is not None

    async def end_sessions(
        self,
        *,
        session_id: str | None = None,
        usernames: Sequence[str] = (),
        audit: Sequence[AuditEntry] = (),
    ) -> int:
        """Remove every token of a session, or of these users; the number removed."""
        t = tables.tokens
        where = []
        if session_id is not None:
            where.append(t.c.session_id == session_id)
        if usernames:
            where.append(t.c.username.in_(list(usernames)))
        if not where:
            return 0
        async with self._database.write() as conn:
            if audit:
                await conn.run_sync(insert_audit, list(audit))
            result = await conn.execute(delete(t).where(or_(*where)))
        return int(result.rowcount or 0)
