"""Errors of the hub.

HubError
├── StoreError              the state store refused or could not be reached
├── AlarmError
│   ├── AlarmNotFound       no alarm with that id
│   └── AlarmTransitionError  the alarm's state does not allow that change
├── AnnouncementError       an announcement request that cannot be served
├── RoutineLimitReached     a site's routine announcements are at their limit (store check)
├── AudioRejected           an uploaded clip, a text to speak or a rendering refused
├── BrokerUnavailable       the hub is not connected to the broker right now
└── InfluxError             InfluxDB refused a write or a query, or is unreachable
    └── RejectedPoints      InfluxDB answered 400: points it will never take
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error raised by the hub."""


class StoreError(HubError):
    """The state store refused or could not be reached."""


class AlarmError(HubError):
    """An alarm operation that cannot be done."""


class AlarmNotFound(AlarmError):
    """No alarm with that id."""


class AlarmTransitionError(AlarmError):
    """The alarm's state does not allow that change."""


class AnnouncementError(HubError):
    """An announcement request that cannot be served (reason in ``code``)."""

    def __init__(self, code: str, detail: str, status: int = 422) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status


class RoutineLimitReached(HubError):
    """A site already had its limit of routine announcements in the window."""

    def __init__(self, site: str, count: int) -> None:
        super().__init__(f"site {site!r} had {count} routine announcements in the window")
        self.site = site
        self.count = count


class AudioRejected(HubError):
    """Audio the hub will not take or cannot render (reason in ``code``)."""

    def __init__(self, code: str, detail: str, status: int = 422) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status


class BrokerUnavailable(HubError):
    """The hub is not connected to the broker right now."""


class InfluxError(HubError):
    """InfluxDB refused a write or a query, or is unreachable."""


class RejectedPoints(InfluxError):
    """InfluxDB answered 400: the batch had points it will never take."""
