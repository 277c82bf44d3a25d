"""The HTTP attacks on the hub, each refused (docs/security.md, "HTTP API").

Logins throttled per user and per address, password hashing bounded, tokens short
and revocable, removed users disabled, no token in a URL, bodies refused before they
are read, security headers, /metrics and OpenAPI behind settings, private data
files, query times checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import stat
from pathlib import Path

import httpx
import pytest
import websockets

from hub.auth import LoginThrottle
from hub.clips import MAX_UPLOAD_BYTES
from riverguard.hub_session import HubSession
from riverguard.wire.socket_auth import subprotocols
from tests.conftest import EXAMPLE_CONFIG
from tests.hub.conftest import PASSWORDS, MakeSettings, RunningHub, run_hub

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


async def _login(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await http.post("/api/auth/token", data={"username": username, "password": password})


async def _audit(running: RunningHub, action: str) -> list[dict[str, object]]:
    response = await running.http.get(
        f"/api/audit?action={action}", headers=await running.auth("admin")
    )
    return list(response.json())


# --- login throttling ---------------------------------------------------------------


def test_the_throttle_backs_off_per_user_and_blocks_an_address_for_its_window() -> None:
    now = [1000.0]
    throttle = LoginThrottle(
        free=3, max_delay_s=8.0, address_limit=6, window_s=60.0, clock=lambda: now[0]
    )
    for _ in range(3):
        assert (0.0, "address") == throttle.wait_s("li", "10.0.0.1")
        throttle.failed("li", "10.0.0.1")
    # After the free failures: 1 s after the last, then 2, 4, 8, 8 (the cap).
    assert (1.0, "user") == throttle.wait_s("li", "10.0.0.9")
    delays = []
    for _ in range(5):
        now[0] += throttle.wait_s("li", "10.0.0.9")[0]
        throttle.failed("li", "10.0.0.9")
        delays.append(throttle.wait_s("li", "10.0.0.9")[0])
    assert [2.0, 4.0, 8.0, 8.0, 8.0] == delays
    # Another user from the first address: its sixth failure blocks it for the window.
    for _ in range(3):
        throttle.failed("wang", "10.0.0.1")
    wait, limit = throttle.wait_s("admin", "10.0.0.1")
    assert "address" == limit
    assert 0 < wait <= 60.0
    # A success clears the user's record, not the address's; the window clears both.
    throttle.succeeded("li")
    assert 0.0 == throttle.wait_s("li", "10.0.0.2")[0]
    now[0] += 61
    assert 0.0 == throttle.wait_s("admin", "10.0.0.1")[0]


async def test_fifty_wrong_passwords_in_a_row_do_not_let_the_right_one_through(
    running_hub: RunningHub,
) -> None:
    """The brute force of the report: 50 guesses, then the right password. After the
    free failures every attempt is refused at once with 429 and Retry-After (no
    password is even hashed), the right one too, and the throttling is audited."""
    statuses = []
    for i in range(50):
        response = await _login(running_hub.http, "officer-li", f"guess-{i}")
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert "throttled" == response.json()["error"]
    right = await _login(running_hub.http, "officer-li", PASSWORDS["officer-li"])

    assert {401, 429} == set(statuses)
    # Five free failures, and at most one more per backoff step that passed meanwhile.
    assert statuses.count(401) <= 7
    assert 429 == right.status_code
    throttled = await _audit(running_hub, "login_throttled")
    assert ["officer-li"] == [entry["target"] for entry in throttled]
    failed = await _audit(running_hub, "login_failed")
    assert statuses.count(401) == len(failed)


async def test_an_address_guessing_at_many_users_is_blocked(make_settings: MakeSettings) -> None:
    async with run_hub(make_settings(login_address_failures=3)) as running:
        for username in ("admin", "viewer", "nobody"):
            assert 401 == (await _login(running.http, username, "guess")).status_code
        # Even a right password of another user, from that address, waits out the window.
        blocked = await _login(running.http, "supervisor-wang", PASSWORDS["supervisor-wang"])
        assert (429, "throttled") == (blocked.status_code, blocked.json()["error"])
        assert 800 <= int(blocked.headers["retry-after"]) <= 900
        [entry] = [e for e in await _audit_as(running) if e["action"] == "login_throttled"]
        after = entry["after"]
        assert isinstance(after, dict)
        assert ("127.0.0.1", "address") == (after["address"], after["limit"])


async def _audit_as(running: RunningHub) -> list[dict[str, object]]:
    """The audit log read through the hub's store (every login from here is blocked)."""
    return [entry.shape() for entry in await running.hub.store.audit.find()]


async def test_parallel_bad_logins_hash_one_at_a_time_and_healthz_answers(
    make_settings: MakeSettings,
) -> None:
    """Eight parallel logins with a wrong password at argon2id's real cost (64 MiB
    each): one is hashed at a time, those that find the queue full are refused at once
    (429 busy), and /healthz answers meanwhile."""
    settings = make_settings(
        argon2_time_cost=3, argon2_memory_kib=65536, login_hash_concurrency=1, login_queue_max=4
    )
    async with run_hub(settings) as running:
        logins = [
            asyncio.create_task(_login(running.http, f"intruder-{i}", "guess"), name=f"t.{i}")
            for i in range(8)
        ]
        health = await running.http.get("/healthz")
        answers = await asyncio.gather(*logins)
        assert 200 == health.status_code
        assert 1 == running.hub.auth.hashing_peak
        codes = sorted((r.status_code, r.json()["error"]) for r in answers)
        assert {(401, "invalid_credentials"), (429, "busy")} >= set(codes)
        assert 5 >= sum(1 for code in codes if code[0] == 401)


# --- tokens: short, refreshed once, revoked ---------------------------------------------


async def test_access_tokens_are_short_and_a_refresh_token_is_good_once(
    running_hub: RunningHub,
) -> None:
    grant = (await _login(running_hub.http, "officer-li", PASSWORDS["officer-li"])).json()
    assert 900 == grant["expires_in"]
    assert 12 * 3600 == grant["refresh_expires_in"]

    renewed = await running_hub.http.post(
        "/api/auth/refresh", json={"refresh_token": grant["refresh_token"]}
    )
    again = await running_hub.http.post(
        "/api/auth/refresh", json={"refresh_token": grant["refresh_token"]}
    )
    old = await running_hub.http.get(
        "/api/me", headers={"Authorization": f"Bearer {grant['access_token']}"}
    )
    new = await running_hub.http.get(
        "/api/me", headers={"Authorization": f"Bearer {renewed.json()['access_token']}"}
    )

    assert 200 == renewed.status_code
    # The session keeps its end: a refresh does not extend it.
    assert renewed.json()["refresh_expires_in"] <= grant["refresh_expires_in"]
    assert (401, "unauthorized") == (again.status_code, again.json()["error"])
    assert 401 == old.status_code
    assert ("officer-li", 200) == (new.json()["username"], new.status_code)
    # An access token is not a refresh token.
    swapped = await running_hub.http.post(
        "/api/auth/refresh", json={"refresh_token": renewed.json()["access_token"]}
    )
    assert 401 == swapped.status_code


async def test_logout_revokes_the_session_and_closes_its_websocket(
    running_hub: RunningHub,
) -> None:
    grant = (await _login(running_hub.http, "viewer", PASSWORDS["viewer"])).json()
    headers = {"Authorization": f"Bearer {grant['access_token']}"}
    other = await running_hub.auth("viewer")
    async with running_hub.socket(grant["access_token"]) as ws:
        assert "hello" == json.loads(await ws.recv())["type"]
        logout = await running_hub.http.post("/api/auth/logout", headers=headers)
        assert 204 == logout.status_code
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await _drain(ws)
    assert closed.value.rcvd is not None
    assert (4401, "session ended") == (closed.value.rcvd.code, closed.value.rcvd.reason)
    assert 401 == (await running_hub.http.get("/api/me", headers=headers)).status_code
    refresh = await running_hub.http.post(
        "/api/auth/refresh", json={"refresh_token": grant["refresh_token"]}
    )
    assert 401 == refresh.status_code
    # Only that session: the same user's other login goes on.
    assert 200 == (await running_hub.http.get("/api/me", headers=other)).status_code
    assert ["viewer"] == [e["target"] for e in await _audit(running_hub, "logout")]


async def _drain(ws: websockets.ClientConnection) -> None:
    """Read until the hub closes the socket (30 s at most)."""
    async with asyncio.timeout(30):
        while True:
            await ws.recv()


async def test_a_user_removed_from_the_configuration_is_disabled(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings()
    async with run_hub(settings) as running:
        grant = (await _login(running.http, "officer-li", PASSWORDS["officer-li"])).json()
    config = tmp_path / "without-li.toml"
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    block = '[[users]]\nusername = "officer-li"\nname = "李值班员"\nrole = "officer"\n'
    assert block in text
    config.write_text(text.replace(block, ""), encoding="utf-8")
    restarted = settings.model_copy(update={"config": config})
    async with run_hub(restarted) as running:
        me = await running.http.get(
            "/api/me", headers={"Authorization": f"Bearer {grant['access_token']}"}
        )
        refresh = await running.http.post(
            "/api/auth/refresh", json={"refresh_token": grant["refresh_token"]}
        )
        password = await _login(running.http, "officer-li", PASSWORDS["officer-li"])
        failed = await _audit(running, "login_failed")
        ended = await _audit(running, "logout")
    assert (401, 401, 401) == (me.status_code, refresh.status_code, password.status_code)
    assert ["user disabled (not in the configuration)"] == [e["detail"] for e in failed]
    assert [("system", "officer-li")] == [(e["username"], e["target"]) for e in ended]


# --- no token in a URL -------------------------------------------------------------------


async def test_a_token_in_the_websocket_url_is_refused(running_hub: RunningHub) -> None:
    token = await running_hub.token("viewer")
    url = f"ws://127.0.0.1:{running_hub.settings.http_port}/api/ws?token={token}"
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert 4401 == closed.value.rcvd.code


async def test_the_websocket_takes_its_token_as_a_subprotocol_or_a_first_message(
    running_hub: RunningHub,
) -> None:
    token = await running_hub.token("viewer")
    base = f"ws://127.0.0.1:{running_hub.settings.http_port}/api/ws"
    async with websockets.connect(base, subprotocols=subprotocols(token)) as ws:
        assert "riverguard.v1" == ws.subprotocol
        assert "hello" == json.loads(await ws.recv())["type"]
    async with websockets.connect(base) as ws:
        await ws.send(json.dumps({"op": "auth", "token": token}))
        assert "hello" == json.loads(await ws.recv())["type"]
    for first in (json.dumps({"op": "auth", "token": "forged"}), json.dumps({"op": "ping"})):
        async with websockets.connect(base) as ws:
            await ws.send(first)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert 4401 == closed.value.rcvd.code


async def test_exports_and_snapshots_need_a_signed_link_not_a_token_in_the_url(
    running_hub: RunningHub,
) -> None:
    headers = await running_hub.auth("viewer")
    token = await running_hub.token("viewer")
    path = "/api/alarms/alm-nope/timeline"
    by_token = await running_hub.http.get(f"{path}?token={token}")
    made = await running_hub.http.post("/api/links", headers=headers, json={"path": path})
    url = made.json()["url"]
    by_link = await running_hub.http.get(url)
    used_again = await running_hub.http.get(url)
    # The link is for that path only, and its signature covers the user and expiry.
    elsewhere = await running_hub.http.get(url.replace("alm-nope", "alm-other"))
    tampered = await running_hub.http.get(re.sub(r"exp=(\d+)", r"exp=9\1", url))
    other_user = await running_hub.http.get(url.replace("u=viewer", "u=admin"))
    not_linkable = await running_hub.http.post(
        "/api/links", headers=headers, json={"path": "/api/audit"}
    )
    absolute = await running_hub.http.post(
        "/api/links", headers=headers, json={"path": "https://evil.example/api/events/x/snapshot"}
    )

    assert 401 == by_token.status_code
    assert "not accepted" in by_token.json()["detail"]
    assert 200 == made.status_code
    assert token not in url
    # Past the login: the alarm is unknown.
    assert (404, "not_found") == (by_link.status_code, by_link.json()["error"])
    # Single use: a link copied from a download history or a log is dead.
    assert (401, "invalid or expired link") == (
        used_again.status_code,
        used_again.json()["detail"],
    )
    assert [401, 401, 401] == [r.status_code for r in (elsewhere, tampered, other_user)]
    assert [422, 422] == [not_linkable.status_code, absolute.status_code]


# --- bodies refused before they are read ---------------------------------------------------


async def _raw_request(port: int, head: str, first: bytes) -> tuple[int, bytes]:
    """Send a request head and the first part of its body, then read the answer (the rest
    of the body is never sent: a server that waits for it would never answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode() + first)
        await writer.drain()
        async with asyncio.timeout(20):
            status_line = await reader.readline()
            rest = await reader.read(4096)
        return int(status_line.split()[1]), rest
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def _upload_head(port: int, length: int | None, token: str | None = None) -> str:
    lines = [
        "POST /api/clips HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: multipart/form-data; boundary=xyz",
    ]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return "\r\n".join(lines) + "\r\n\r\n"


async def test_an_anonymous_60_mb_upload_is_refused_before_its_body_is_read(
    running_hub: RunningHub,
) -> None:
    port = running_hub.settings.http_port
    # Declared too large: refused on its head alone, login or not.
    status, body = await _raw_request(port, _upload_head(port, 60 * 2**20), b"x" * 65536)
    assert 413 == status
    assert b"too_large" in body
    # Declared within the limit: the login is checked before any of it is read.
    status, body = await _raw_request(port, _upload_head(port, 9 * 2**20), b"x" * 65536)
    assert 401 == status
    assert b"unauthorized" in body
    # Streamed without a length: the same.
    status, _ = await _raw_request(port, _upload_head(port, None), b"10000\r\n" + b"x" * 65536)
    assert 401 == status


async def test_an_upload_declared_too_large_is_refused_before_it_is_read(
    running_hub: RunningHub,
) -> None:
    port = running_hub.settings.http_port
    token = await running_hub.token("supervisor-wang")
    status, body = await _raw_request(port, _upload_head(port, 60 * 2**20, token), b"x" * 65536)
    assert 413 == status
    assert b"too_large" in body
    # Any other route: the hub's general limit (1 MiB).
    head = (
        f"POST /api/announcements HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {2 * 2**20}\r\n\r\n"
    )
    status, _ = await _raw_request(port, head, b"{")
    assert 413 == status


async def test_a_streamed_upload_is_cut_off_at_the_limit(running_hub: RunningHub) -> None:
    """No Content-Length: the hub reads up to the limit, then answers 413 and stops."""
    port = running_hub.settings.http_port
    token = await running_hub.token("supervisor-wang")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    chunk = b"x" * 2**20
    sent = 0

    async def stream() -> None:
        nonlocal sent
        preamble = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        writer.write(_upload_head(port, None, token).encode())
        writer.write(b"%x\r\n%s\r\n" % (len(preamble), preamble))
        with contextlib.suppress(ConnectionError):
            while sent < 40 * 2**20:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                sent += len(chunk)

    sender = asyncio.create_task(stream(), name="test.stream")
    try:
        async with asyncio.timeout(60):
            status_line = await reader.readline()
    finally:
        sender.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await writer.wait_closed()
    assert 413 == int(status_line.split()[1])
    assert sent < 40 * 2**20
    assert MAX_UPLOAD_BYTES < 40 * 2**20
    assert 1 <= await running_hub.metric(
        "riverguard_hub_audio_rejected_total", 'reason="too_large"'
    )


# --- headers, settings, files, query values ------------------------------------------------


async def test_responses_carry_a_csp_without_inline_script_and_the_other_headers(
    running_hub: RunningHub,
) -> None:
    for path in ("/", "/api/me", "/healthz"):
        response = await running_hub.http.get(path)
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp, path
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "nosniff" == response.headers["x-content-type-options"]
        assert "no-referrer" == response.headers["referrer-policy"]


def test_the_console_has_no_inline_script_style_or_handler() -> None:
    """What the CSP would block: every script and style of the console is a file."""
    page = (REPO / "console" / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert "<style" not in page
    assert re.findall(r"\son[a-z]+=", page) == []
    assert re.findall(r"\sstyle=", page) == []
    for script in (REPO / "console").glob("*.js"):
        text = script.read_text(encoding="utf-8")
        assert re.findall(r"\sstyle=\"", text) == [], script.name
        assert re.findall(r"\son[a-z]+=\"", text) == [], script.name


async def test_metrics_and_openapi_need_a_login_by_default_and_can_be_off(
    make_settings: MakeSettings,
) -> None:
    defaults = make_settings()
    async with run_hub(defaults.model_copy(update={"metrics_access": "login"})) as running:
        headers = await running.auth("viewer")
        anonymous = [
            (await running.http.get(p)).status_code
            for p in ("/metrics", "/api/openapi.json", "/api/docs")
        ]
        logged_in = [
            (await running.http.get(p, headers=headers)).status_code
            for p in ("/metrics", "/api/openapi.json")
        ]
    assert [401, 401, 404] == anonymous
    assert [200, 200] == logged_in
    off = defaults.model_copy(update={"metrics_access": "off", "openapi_access": "off"})
    async with run_hub(off) as running:
        headers = await running.auth("admin")
        refused = [
            (await running.http.get(p, headers=headers)).status_code
            for p in ("/metrics", "/api/openapi.json")
        ]
    assert [404, 404] == refused
    assert "login" == type(defaults).model_fields["metrics_access"].default
    assert "login" == type(defaults).model_fields["openapi_access"].default


async def test_the_hubs_data_files_are_private(running_hub: RunningHub) -> None:
    data = running_hub.settings.data_dir
    # Something written, so that SQLite has its write-ahead log and shared memory.
    await running_hub.token("viewer")
    assert 0o700 == stat.S_IMODE(data.stat().st_mode)
    files = [data / name for name in ("hub.db", "hub.db-wal", "hub.db-shm")]
    assert {0o600} == {stat.S_IMODE(path.stat().st_mode) for path in files if path.exists()}
    assert (data / "hub.db").exists()
    assert (data / "hub.db-wal").exists()


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("/api/audit?before=9223372036854775808", 422),
        ("/api/audit?before=9223372036854775807", 200),
        ("/api/audit?from=&to=", 200),
        ("/api/audit?from=99999999999999999999999", 422),
        ("/api/audit?from=1969-12-31T23:59:59Z", 422),
        ("/api/alarms?since=", 200),
        ("/api/events?from=&to=&before=", 200),
        ("/api/events?from=9999-01-01T00:00:00Z", 200),
        ("/api/stats/events?from=&to=", 200),
        ("/api/announcements?since=", 200),
        ("/api/announcements?since=%C2%B2", 422),
    ],
)
async def test_query_times_and_ids_are_range_checked(
    running_hub: RunningHub, query: str, status: int
) -> None:
    """Out of range is 422 (``before`` past 64 bits was a 500); empty means not given;
    a far-future window of InfluxDB is simply empty."""
    response = await running_hub.http.get(query, headers=await running_hub.auth("admin"))
    assert status == response.status_code, response.text


async def test_an_api_route_answers_other_methods_itself_not_the_console(
    running_hub: RunningHub,
) -> None:
    headers = await running_hub.auth()
    options = await running_hub.http.request("OPTIONS", "/api/alarms", headers=headers)
    put = await running_hub.http.put("/api/sites", headers=headers)
    unknown = await running_hub.http.request("OPTIONS", "/api/nothing", headers=headers)
    console = await running_hub.http.request("OPTIONS", "/")
    assert (405, "GET") == (options.status_code, options.headers["allow"])
    assert (405, "method_not_allowed") == (put.status_code, put.json()["error"])
    assert (404, "not_found") == (unknown.status_code, unknown.json()["error"])
    assert 405 == console.status_code


async def test_a_tools_session_renews_a_refused_access_token_and_retries(
    running_hub: RunningHub,
) -> None:
    """Simulators and benchmarks run longer than an access token lives."""
    grant = (await _login(running_hub.http, "officer-li", PASSWORDS["officer-li"])).json()
    session = HubSession(running_hub.url, grant)
    session.access_token = "ran-out"
    async with httpx.AsyncClient(base_url=running_hub.url, auth=session, timeout=10) as http:
        me = await http.get("/api/me")
    assert (200, "officer-li") == (me.status_code, me.json()["username"])
    assert grant["refresh_token"] != session.refresh_token
