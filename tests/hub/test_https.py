"""The console and API over HTTPS: uvicorn serving a certificate of the deployment's CA."""

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
from tests.hub.conftest import MakeSettings, run_hub

pytestmark = pytest.mark.integration


def deployment_certs(directory: Path) -> Path:
    """The CA and the hub's certificates for this machine's loopback names."""
    certs.make_all(directory, certs.plan(["localhost", "127.0.0.1"], []))
    return directory


async def test_the_hub_serves_https_verified_against_the_private_ca(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    tls = deployment_certs(tmp_path / "tls")
    settings = make_settings(
        tls_cert_file=tls / "hub-https.crt", tls_key_file=tls / "hub-https.key"
    )
    assert settings.base_url.startswith("https://")
    trusted = ssl.create_default_context(cafile=tls / "ca.crt")
    async with run_hub(settings) as hub:
        base = f"https://localhost:{settings.http_port}"
        async with httpx.AsyncClient(verify=trusted, timeout=10) as http:
            assert 200 == (await http.get(f"{base}/healthz")).status_code
            login = await HubSession.login_async(http, "officer-li", "officer-pw", base)
            token = login.access_token
        async with websockets.connect(
            f"wss://localhost:{settings.http_port}/api/ws",
            ssl=trusted,
            subprotocols=subprotocols(token),
        ) as ws:
            assert "hello" == json.loads(await ws.recv())["type"]

        # A client that does not know the private CA is refused, and so is plain HTTP.
        async with httpx.AsyncClient(timeout=10) as http:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(f"{base}/healthz")
            # uvicorn closes a plain request on its TLS port without an answer.
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(f"http://localhost:{settings.http_port}/healthz")
        assert hub.server.started


async def test_a_certificate_without_its_key_is_refused_in_the_settings(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    tls = deployment_certs(tmp_path / "tls")
    with pytest.raises(ValueError, match="tls_cert_file and tls_key_file go together"):
        make_settings(tls_cert_file=tls / "hub-https.crt")
