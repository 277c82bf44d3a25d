"""deploy/nginx/riverguard.conf as shipped: nginx ends TLS in front of a plain loopback hub,
and passes the console's WebSocket through."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx
import pytest
import websockets

from riverguard import certs
from riverguard.hub_session import HubSession
from riverguard.wire.socket_auth import subprotocols
from tests.deployment import Nginx
from tests.hub.conftest import MakeSettings, run_hub

pytestmark = pytest.mark.integration


@pytest.fixture
def tls(tmp_path: Path) -> Path:
    directory = tmp_path / "tls"
    certs.make_all(directory, certs.plan(["localhost", "127.0.0.1"], []))
    return directory


@pytest.fixture
def nginx_dir(tmp_path: Path) -> Path:
    if not Nginx.installed():
        pytest.skip("nginx is not installed (scripts/setup installs it)")
    directory = tmp_path / "nginx"
    directory.mkdir()
    return directory


async def test_nginx_serves_the_hub_over_https_with_the_websocket_upgrade(
    make_settings: MakeSettings, tls: Path, nginx_dir: Path
) -> None:
    settings = make_settings()  # plain HTTP on 127.0.0.1: allowed, it is loopback
    nginx = Nginx(nginx_dir, settings.http_port, tls)
    trusted = ssl.create_default_context(cafile=tls / "ca.crt")
    async with run_hub(settings):
        nginx.start()
        try:
            base = f"https://localhost:{nginx.https_port}"
            async with httpx.AsyncClient(verify=trusted, timeout=10) as http:
                health = await http.get(f"{base}/healthz")
                assert 200 == health.status_code, nginx.error_log()
                assert "max-age=31536000" == health.headers["strict-transport-security"]
                login = await HubSession.login_async(http, "officer-li", "officer-pw", base)
                token = login.access_token
                console = await http.get(f"{base}/")
                assert "<title>console</title>" in console.text
                # The metrics stay on the hub's loopback port.
                assert 404 == (await http.get(f"{base}/metrics")).status_code

            # The token as a subprotocol: nginx passes the handshake header through.
            url = f"wss://localhost:{nginx.https_port}/api/ws"
            async with websockets.connect(url, ssl=trusted, subprotocols=subprotocols(token)) as ws:
                hello = json.loads(await ws.recv())
                assert "hello" == hello["type"]
                # Both ways through the proxy: the hub answers a ping frame.
                pong = await ws.ping()
                assert 0 <= await pong

            # The plain listener only redirects to HTTPS.
            async with httpx.AsyncClient(timeout=10) as plain:
                redirect = await plain.get(f"http://localhost:{nginx.http_port}/api/alarms")
            assert 301 == redirect.status_code
            assert "https://localhost/api/alarms" == redirect.headers["location"]

            # A client that does not trust the private CA gets nothing.
            async with httpx.AsyncClient(timeout=10) as untrusting:
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await untrusting.get(f"{base}/healthz")
        finally:
            nginx.stop()


async def test_a_websocket_with_a_bad_token_is_refused_through_the_proxy(
    make_settings: MakeSettings, tls: Path, nginx_dir: Path
) -> None:
    """The hub's close code (4401) reaches the console through nginx, not a proxy error."""
    settings = make_settings()
    nginx = Nginx(nginx_dir, settings.http_port, tls)
    trusted = ssl.create_default_context(cafile=tls / "ca.crt")
    async with run_hub(settings):
        nginx.start()
        try:
            url = f"wss://localhost:{nginx.https_port}/api/ws"
            async with websockets.connect(
                url, ssl=trusted, subprotocols=subprotocols("forged")
            ) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
            assert closed.value.rcvd is not None
            assert 4401 == closed.value.rcvd.code
        finally:
            nginx.stop()
