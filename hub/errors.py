"""Errors of the hub, and how the API answers each (status, ``error`` code).

HubError
├── ApiError                a request refused by a route              (its own)
├── StoreError              the state store refused or could not be reached
│                                                            503 store_unavailable
├── AlarmError
│   ├── AlarmNotFound       no alarm with that id                     404 not_found
│   └── AlarmTransitionError  the alarm's state does not allow that change
│                                                            409 invalid_transition
├── AnnouncementError       an announcement request that cannot be served  (its own)
├── RoutineLimitReached     a site's routine announcements are at their limit (store
│                           check; the announcer answers it as rate_limited)
├── AudioRejected           an uploaded clip, a text to speak or a rendering refused
│                                                                       (its own)
├── BrokerUnavailable       the hub is not connected to the broker right now
│                                                            503 broker_unavailable
├── InfluxError             InfluxDB refused a write or a query, or is unreachable
│   │                                                        503 influx_unavailable
│   └── RejectedPoints      InfluxDB answered 400: points it will never take
├── DispatchNotFound        no dispatch with that id                  404 not_found
├── DispatchTransitionError a responder's dispatch does not allow that change
│                                                            409 invalid_transition
├── TokenRefused            a responder's link token malformed, forged or expired
│                                                            403 token_refused
└── SenderGone              a call to responders outlived the hub's sending process

hub.auth adds LoginRefused (429, throttled or busy) and UsersFileError (start-up).
An error without a status is not meant for a client: should one reach a route's
caller, it is a bug, answered 500 and logged by the server.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error raised by the hub.

    The API answers one as ``{"error": code, "detail": detail}`` with ``status``
    and ``headers``; one with no ``status`` is not answered (see above).
    """

    status: int | None = None
    code = "internal"

    @property
    def detail(self) -> str:
        return str(self)

    @property
    def headers(self) -> dict[str, str] | None:
        return None


class ApiError(HubError):
    """A request a route refuses, with the status and code it names."""

    def __init__(self, status: int, code: str, detail: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.code = code

    @property
    def headers(self) -> dict[str, str] | None:
        # RFC 6750: a 401 names the scheme the client should use.
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else None


class StoreError(HubError):
    """The state store refused or could not be reached."""

    status = 503
    code = "store_unavailable"


class AlarmError(HubError):
    """An alarm operation that cannot be done."""


class AlarmNotFound(AlarmError):
    """No alarm with that id."""

    status = 404
    code = "not_found"


class AlarmTransitionError(AlarmError):
    """The alarm's state does not allow that change."""

    status = 409
    code = "invalid_transition"


class AnnouncementError(HubError):
    """An announcement request that cannot be served (reason in ``code``)."""

    def __init__(self, code: str, detail: str, status: int = 422) -> None:
        super().__init__(detail)
        self.code = code
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
        self.status = status


class BrokerUnavailable(HubError):
    """The hub is not connected to the broker right now."""

    status = 503
    code = "broker_unavailable"


class InfluxError(HubError):
    """InfluxDB refused a write or a query, or is unreachable."""

    status = 503
    code = "influx_unavailable"


class RejectedPoints(InfluxError):
    """InfluxDB answered 400: the batch had points it will never take."""


class DispatchNotFound(HubError):
    """No dispatch with that id (or none behind a responder's link)."""

    status = 404
    code = "not_found"


class DispatchTransitionError(HubError):
    """A responder's dispatch does not allow that change (ended, or already past it)."""

    status = 409
    code = "invalid_transition"


class TokenRefused(HubError):
    """A responder's link token that is malformed, forged or expired (the reason
    says which)."""

    status = 403
    code = "token_refused"


class SenderGone(HubError):
    """A call handed to the sending process as the hub stops (``hub.notify.send_process``)."""
