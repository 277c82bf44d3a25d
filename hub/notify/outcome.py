"""What one send came to: sent, to be tried again, or failed for good."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutcomeKind = Literal["sent", "retry", "failed"]

# HTTP answers that say "not now" rather than "never": a timeout at the far end,
# a rate limit, a server error.
RETRYABLE_STATUS = frozenset({408, 425, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    reason: str = ""

    @property
    def sent(self) -> bool:
        return self.kind == "sent"

    @property
    def retryable(self) -> bool:
        return self.kind == "retry"


SENT = Outcome("sent")


def retry(reason: str) -> Outcome:
    return Outcome("retry", reason)


def failed(reason: str) -> Outcome:
    return Outcome("failed", reason)


def of_http_status(status: int, what: str) -> Outcome:
    """A receiver's HTTP answer: 2xx sent, a temporary refusal retried, others failed."""
    if 200 <= status < 300:
        return SENT
    reason = f"{what} answered HTTP {status}"
    return retry(reason) if status in RETRYABLE_STATUS else failed(reason)
