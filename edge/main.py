"""``riverguard edge --site SITE [--site SITE ... --logins FILE]``: run the edge agents of
one or several sites in one process until SIGTERM or SIGINT (``edge.sites``)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

from edge.agent import http_tls
from edge.health import HealthServer
from edge.settings import EdgeSettings
from edge.sites import ServedSite
from riverguard.config import Config
from riverguard.heap import freeze_startup_heap


def serve(sites: Sequence[EdgeSettings]) -> None:
    """Blocking: load the configuration, run the sites' agents, shut down cleanly on a signal.

    The process-wide settings (configuration, HTTP port, log level) are the first site's:
    every site's come from the same environment."""
    first = sites[0]
    sys.setswitchinterval(first.gil_switch_s)
    config = first.load_config()
    unknown = sorted({s.site for s in sites} - set(config.site_by_id))
    if unknown:
        raise SystemExit(f"riverguard edge: sites not in {first.config}: {', '.join(unknown)}")
    tls = http_tls(first)  # the same for every site: hub_ca_file comes from the environment
    asyncio.run(_serve([ServedSite(settings, tls=tls) for settings in sites], config))


async def _serve(sites: list[ServedSite], config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    first = sites[0].settings
    http = None
    if first.metrics_port is not None:
        http = HealthServer(sites, first.metrics_port, first.metrics_host)
        http.start()
        for site in sites:
            site.audio_base_url = site.settings.audio_base_url or http.site_url(site.id)
    freeze_startup_heap()
    try:
        async with asyncio.TaskGroup() as tg:
            for site in sites:
                tg.create_task(site.run(config, stop), name=f"edge[{site.id}]")
    finally:
        if http is not None:
            http.stop()
