"""Signed links: URLs a browser loads by itself (a download, a printable page, a
picture in it), which cannot carry the bearer header.

A link names the user and an expiry and carries an HMAC-SHA256 of both with the
path; it is good for that one path (any query besides), for that user while
they are enabled, until it expires. The bearer token never goes into a URL.
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

    def _mac(self, path: str, username: str, expires: int) -> str:
        message = f"{path}\n{username}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, path: str, username: str, ttl_s: int | None = None) -> tuple[str, int]:
        """The query parameters (``u``, ``exp``, ``sig``) that make ``path`` a link, and
        the expiry (Unix seconds)."""
        expires = int(self.clock()) + (ttl_s or self.ttl_s)
        sig = self._mac(path, username, expires)
        query = urlencode({"u": username, "exp": expires, "sig": sig})
        return query, expires

    def verify(self, path: str, username: str, expires: int, sig: str) -> bool:
        if expires < self.clock():
            return False
        return hmac.compare_digest(self._mac(path, username, expires), sig)
