"""The edge's small HTTP port: ``GET /healthz``, Prometheus ``GET /metrics``, cached audio.

``GET /audio/<sha256>.<ext>`` serves the edge's audio cache, so the site's
speakers can fetch the local warning without the hub.

One port per process. Each site it serves answers under ``/sites/<site>/``
(``healthz``, ``metrics``, ``audio/...``). A process serving one site answers
the bare paths for it as well; one serving several answers ``/healthz`` with
every site's body under ``sites`` (200 only while all are connected) and
``/metrics`` with every site's metrics labelled ``site``.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import Metric

from edge.sites import ServedSite

log = structlog.get_logger()

_StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_WsgiApp = Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]
_SITE_PATH = re.compile(r"^/sites/([^/]+)(/.*)$")
_AUDIO = re.compile(r"^/audio/([0-9a-f]{64}\.(wav|mp3|ulaw))$")
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ulaw": "audio/basic"}


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are not news; the agent logs what matters


def health(site: ServedSite) -> dict[str, Any]:
    """What ``/healthz`` reports of one site."""
    agent = site.agent
    if agent is None:  # failed, waiting to start again
        return {"status": "unavailable", "site": site.id, "broker": False, "failure": site.failure}
    connected = agent.ready.is_set()
    return {
        "status": "ok" if connected else "unavailable",
        "site": site.id,
        "broker": connected,
        "field_connected": agent.field.ready.is_set(),
        "uplink_connected": agent.uplink.ready.is_set(),
        "uplink_queued": len(agent.outgoing),
        "outbox": len(agent.outbox),
        "dropped": agent.outbox.dropped,
        "hub_committing": not agent.hub_silent,
        "devices_offline": sorted(agent.devices_offline),
    }


class _SiteLabelled:
    """Every site's metrics in one exposition, each sample labelled with its site."""

    def __init__(self, sites: Sequence[ServedSite]) -> None:
        self._sites = sites

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for site in self._sites:
            for family in site.metrics.registry.collect():
                into = merged.get(family.name)
                if into is None:
                    into = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = into
                for sample in family.samples:
                    labels = {"site": site.id, **sample.labels}
                    into.add_sample(sample.name, labels, sample.value, sample.timestamp)
        yield from merged.values()


class HealthServer:
    """``/healthz``, ``/metrics`` and audio of the process's sites on ``host:port``;
    ``port`` 0 picks a free one."""

    def __init__(self, sites: Sequence[ServedSite], port: int, host: str = "127.0.0.1") -> None:
        if not sites:
            raise ValueError("an edge's HTTP port serves at least one site")
        self.sites = {site.id: site for site in sites}
        self._metrics: dict[str, _WsgiApp] = {
            site.id: make_wsgi_app(site.metrics.registry) for site in sites
        }
        self._all_metrics: _WsgiApp
        if len(sites) == 1:
            self._all_metrics = self._metrics[sites[0].id]
        else:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_SiteLabelled(list(sites)))
            self._all_metrics = make_wsgi_app(registry)
        self._server = make_server(host, port, self._app, _Server, handler_class=_QuietHandler)
        self.port: int = self._server.server_port
        self._host = host
        name = sites[0].id if len(sites) == 1 else f"{len(sites)} sites"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"edge[{name}].http", daemon=True
        )

    def site_url(self, site: str) -> str:
        """Where ``site``'s paths are served, for its speakers' audio URLs."""
        base = f"http://{self._host}:{self.port}"
        return base if len(self.sites) == 1 else f"{base}/sites/{site}"

    def start(self) -> None:
        self._thread.start()
        log.info("health and metrics served", port=self.port, sites=len(self.sites))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _app(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        of_site = _SITE_PATH.match(path)
        if of_site is not None:
            site = self.sites.get(of_site.group(1))
            if site is None:
                return _not_found(start_response, path)
            return self._site_app(site, of_site.group(2), environ, start_response)
        if len(self.sites) == 1:
            (only,) = self.sites.values()
            return self._site_app(only, path, environ, start_response)
        if path == "/metrics":
            return self._all_metrics(environ, start_response)
        if path == "/healthz":
            bodies = {site.id: health(site) for site in self.sites.values()}
            connected = all(body["broker"] for body in bodies.values())
            status = "200 OK" if connected else "503 Service Unavailable"
            body = {"status": "ok" if connected else "unavailable", "sites": bodies}
            return _json(start_response, status, body)
        return _not_found(start_response, path)

    def _site_app(
        self,
        site: ServedSite,
        path: str,
        environ: dict[str, Any],
        start_response: _StartResponse,
    ) -> Iterable[bytes]:
        if path == "/metrics":
            return self._metrics[site.id](environ, start_response)
        if path == "/healthz":
            body = health(site)
            status = "200 OK" if body["broker"] else "503 Service Unavailable"
            return _json(start_response, status, body)
        audio = _AUDIO.match(path)
        if audio is not None:
            return _audio(site, start_response, audio.group(1), audio.group(2))
        return _not_found(start_response, path)


def _audio(
    site: ServedSite, start_response: _StartResponse, name: str, ext: str
) -> Iterable[bytes]:
    """A file of the site's verified audio cache (the local warning), for its speakers."""
    try:
        data = (site.settings.data_dir / "audio" / name).read_bytes()
    except FileNotFoundError:
        return _not_found(start_response, name)
    start_response(
        "200 OK", [("Content-Type", _AUDIO_TYPES[ext]), ("Content-Length", str(len(data)))]
    )
    return [data]


def _not_found(start_response: _StartResponse, detail: str) -> list[bytes]:
    return _json(start_response, "404 Not Found", {"error": "not_found", "detail": detail})


def _json(start_response: _StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
