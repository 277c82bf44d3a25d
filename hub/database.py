"""The state store's database URL as the engine takes it: a password and TLS for PostgreSQL.

Operators write PostgreSQL URLs the libpq way (``?sslmode=verify-full&sslrootcert=...``);
asyncpg under SQLAlchemy takes neither parameter (it would fail on
``sslmode``), so they become the ``ssl`` argument here, once, where the
engine is made. A password from the settings goes into the URL object, never
into a string that could be logged.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

# libpq's sslmode values; "allow" and "prefer" may fall back to plain text.
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
ENCRYPTED = ("require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class EngineURL:
    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)


def engine_url(url: str, *, password: str | None = None, ca_file: Path | None = None) -> EngineURL:
    """``url`` with ``password`` (when it has none) and, for PostgreSQL, its sslmode
    and sslrootcert (or ``ca_file``) as an SSL context."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return EngineURL(parsed)
    if password is not None and parsed.password is None:
        parsed = parsed.set(password=password)
    query = dict(parsed.query)
    if "sslmode" not in query:
        # asyncpg's own default (prefer), as before these settings existed.
        return EngineURL(parsed)
    sslmode = str(query.pop("sslmode"))
    rootcert = query.pop("sslrootcert", None)
    parsed = parsed.set(query=query)
    if sslmode not in SSLMODES:
        raise ValueError(f"sslmode {sslmode!r} is not one of {', '.join(SSLMODES)}")
    cafile = Path(str(rootcert)) if rootcert is not None else ca_file
    return EngineURL(parsed, {"ssl": _ssl(sslmode, cafile)})


def _ssl(sslmode: str, cafile: Path | None) -> ssl.SSLContext | str | bool:
    if sslmode == "disable":
        return False
    if sslmode in ("allow", "prefer"):
        return sslmode
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if sslmode == "require":
        # libpq's require: encrypted, the server's certificate not checked.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif sslmode == "verify-ca":
        context.check_hostname = False
    return context
