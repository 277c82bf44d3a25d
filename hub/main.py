"""``riverguard hub``: serve the hub with uvicorn until stopped."""

from __future__ import annotations

import sys

import uvicorn

from hub.app import create_app
from hub.clock import Clock
from hub.settings import HubSettings

# The exit status when an essential task died (EX_SOFTWARE): the supervisor restarts us.
EXIT_TASK_DIED = 70


def serve(settings: HubSettings) -> int:
    """Run the hub (blocking) and return its exit status; Ctrl-C or SIGTERM stops it cleanly."""
    sys.setswitchinterval(settings.gil_switch_s)
    server = HubServer(settings)
    server.run()
    return EXIT_TASK_DIED if server.failed else 0


# How long the hub keeps an idle HTTP connection open: longer than its clients keep one.
KEEP_ALIVE_S = 30


class HubServer(uvicorn.Server):
    """uvicorn serving the hub; it stops, with a failure, when an essential task dies.

    uvicorn builds a server from an app, and the app must be able to stop its
    server: the app is given this server's ``task_died`` when it is built, here.
    """

    def __init__(self, settings: HubSettings, clock: Clock | None = None) -> None:
        # The essential task that died, if one did.
        self.failed: str | None = None
        app = create_app(settings, clock, on_task_died=self.task_died)
        super().__init__(
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
                # Clients must drop an idle connection before the hub does, or a request sent
                # as the hub closes it fails mid-read. httpx (edge, simulators) keeps one 5 s
                # and uvicorn's default is also 5 s: that race lost a request in CI.
                timeout_keep_alive=KEEP_ALIVE_S,
                # HTTPS when the settings name a certificate; uvicorn reads the files at start.
                ssl_certfile=settings.tls_cert_file,
                ssl_keyfile=settings.tls_key_file,
            )
        )

    def task_died(self, name: str) -> None:
        self.failed = name
        self.should_exit = True
