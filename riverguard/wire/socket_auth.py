"""How a console authenticates its WebSocket (PROTOCOL 4.1, 7.1) without a token in the URL.

Either as a subprotocol pair offered in the handshake, ``riverguard.v1`` and
``bearer.<token>`` (the hub answers with ``riverguard.v1``; a browser sets them
with ``new WebSocket(url, protocols)``), or, for clients that cannot offer
subprotocols, by the first message ``{"op": "auth", "token": "<token>"}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from websockets.typing import Subprotocol

SUBPROTOCOL = "riverguard.v1"
BEARER_PREFIX = "bearer."


def subprotocols(token: str) -> list[Subprotocol]:
    """What a client offers: the protocol, and its token as a second subprotocol."""
    return [Subprotocol(SUBPROTOCOL), Subprotocol(BEARER_PREFIX + token)]


def bearer_from(offered: Iterable[str]) -> str | None:
    """The token among the offered subprotocols, if any."""
    for value in offered:
        if value.startswith(BEARER_PREFIX):
            return value.removeprefix(BEARER_PREFIX)
    return None


class AuthOp(BaseModel):
    """Console -> hub, as the first message when no bearer subprotocol was offered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["auth"]
    token: str = Field(min_length=1, max_length=200)
