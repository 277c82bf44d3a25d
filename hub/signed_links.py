"""Signed links: URLs a browser loads by itself (a download, a printable page, a
picture in it), which cannot carry the bearer header.

A link names the user and an expiry and carries an HMAC-SHA256 of both with the
path; it is good for that one path (any query besides), for that user while
they are enabled, until it expires. The bearer token never goes into a URL.

A link handed to the console (``POST /api/links``: an export) is also good
once: it carries a nonce, and a used nonce is remembered until its link
expires, so a link copied out of a download history or a proxy log is dead.
Links inside a printable page (its snapshots) stay good until they expire: the
browser loads them again when the page is printed or reloaded. A hub restart
forgets the used nonces; the links' short life bounds what that re-opens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlencode

# The only paths a link may be made for: reads a browser navigates to.
LINKABLE = re.compile(
    r"^/api/(alarms/[^/?#]{1,100}/timeline(\.html)?|events/[^/?#]{1,200}/snapshot)$"
)


class LinkSigner:
    def __init__(
        self, secret: bytes | None, ttl_s: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = secret or secrets.token_bytes(32)
        self.ttl_s = ttl_s
        self.clock = clock
        # Nonce of a used single-use link -> its expiry, forgotten once expired.
        self._used: dict[str, int] = {}

    def _mac(self, path: str, username: str, expires: int, nonce: str) -> str:
        message = f"{path}\n{username}\n{expires}\n{nonce}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(
        self, path: str, username: str, ttl_s: int | None = None, *, once: bool = False
    ) -> tuple[str, int]:
        """The query parameters (``u``, ``exp``, ``sig``, and ``n`` for a single-use
        link) that make ``path`` a link, and the expiry (Unix seconds)."""
        expires = int(self.clock()) + (ttl_s or self.ttl_s)
        nonce = secrets.token_urlsafe(12) if once else ""
        params: dict[str, str | int] = {"u": username, "exp": expires}
        if nonce:
            params["n"] = nonce
        params["sig"] = self._mac(path, username, expires, nonce)
        return urlencode(params), expires

    def verify(
        self, path: str, username: str, expires: int, sig: str, nonce: str | None = None
    ) -> bool:
        """True for a good link; a single-use one is used up by this call."""
        now = self.clock()
        if expires < now:
            return False
        if not hmac.compare_digest(self._mac(path, username, expires, nonce or ""), sig):
            return False
        if not nonce:
            return True
        self._used = {n: exp for n, exp in self._used.items() if exp >= now}
        if nonce in self._used:
            return False
        self._used[nonce] = expires
        return True
