"""``riverguard hub``: serve the hub with uvicorn until stopped."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from hub.app import create_app
from hub.settings import HubSettings

# The exit status when an essential task died (EX_SOFTWARE): the supervisor restarts us.
EXIT_TASK_DIED = 70


def serve(settings: HubSettings) -> int:
    """Run the hub (blocking) and return its exit status; Ctrl-C or SIGTERM stops it cleanly."""
    sys.setswitchinterval(settings.gil_switch_s)
    app = create_app(settings)
    make_server(app, settings).run()
    return EXIT_TASK_DIED if getattr(app.state, "failed", None) else 0


def make_server(app: FastAPI, settings: HubSettings) -> uvicorn.Server:
    """The server of ``app``; the app knows it, to stop it if an essential task dies."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
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
            # HTTPS when the settings name a certificate; uvicorn reads the files at start.
            ssl_certfile=settings.tls_cert_file,
            ssl_keyfile=settings.tls_key_file,
        )
    )
    app.state.server = server
    return server
