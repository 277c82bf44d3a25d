"""Errors of the edge agent.

EdgeError
├── Rejected       bad input from a device or the hub: logged, counted, dropped
├── Skipped        good input that makes no event (a vendor's dog, a zone we do not watch)
├── AudioError     an announcement's audio could not be fetched or did not verify
├── PlayerError    the ``local`` driver's player is missing or cannot start
└── SitesRefused   a process asked to serve several sites with settings that fit one
"""

from __future__ import annotations

from riverguard.wire.reject_reasons import RejectReason


class EdgeError(Exception):
    """Base of every error raised by the edge package."""


class Rejected(EdgeError):
    """A message the edge will not use; ``reason`` is the metric label."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Skipped(EdgeError):
    """A well-formed vendor message that makes no event; ``reason`` is the metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class AudioError(EdgeError):
    """Fetching, verifying or caching an announcement's audio failed."""


class PlayerError(EdgeError):
    """The ``local`` speaker driver cannot run its player."""


class SitesRefused(EdgeError):
    """Settings that would make the sites of one process share what each must own."""
