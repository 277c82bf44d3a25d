"""The edge's small HTTP port: ``GET /healthz``, Prometheus ``GET /metrics``, cached audio.

``GET /audio/<sha256>.<ext>`` serves the edge's audio cache, so the site's
speakers can fetch the local warning without the hub.

Served from threads of its own (WSGI, as ``prometheus_client`` serves), so a
busy event loop cannot make a health check time out, and a health check
cannot block the event loop: the handler only reads the agent's state.

``/healthz`` answers 200 while the edge is connected to its broker and 503
when it is not, with a JSON body a supervisor or an operator can read::

    {"status": "ok", "site": "...", "broker": true, "outbox": 0, "dropped": 0,
     "hub_committing": true, "devices_offline": []}
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import make_wsgi_app

if TYPE_CHECKING:
    from edge.agent import EdgeAgent

log = structlog.get_logger()

_StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_AUDIO = re.compile(r"^/audio/([0-9a-f]{64}\.(wav|mp3|ulaw))$")
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ulaw": "audio/basic"}


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are not news; the agent logs what matters


def health(agent: EdgeAgent) -> dict[str, Any]:
    """What ``/healthz`` reports."""
    connected = agent.ready.is_set()
    return {
        "status": "ok" if connected else "unavailable",
        "site": agent.site.id,
        "broker": connected,
        "field_connected": agent.field.ready.is_set(),
        "uplink_connected": agent.uplink.ready.is_set(),
        "uplink_queued": len(agent.outgoing),
        "outbox": len(agent.outbox),
        "dropped": agent.outbox.dropped,
        "hub_committing": not agent.hub_silent,
        "devices_offline": sorted(agent.devices_offline),
    }


class HealthServer:
    """``/healthz`` and ``/metrics`` of one agent on ``host:port``; ``port`` 0 picks a free one."""

    def __init__(self, agent: EdgeAgent, port: int, host: str = "127.0.0.1") -> None:
        self.agent = agent
        self._metrics = make_wsgi_app(agent.metrics.registry)
        self._server = make_server(host, port, self._app, _Server, handler_class=_QuietHandler)
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"edge[{agent.site.id}].http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        log.info("health and metrics served", port=self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _app(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            result: Iterable[bytes] = self._metrics(environ, start_response)
            return result
        if path == "/healthz":
            body = health(self.agent)
            status = "200 OK" if body["broker"] else "503 Service Unavailable"
            return _json(start_response, status, body)
        audio = _AUDIO.match(path)
        if audio is not None:
            return self._audio(start_response, audio.group(1), audio.group(2))
        return _json(start_response, "404 Not Found", {"error": "not_found", "detail": path})

    def _audio(self, start_response: _StartResponse, name: str, ext: str) -> Iterable[bytes]:
        """A file of the edge's verified audio cache (the local warning), for its speakers."""
        try:
            data = (self.agent.settings.data_dir / "audio" / name).read_bytes()
        except FileNotFoundError:
            return _json(start_response, "404 Not Found", {"error": "not_found", "detail": name})
        start_response(
            "200 OK", [("Content-Type", _AUDIO_TYPES[ext]), ("Content-Length", str(len(data)))]
        )
        return [data]


def _json(start_response: _StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
