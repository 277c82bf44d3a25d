"""Identifiers the hub makes: sortable, ULID-like (time first, then randomness)."""

from __future__ import annotations

import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now_ms: int | None = None) -> str:
    """26 Crockford base32 characters: 48 bits of Unix ms, 80 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def alarm_id() -> str:
    return f"alm-{ulid()}"


def announcement_id() -> str:
    return f"ann-{ulid()}"
