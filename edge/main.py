"""``riverguard edge --site SITE``: run one site's edge agent until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys

from edge.agent import EdgeAgent
from edge.health import HealthServer
from edge.settings import EdgeSettings
from riverguard.config import Config
from riverguard.heap import freeze_startup_heap


def serve(settings: EdgeSettings) -> None:
    """Blocking: load the configuration, run the agent, shut down cleanly on a signal."""
    sys.setswitchinterval(settings.gil_switch_s)
    config = settings.load_config()
    asyncio.run(_serve(settings, config))


async def _serve(settings: EdgeSettings, config: Config) -> None:
    agent = EdgeAgent(settings, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    http = None
    if settings.metrics_port is not None:
        http = HealthServer(agent, settings.metrics_port, settings.metrics_host)
        http.start()
        if agent.audio_base_url is None:
            agent.audio_base_url = f"http://{settings.metrics_host}:{http.port}"
    freeze_startup_heap()
    try:
        await agent.run(stop)
    finally:
        if http is not None:
            http.stop()
