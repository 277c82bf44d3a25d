"""MQTT client construction shared by the hub and the edges.

Every client: MQTT 5 (``riverguard.mqtt_client``), TCP_NODELAY (Nagle alone
adds ~10 ms per hop, see PERF-NOTES), a login (the broker never runs
anonymous), and for agents a persistent session so QoS 1 messages queued
while they were away are delivered when they come back.
"""

from __future__ import annotations

import asyncio
import random

from pydantic import BaseModel, ConfigDict, SecretStr

from riverguard.mqtt_client import Client, Will

# How long the broker keeps a disconnected agent's session and its queue.
SESSION_EXPIRY_S = 7 * 24 * 3600


class BrokerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str = "127.0.0.1"
    port: int = 1883
    username: str
    password: SecretStr


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
