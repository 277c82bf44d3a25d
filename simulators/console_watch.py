"""What the demo's swimmer waits for: someone at the console, and no alarm left unanswered.

Left to itself the swimmer of ``riverguard up`` crosses a fence the moment
the stack is ready and again every half minute, while nobody is logged in to
see it: whoever opens the console then finds the first swimmer gone and a
wall of unanswered alarms. So before each visit it waits until the hub counts
a console connected (``riverguard_hub_ws_clients`` on ``/metrics``: the
console opens its WebSocket once someone has logged in) and no alarm is open
(``GET /api/alarms?state=open``: raised and not yet acknowledged). Both are
things the hub already serves, read with a login of the stack's lowest role
and polled every ``poll_s``; each new reason to wait is said once in the log.
Real swimmers wait for nobody: this is the demo's pace only.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families

from riverguard.hub_session import HubSession, HubSessionError
from simulators.errors import SimulatorError

log = structlog.get_logger()

CONSOLES_METRIC = "riverguard_hub_ws_clients"


class ConsoleWatch:
    """Waits, before each visit of the swimmer, until someone is watching."""

    def __init__(self, hub_url: str, username: str, password: str, *, poll_s: float = 2.0) -> None:
        self.hub_url = hub_url.rstrip("/")
        self._username = username
        self._password = password
        self.poll_s = poll_s
        self._session: HubSession | None = None
        # What the last look found missing ("hub", "console", "alarm"); None: nothing.
        self.waiting_for: str | None = None

    async def wait(self, stop: asyncio.Event) -> None:
        """Return once a console is connected and no alarm is open, or when ``stop`` is set."""
        async with httpx.AsyncClient(base_url=self.hub_url, timeout=10) as http:
            while not stop.is_set():
                missing = await self._missing(http)
                if missing is None:
                    if self.waiting_for is not None:
                        log.info("a console is open and no alarm is unanswered: the swimmer comes")
                    self.waiting_for = None
                    return
                reason, message, details = missing
                if reason != self.waiting_for:
                    log.info(message, **details)
                self.waiting_for = reason
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_s)

    async def _missing(self, http: httpx.AsyncClient) -> tuple[str, str, dict[str, Any]] | None:
        """Why the swimmer should wait now (reason, log message, details), or None."""
        try:
            metrics = await self._get(http, "/metrics")
            if metrics.status_code == 404:
                raise SimulatorError(
                    "the hub serves no /metrics (RIVERGUARD_METRICS_ACCESS=off): "
                    "cannot tell whether anyone is at the console"
                )
            metrics.raise_for_status()
            if _consoles(metrics.text) < 1:
                return (
                    "console",
                    "the swimmer waits for someone to log in to the console",
                    {"console": f"{self.hub_url}/"},
                )
            alarms = await self._get(http, "/api/alarms", {"state": "open"})
            alarms.raise_for_status()
            open_alarms = alarms.json()
        except httpx.HTTPError as exc:
            details = {"hub": self.hub_url, "error": str(exc)}
            return ("hub", "the swimmer waits for the hub", details)
        if open_alarms:
            return (
                "alarm",
                "the swimmer waits until the open alarms are acknowledged in the console",
                {"alarms": [f"{a.get('id')} at {a.get('site')}" for a in open_alarms[:5]]},
            )
        return None

    async def _get(
        self, http: httpx.AsyncClient, path: str, params: dict[str, str] | None = None
    ) -> httpx.Response:
        session = self._session or await self._login(http)
        response = await http.get(path, params=params, auth=session)
        if response.status_code == 401:
            self._session = None  # the session ended (logged out, its 12 h over): log in again
        return response

    async def _login(self, http: httpx.AsyncClient) -> HubSession:
        try:
            self._session = await HubSession.login_async(http, self._username, self._password)
        except HubSessionError as exc:
            if exc.status in (429, 503):  # throttled, busy or starting: tried again
                raise httpx.HTTPError(str(exc)) from exc
            raise SimulatorError(f"the hub refused the login {self._username}: {exc}") from exc
        return self._session


def _consoles(metrics_text: str) -> float:
    """Consoles connected, from the hub's ``/metrics`` (0 when the gauge is missing)."""
    for family in text_string_to_metric_families(metrics_text):
        if family.name == CONSOLES_METRIC and family.samples:
            return family.samples[0].value
    return 0.0
