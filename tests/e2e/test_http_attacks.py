"""The HTTP attacks against `riverguard up` as it runs (docs/security.md, "HTTP API").

The same attacks as tests/hub/test_security.py, on the whole stack's hub process with
its shipped settings. Login throttling is left to that file: tripping the per-address
limit here would hold up every other test's logins on the shared stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat

import httpx
import pytest
import websockets

from riverguard.stack import Stack

pytestmark = pytest.mark.integration


async def test_an_anonymous_60_mb_upload_is_refused_unread_by_the_stacks_hub(
    stack: Stack,
) -> None:
    port = int(stack.hub_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /api/clips HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=xyz\r\n"
            b"Content-Length: 62914560\r\n\r\n" + b"x" * 65536
        )
        await writer.drain()
        # Only 64 KiB of the 60 MB are ever sent: a hub that read on would never answer.
        async with asyncio.timeout(20):
            status_line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert 413 == int(status_line.split()[1])


async def test_the_stacks_hub_refuses_tokens_in_urls_and_guards_metrics_and_files(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=10) as http:
        login = await http.post(
            "/api/auth/token",
            data={"username": "admin", "password": stack.secrets.users["admin"]},
        )
        token = login.json()["access_token"]
        page = await http.get("/")
        metrics = await http.get("/metrics")
        openapi = await http.get("/api/openapi.json")
        audit = await http.get(
            "/api/audit?before=9223372036854775808",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert 900 == login.json()["expires_in"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "nosniff" == page.headers["x-content-type-options"]
    assert [401, 401] == [metrics.status_code, openapi.status_code]
    # Past 64 bits: refused, where it was a 500.
    assert (422, "invalid_request") == (audit.status_code, audit.json()["error"])

    url = stack.hub_url.replace("http://", "ws://") + f"/api/ws?token={token}"
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            json.loads(await ws.recv())
    assert closed.value.rcvd is not None
    assert 4401 == closed.value.rcvd.code

    hub_dir = stack.data_dir / "hub"
    assert 0o700 == stat.S_IMODE(hub_dir.stat().st_mode)
    assert 0o600 == stat.S_IMODE((hub_dir / "hub.db").stat().st_mode)
