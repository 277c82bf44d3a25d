"""The hub's settings (``RIVERGUARD_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from riverguard.settings import ComponentSettings


class HubSettings(ComponentSettings):
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Base URL edges use to fetch audio; defaults to http://{http_host}:{http_port}.
    public_url: str | None = None
    influx_url: str = "http://127.0.0.1:8086"
    influx_database: str = "riverguard"
    # Defaults to SQLite at {data_dir}/hub.db.
    database_url: str | None = None
    # JSON {"username": "password"} for the config's users, written by `riverguard up`;
    # the hub stores only argon2 hashes.
    users_file: Path | None = None
    # A duty shift, not an hour: a console must not log out at 3 a.m.
    token_ttl_s: int = 12 * 3600

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve()}/hub.db"
