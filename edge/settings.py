"""The edge agent's settings (``RIVERGUARD_*`` environment variables)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from edge.errors import SitesRefused
from riverguard import broker_acl, plaintext
from riverguard.mqtt import BrokerSettings
from riverguard.settings import ComponentSettings


class EdgeSettings(ComponentSettings):
    """``broker`` (``RIVERGUARD_BROKER__*``) is the central broker, the uplink to the
    hub; ``field_broker`` (``RIVERGUARD_FIELD_BROKER__*``) the site's own broker, where
    its devices publish. Without ``field_broker`` both sides use ``broker``."""

    site: str
    field_broker: BrokerSettings | None = None
    # The hub's public URL (its RIVERGUARD_PUBLIC_URL): announcement audio is fetched
    # from under it only. Unset, the edge plays no announcement from the hub.
    hub_url: str | None = None
    # Routine announcements during a site's quiet hours play at most this loud when the
    # site sets no quiet_volume_cap: the hub's setting of the same name, applied again.
    quiet_volume_cap: int = Field(default=40, ge=0, le=100)
    # Resend an event the hub has not committed after this long (PROTOCOL 3.3).
    commit_timeout_s: float = Field(default=5.0, gt=0)
    # Pace of resends, so a backlog after an outage does not flood the broker.
    resend_per_s: int = Field(default=500, ge=1)
    # Uncommitted events kept; the oldest non-critical go first when it is full.
    outbox_limit: int = Field(default=100_000, ge=1)
    # "sqlite" survives restarts and kill -9; "memory" is for tests and experiments.
    outbox: Literal["sqlite", "memory"] = "sqlite"
    # Default: <data_dir>/outbox.sqlite3.
    outbox_path: Path | None = None
    # How often the retained edge status is refreshed (with the outbox size).
    status_interval_s: float = Field(default=30.0, gt=0)
    http_timeout_s: float = Field(default=10.0, gt=0)
    # The audio cache's bound; least recently used clips go first (not the site's warning).
    audio_cache_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    # A device time further from the edge clock than these is replaced by the edge's
    # (kept in attrs.device_ts); behind is looser, as buffered reports arrive late.
    clock_ahead_max_s: float = Field(default=60.0, gt=0)
    clock_behind_max_s: float = Field(default=24 * 3600.0, gt=0)
    # A speaker that has not said "playing" this long after "play" failed the announcement.
    speaker_response_timeout_s: float = Field(default=10.0, gt=0)
    # ... and one that has not said "done" within duration * repeat plus this margin.
    speaker_done_margin_s: float = Field(default=10.0, ge=0)
    # Serve GET /healthz and GET /metrics on <metrics_host>:<port> when set (0: any free port).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Where the site's speakers fetch audio the edge serves itself (the local
    # warning); default http://<metrics_host>:<metrics_port>.
    audio_base_url: str | None = None
    # A device whose last status said online and that sent none for this long is
    # reported offline; 0 turns it off (devices that never repeat their status).
    device_offline_after_s: float = Field(default=0.0, ge=0)
    # The ``local`` speaker driver: the ALSA device it plays on ("null" discards the
    # sound: a machine without a sound card) and the ffmpeg it plays with.
    local_audio_device: str = Field(default="default", min_length=1)
    local_audio_player: str = Field(default="ffmpeg", min_length=1)

    # --- Deployment: TLS, plain text ---------------------------------------------
    # The /healthz, /metrics and local-warning HTTP server has no TLS (the site's
    # speakers fetch the warning from it): on an address other than loopback it is
    # refused at start-up unless this is set (riverguard/plaintext.py).
    allow_plaintext: bool = False
    # The CA that signed the hub's HTTPS certificate (a private CA), for fetching
    # announcement audio; default: the system's authorities.
    hub_ca_file: Path | None = None

    @property
    def field_side_broker(self) -> BrokerSettings:
        """The broker the site's devices publish to (the central one when not set)."""
        return self.field_broker or self.broker

    @model_validator(mode="after")
    def _deployment(self) -> EdgeSettings:
        if self.hub_ca_file is not None and not os.access(self.hub_ca_file, os.R_OK):
            raise ValueError(f"hub_ca_file {self.hub_ca_file} cannot be read")
        if self.metrics_port is not None:
            plaintext.check(
                plaintext.refusal(
                    "the edge's health and audio HTTP",
                    self.metrics_host,
                    encrypted=False,
                    allowed=self.allow_plaintext,
                    remedy="listen on 127.0.0.1",
                )
            )
        return self


def settings_for_sites(sites: Sequence[str], logins_file: Path) -> list[EdgeSettings]:
    """Each site's settings when one process serves several (``riverguard edge --site A
    --site B --logins FILE``).

    Every site keeps what a process of its own would have: its login ``edge-<site>``
    with its password from ``logins_file`` (``{"edge-A": "...", ...}``, as ``riverguard
    broker-logins`` writes ``logins.json``), hence its client ids and access list on the
    broker, and its data (outbox, event id key, audio) under ``<data_dir>/edge-<site>``.
    What would be shared between the sites is refused: one field broker login, one
    client certificate, one outbox file, one audio URL.
    """
    if len(set(sites)) != len(sites):
        raise SitesRefused(f"a site is named twice: {sorted(sites)}")
    try:
        logins = json.loads(logins_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SitesRefused(f"the logins file {logins_file} cannot be read: {exc}") from None
    if not isinstance(logins, dict):
        raise SitesRefused(f"the logins file {logins_file} is not a JSON object")

    def password(site: str) -> str:
        login = broker_acl.edge_username(site)
        found = logins.get(login)
        if not isinstance(found, str) or not found:
            raise SitesRefused(f"{logins_file} has no password for {login}")
        return found

    passwords = {site: password(site) for site in sites}
    first = broker_acl.edge_username(sites[0])
    base = EdgeSettings(site=sites[0], broker={"username": first, "password": passwords[sites[0]]})
    shared = [
        name
        for name, value in (
            ("RIVERGUARD_FIELD_BROKER", base.field_broker),
            ("RIVERGUARD_BROKER__CERTFILE", base.broker.certfile),
            ("RIVERGUARD_OUTBOX_PATH", base.outbox_path),
            ("RIVERGUARD_AUDIO_BASE_URL", base.audio_base_url),
        )
        if value is not None
    ]
    if shared:
        raise SitesRefused(
            f"{', '.join(shared)} would be shared by the sites of one process:"
            " run a process per site for these"
        )
    # Read and checked once, then copied per site with what differs (reading the
    # environment again would cost 200 sites 5 s of CPU for the same answer).
    return [
        base.model_copy(
            update={
                "site": site,
                "broker": base.broker.model_copy(
                    update={
                        "username": broker_acl.edge_username(site),
                        "password": SecretStr(password),
                    }
                ),
                "data_dir": base.data_dir / broker_acl.edge_username(site),
            }
        )
        for site, password in passwords.items()
    ]
