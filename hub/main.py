"""``riverguard hub``: serve the hub with uvicorn until stopped."""

from __future__ import annotations

import uvicorn

from hub.app import create_app
from hub.clock import Clock
from hub.settings import HubSettings


def serve(settings: HubSettings) -> None:
    """Run the hub (blocking); Ctrl-C or SIGTERM stops it cleanly."""
    server = uvicorn.Server(server_config(settings))
    server.run()


def server_config(settings: HubSettings, clock: Clock | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings, clock),
        host=settings.http_host,
        port=settings.http_port,
        # structlog does our logging; uvicorn's access log would double every request.
        access_log=False,
        log_level="warning",
        lifespan="on",
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        # Compressing every small JSON message cost ~10 % of the hub's CPU under load
        # (bench --profile); consoles sit on the city network, not a slow link.
        ws_per_message_deflate=False,
    )
