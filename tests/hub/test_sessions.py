"""Sessions in both state stores: a refresh token is good once, even when two uses
race; logout ends every token of the session (tests/hub/test_security.py has the rest)."""

from __future__ import annotations

import asyncio

import pytest

from tests.hub.conftest import PASSWORDS, RunningHub

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(both_stores: str | None) -> str | None:
    """These tests run on SQLite and on PostgreSQL."""
    return both_stores


async def test_two_racing_refreshes_of_one_token_give_one_new_session_token(
    running_hub: RunningHub,
) -> None:
    grant = (
        await running_hub.http.post(
            "/api/auth/token", data={"username": "viewer", "password": PASSWORDS["viewer"]}
        )
    ).json()
    body = {"refresh_token": grant["refresh_token"]}
    answers = await asyncio.gather(
        running_hub.http.post("/api/auth/refresh", json=body),
        running_hub.http.post("/api/auth/refresh", json=body),
    )
    assert [200, 401] == sorted(a.status_code for a in answers)
    [won] = [a.json() for a in answers if a.status_code == 200]
    headers = {"Authorization": f"Bearer {won['access_token']}"}
    assert 200 == (await running_hub.http.get("/api/me", headers=headers)).status_code

    assert 204 == (await running_hub.http.post("/api/auth/logout", headers=headers)).status_code
    after = await running_hub.http.post(
        "/api/auth/refresh", json={"refresh_token": won["refresh_token"]}
    )
    assert 401 == after.status_code
    assert 401 == (await running_hub.http.get("/api/me", headers=headers)).status_code
