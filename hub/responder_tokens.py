"""Tokens in the links sent to responders: who may open which call, until when.

A token names one subject (a dispatch of one responder to one alarm; the hub
looks it up, and refuses it once revoked) and an expiry, with an HMAC-SHA256
of both, truncated to 128 bits. It is short because it rides in text messages:
``<subject>.<expiry, base 36>.<22 characters>``.

Unlike the console's signed links (``hub.signed_links``), which bind a user and
a path and live for a minute, a responder's link lives for hours and must
outlive a hub restart, so its key is configured, never made up at start. The
key is derived for this use only: a console link's signature never passes
here, nor the other way round.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime

from hub.errors import TokenRefused

_SUBJECT = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MAC_BYTES = 16
# Seven base-36 digits reach the year 4444: enough, and never past datetime's range.
_STAMP = re.compile(r"^[0-9a-z]{1,7}$")


def _b36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if value == 0:
            return out


class ResponderTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the responder token key needs at least 16 bytes")
        self._key = hmac.new(secret, b"riverguard responder token", hashlib.sha256).digest()

    def _mac(self, subject: str, expires: str) -> str:
        digest = hmac.new(self._key, f"{subject}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).decode().rstrip("=")

    def mint(self, subject: str, expires: datetime) -> str:
        if not _SUBJECT.match(subject):
            raise ValueError("a token subject is 8 to 64 letters, digits, - or _")
        stamp = _b36(int(expires.timestamp()))
        return f"{subject}.{stamp}.{self._mac(subject, stamp)}"

    def read(self, token: str, now: datetime) -> str:
        """The subject of a good token; TokenRefused for anything else."""
        parts = token.split(".")
        if len(token) > 200 or len(parts) != 3 or not _SUBJECT.match(parts[0]):
            raise TokenRefused("malformed")
        subject, stamp, mac = parts
        if not _STAMP.match(stamp):
            raise TokenRefused("malformed")
        if not hmac.compare_digest(self._mac(subject, stamp), mac):
            raise TokenRefused("bad signature")
        if datetime.fromtimestamp(int(stamp, 36), UTC) <= now:
            raise TokenRefused("expired")
        return subject
