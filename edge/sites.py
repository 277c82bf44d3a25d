"""The sites one edge process serves, each with an agent of its own.

A process may serve one site (a riverbank box) or many (``riverguard up`` with a
city's configuration: a Python process per site costs about 65 MB and a second
of CPU to start, so 200 of them do not fit a small machine). The sites share the
event loop and nothing else: each agent has its own broker logins and sessions,
outbox, event id key, audio cache and metrics.

A site whose agent fails (its outbox unwritable, a bug reached by one site's
input) is started again on its own, after 1, 2, 4 ... 30 s, counted in
``riverguard_edge_agent_restarts``, while the other sites go on; a process
serving one site does the same, so a failure looks alike in both.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass, field

import structlog

from edge.agent import EdgeAgent
from edge.metrics import EdgeMetrics
from edge.settings import EdgeSettings
from riverguard.config import Config

log = structlog.get_logger()

RESTART_DELAY_CAP_S = 30.0
# An agent that ran this long before failing starts again after 1 s, not its last delay.
STABLE_AFTER_S = 120.0


@dataclass
class ServedSite:
    """One site of the process: its settings and metrics, kept across its agent's restarts,
    and the agent running now (None while it waits to start again)."""

    settings: EdgeSettings
    metrics: EdgeMetrics = field(default_factory=EdgeMetrics)
    agent: EdgeAgent | None = None
    # Where the site's speakers fetch the audio the edge serves (its local warning).
    audio_base_url: str | None = None
    # Why the last agent stopped, while the site waits to start again.
    failure: str | None = None
    # The HTTPS client's trust, shared by the process's sites (``edge.agent.http_tls``).
    tls: ssl.SSLContext | None = None

    @property
    def id(self) -> str:
        return self.settings.site

    @classmethod
    def of(cls, agent: EdgeAgent) -> ServedSite:
        """A site whose agent is already built (and run) by the caller."""
        return cls(agent.settings, agent.metrics, agent)

    async def run(self, config: Config, stop: asyncio.Event) -> None:
        """Run the site's agent until ``stop`` is set, starting it again when it fails."""
        delay = 1.0
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self._run_agent(config, stop)
            except Exception as exc:  # any failure of one site must leave the others running
                self.failure = f"{type(exc).__name__}: {exc}"
                self.metrics.agent_restarts.inc()
                if time.monotonic() - started >= STABLE_AFTER_S:
                    delay = 1.0
                log.exception(
                    "site's edge agent failed; starting it again", site=self.id, in_s=delay
                )
                with contextlib.suppress(TimeoutError):
                    # A pause before the next try, cut short by ``stop``.
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(RESTART_DELAY_CAP_S, delay * 2)
            finally:
                self.agent = None

    async def _run_agent(self, config: Config, stop: asyncio.Event) -> None:
        self.agent = EdgeAgent(self.settings, config, metrics=self.metrics, tls=self.tls)
        if self.audio_base_url is not None:
            self.agent.audio_base_url = self.audio_base_url
        self.failure = None
        await self.agent.run(stop)
        if not stop.is_set():  # its sides returned by themselves: start it again
            raise RuntimeError("the agent stopped without being asked to")
