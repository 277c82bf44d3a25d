"""The hub's settings (``RIVERGUARD_*`` environment variables)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Literal

import httpx
from pydantic import Field, SecretStr, model_validator
from sqlalchemy.engine import make_url

from hub.database import ENCRYPTED, SSLMODES, EngineURL, engine_url
from riverguard import plaintext
from riverguard.mqtt import BrokerSettings
from riverguard.settings import REPO_ROOT, ComponentSettings


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
    # Access tokens are short: one that leaks is good for minutes. The console renews
    # its token with the session's refresh token well before it runs out.
    token_ttl_s: int = Field(default=15 * 60, ge=30, le=24 * 3600)
    # A session (its refresh tokens) lasts a duty shift from the login, renewed or not:
    # a console must not log out at 3 a.m., and a stolen refresh token dies with it.
    session_ttl_s: int = Field(default=12 * 3600, ge=60, le=7 * 24 * 3600)
    # Login throttling (per hub process). Per user: this many failures within the window
    # are free, then each further attempt waits twice as long as the one before, up to
    # the cap (a cap, not a lock-out, so that an attacker cannot keep an officer out for
    # long). Per address: this many failures within the window block the address for
    # the rest of the window.
    login_user_free_failures: int = Field(default=5, ge=1)
    login_user_max_delay_s: float = Field(default=60.0, gt=0)
    login_address_failures: int = Field(default=20, ge=1)
    login_window_s: float = Field(default=900.0, gt=0)
    # Passwords hashed at once (argon2id takes argon2_memory_kib and a core each);
    # logins beyond this many waiting are refused with 429 at once.
    login_hash_concurrency: int = Field(default=1, ge=1)
    login_queue_max: int = Field(default=4, ge=0)
    # Who may read /metrics and the OpenAPI document (/api/openapi.json, and the
    # /api/docs page when "open"): anyone, a logged-in user (bearer token), or nobody.
    metrics_access: Literal["open", "login", "off"] = "login"
    openapi_access: Literal["open", "login", "off"] = "login"
    # Key of the signed links (exports, snapshots) that browsers load without a header;
    # None: a random key per hub process (links then die with the process, and replicas
    # behind one address need a shared key).
    link_secret: SecretStr | None = None
    # How long a signed link is good for.
    link_ttl_s: int = Field(default=60, ge=5, le=3600)
    # Key of the tokens in the links sent to responders (docs/responders.md), 16
    # characters or more. None: a random key per hub process, so the links in
    # messages already sent stop working when the hub restarts.
    responder_key: SecretStr | None = Field(default=None, min_length=16)
    # Largest request body (uploads have their own limit, hub/clips.py); larger ones are
    # refused with 413 before they are read.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # argon2id cost of stored password hashes (the library's defaults: RFC 9106 low-memory).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    # The broker session's client id; it is persistent, so one per hub instance.
    mqtt_client_id: str = "riverguard-hub"
    # MQTT keepalive of the hub's broker session (PROTOCOL 7.14): a broker silent for
    # 1.5 of these (a hung process, a cut link without a reset) is a lost link.
    mqtt_keepalive_s: int = Field(default=5, ge=1, le=600)
    # Largest ingest batch (messages committed in one transaction).
    ingest_batch_max: int = 500
    # Shortest time between the starts of two ingest batches: what arrives meanwhile
    # waits (up to this long) and joins the next batch.
    ingest_min_interval_s: float = 0.01
    # InfluxDB 2.x/3.x token for the v1 API; None for 1.x without auth.
    influx_token: SecretStr | None = None
    influx_batch_size: int = 5000
    # How long the InfluxDB writer lets committed events gather before a write.
    influx_linger_s: float = 0.2
    # Longest wait between retries while InfluxDB is down.
    influx_retry_cap_s: float = 5.0
    # How often each edge refreshes its status (the edges' RIVERGUARD_STATUS_INTERVAL_S):
    # an edge not heard from for two of these is shown unknown (PROTOCOL 7.13).
    edge_status_interval_s: float = Field(default=30.0, gt=0)
    # How often the hub pings InfluxDB and its state store for the consoles' link states.
    link_check_interval_s: float = Field(default=5.0, gt=0)
    # Messages a console may fall behind before it is closed with 4008.
    ws_queue_size: int = 2000
    # How often the hub sends a ``heartbeat`` on each console socket (PROTOCOL 7.17): a
    # console that hears nothing for three of these takes the hub for lost.
    ws_heartbeat_s: float = Field(default=5.0, gt=0, le=60)
    # Messages kept for consoles that resume with ?since=.
    ws_ring_size: int = 5000
    # A speaker that has not acknowledged an announcement this long after it was sent
    # is marked failed (no_ack).
    announce_ack_timeout_s: float = 10.0
    # Volume cap of routine announcements during a site's quiet hours (life-safety ignores it).
    quiet_volume_cap: int = 40
    # Routine announcements a site may get per window (life-safety ones are not counted).
    routine_limit: int = 6
    routine_window_s: float = 600.0
    # Send http speakers' announcements as G.711 µ-law 8 kHz (format "ulaw") rather than
    # WAV. Edges before the ".ulaw" pass-through (edge/http_speaker.py) fail on it: turn
    # this off while such edges remain.
    ulaw_for_http_speakers: bool = True
    # Device login provisioning (admin API, hub/api_devices.py): the broker's
    # administration login, the device logins file, and the broker address given to
    # devices (default: the broker's host as the hub reaches it).
    broker_admin: BrokerSettings | None = None
    device_logins_file: Path | None = None
    broker_public_host: str | None = None
    # The duty console's static files, served at /.
    console_dir: Path = REPO_ROOT / "console"

    # --- Deployment: TLS, credentials, plain text ---------------------------------
    # Serve HTTPS with this certificate chain and key (PEM; both or neither).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Plain HTTP, InfluxDB or PostgreSQL on an address other than loopback is refused
    # at start-up unless this is set (riverguard/plaintext.py).
    allow_plaintext: bool = False
    # InfluxDB 1.x login (auth-enabled), sent as HTTP basic auth; a user:password@ in
    # influx_url does the same.
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    # The CA that signed an https:// InfluxDB's certificate (a private CA); default:
    # the system's authorities.
    influx_ca_file: Path | None = None
    # PostgreSQL: the password when database_url has none (kept out of the URL, which
    # may be logged); database_url's ?sslmode= (disable, require, verify-ca,
    # verify-full) and ?sslrootcert= as in libpq, or this CA file for verify-full.
    database_password: SecretStr | None = None
    database_ca_file: Path | None = None

    @model_validator(mode="after")
    def _deployment(self) -> HubSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_cert_file is not None and self.tls_key_file is not None:
            # Read now, so that a missing, unreadable or mismatched file is one line and
            # exit status 78 at start-up, not a traceback in uvicorn restarted forever.
            try:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"tls_cert_file/tls_key_file cannot be used: {exc}") from exc
        for name in ("influx_ca_file", "database_ca_file"):
            path: Path | None = getattr(self, name)
            if path is not None and not os.access(path, os.R_OK):
                raise ValueError(f"{name} {path} cannot be read")
        influx = httpx.URL(self.influx_url)
        refusals = [
            plaintext.refusal(
                "the hub's HTTP",
                self.http_host,
                encrypted=self.tls_cert_file is not None,
                allowed=self.allow_plaintext,
                remedy="set tls_cert_file and tls_key_file, or listen on 127.0.0.1 behind a proxy",
            ),
            plaintext.refusal(
                "InfluxDB",
                influx.host,
                encrypted=influx.scheme == "https",
                allowed=self.allow_plaintext,
                remedy="use an https:// influx_url",
            ),
        ]
        database = make_url(self.database_url) if self.database_url else None
        if database is not None and database.get_backend_name() == "postgresql":
            sslmode = str(database.query.get("sslmode", "prefer"))
            if sslmode not in SSLMODES:
                raise ValueError(f"database_url: sslmode is one of {', '.join(SSLMODES)}")
            refusals.append(
                plaintext.refusal(
                    "PostgreSQL",
                    database.host or "localhost",  # no host: the Unix socket
                    encrypted=sslmode in ENCRYPTED,
                    allowed=self.allow_plaintext,
                    remedy="add ?sslmode=verify-full to database_url",
                )
            )
        plaintext.check(*refusals)
        return self

    @property
    def edge_silent_after_s(self) -> float:
        return 2 * self.edge_status_interval_s

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls_cert_file is not None else "http"
        return self.public_url or f"{scheme}://{self.http_host}:{self.http_port}"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve()}/hub.db"

    def store_url(self) -> EngineURL:
        """The state store's URL with its password and TLS, as the engine takes them."""
        password = self.database_password.get_secret_value() if self.database_password else None
        return engine_url(self.sqlalchemy_url, password=password, ca_file=self.database_ca_file)
