"""The links a message to a responder carries.

Both lead to the hub's responder page for one alarm, opened with that call's
token (a signed, expiring, single-alarm token: no account needed), so a link
forwarded to a group shows one alarm and nothing else.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

RESPOND_PATH = "/respond"


class ResponderLinks:
    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"responder links need an http(s) base URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")

    def page(self, token: str) -> str:
        return f"{self.base_url}{RESPOND_PATH}/{quote(token, safe='')}"

    def snapshot(self, token: str) -> str:
        return f"{self.page(token)}/snapshot"
