"""``riverguard edge --site SITE``: run one site's edge agent until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal

import structlog
from prometheus_client import start_http_server

from edge.agent import EdgeAgent
from edge.settings import EdgeSettings
from riverguard.config import Config

log = structlog.get_logger()


def serve(settings: EdgeSettings) -> None:
    """Blocking: load the configuration, run the agent, shut down cleanly on a signal."""
    config = settings.load_config()
    asyncio.run(_serve(settings, config))


async def _serve(settings: EdgeSettings, config: Config) -> None:
    agent = EdgeAgent(settings, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics_server = None
    if settings.metrics_port is not None:
        # prometheus_client serves from its own thread; it only reads counters.
        metrics_server, _ = start_http_server(
            settings.metrics_port, addr="127.0.0.1", registry=agent.metrics.registry
        )
        log.info("metrics served", port=settings.metrics_port)
    try:
        await agent.run(stop)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
