"""MQTT client construction shared by the hub and the edges.

Every client: MQTT 5 (``riverguard.mqtt_client``), TCP_NODELAY (Nagle alone
adds ~10 ms per hop, see PERF-NOTES), a login (the broker never runs
anonymous), and for agents a persistent session so QoS 1 messages queued
while they were away are delivered when they come back.

TLS (``BrokerSettings.tls``): the broker's certificate is checked against
``ca_file`` (or the system's CAs) and must name ``host``; a client
certificate (``certfile``, ``keyfile``) is sent when the broker asks for one.
The same ``ssl.SSLContext`` serves our client and paho/aiomqtt ones.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from riverguard import plaintext
from riverguard.errors import RiverguardError
from riverguard.mqtt_client import Client, Will

# How long the broker keeps a disconnected agent's session and its queue.
SESSION_EXPIRY_S = 7 * 24 * 3600


class TlsSettingsError(RiverguardError):
    """The broker's TLS settings name files that cannot be used."""


class BrokerSettings(BaseModel):
    """Where and how to reach the broker: ``RIVERGUARD_BROKER__HOST``, ``__TLS``, ..."""

    model_config = ConfigDict(frozen=True)

    host: str = "127.0.0.1"
    port: int = 1883
    username: str
    password: SecretStr
    tls: bool = Field(default=False, description="Connect over TLS (the broker's TLS listener).")
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) the broker's certificate must chain to; "
        "unset: the system's trusted CAs.",
    )
    certfile: Path | None = Field(
        default=None, description="PEM client certificate, for brokers that require one."
    )
    keyfile: Path | None = Field(
        default=None, description="PEM key of the client certificate; unset: in certfile."
    )
    allow_plaintext: bool = Field(
        default=False,
        description="Allow plain MQTT to a broker that is not on loopback "
        "(riverguard/plaintext.py).",
    )

    def env(self, prefix: str = "RIVERGUARD_BROKER") -> dict[str, str]:
        """These settings as the environment a component reads them from (``prefix``:
        ``RIVERGUARD_BROKER`` or the edge's ``RIVERGUARD_FIELD_BROKER``)."""
        env = {
            f"{prefix}__HOST": self.host,
            f"{prefix}__PORT": str(self.port),
            f"{prefix}__USERNAME": self.username,
            f"{prefix}__PASSWORD": self.password.get_secret_value(),
        }
        if self.tls:
            env[f"{prefix}__TLS"] = "true"
            for name, value in (
                ("CA_FILE", self.ca_file),
                ("CERTFILE", self.certfile),
                ("KEYFILE", self.keyfile),
            ):
                if value is not None:
                    env[f"{prefix}__{name}"] = str(value)
        if self.allow_plaintext:
            env[f"{prefix}__ALLOW_PLAINTEXT"] = "true"
        return env

    @model_validator(mode="after")
    def _plain_text_stays_on_the_machine(self) -> Self:
        plaintext.check(
            plaintext.refusal(
                "the broker connection",
                self.host,
                encrypted=self.tls,
                allowed=self.allow_plaintext,
                remedy="set broker tls (and ca_file)",
            )
        )
        return self

    @model_validator(mode="after")
    def _tls_files_need_tls(self) -> Self:
        named = [
            name for name in ("ca_file", "certfile", "keyfile") if getattr(self, name) is not None
        ]
        if named and not self.tls:
            # A CA file given and plain MQTT used would look secure and not be.
            raise ValueError(f"broker {', '.join(named)} set but broker tls is off")
        if self.keyfile is not None and self.certfile is None:
            raise ValueError("broker keyfile set without a certfile")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for this broker (None without TLS): CA and host name checked."""
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file) if self.ca_file else None
            )
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.certfile is not None:
                context.load_cert_chain(
                    self.certfile, self.keyfile if self.keyfile is not None else None
                )
        except (OSError, ssl.SSLError) as exc:
            files = {"ca_file": self.ca_file, "certfile": self.certfile, "keyfile": self.keyfile}
            named = ", ".join(f"{key} {value}" for key, value in files.items() if value)
            raise TlsSettingsError(f"broker TLS files unusable ({named}): {exc}") from exc
        return context


def make_client(
    broker: BrokerSettings,
    identifier: str | None = None,
    *,
    persistent: bool = False,
    will: Will | None = None,
    keepalive: int = 15,
    manual_ack: bool = False,
) -> Client:
    """An unconnected client; enter it with ``async with``.

    ``persistent`` keeps the session (subscriptions and queued QoS 1 messages)
    on the broker while the client is away; it needs a stable ``identifier``.
    ``manual_ack``: QoS 1 messages are acknowledged only by ``Client.ack``.
    """
    if persistent and identifier is None:
        raise ValueError("a persistent session needs a stable client identifier")
    return Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password.get_secret_value(),
        identifier=identifier,
        clean_start=not persistent,
        session_expiry=SESSION_EXPIRY_S if persistent else 0,
        will=will,
        keepalive=keepalive,
        timeout=10,
        manual_ack=manual_ack,
        tls=broker.ssl_context(),
    )


class Backoff:
    """Capped, jittered exponential delays for reconnect loops."""

    def __init__(self, initial: float = 0.2, cap: float = 5.0) -> None:
        self.initial = initial
        self.cap = cap
        self.attempt = 0

    def reset(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.initial * 2.0**self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.5, 1.0)

    async def sleep(self) -> None:
        await asyncio.sleep(self.next_delay())
