"""MQTT client construction shared by the hub, the edges and the simulators.

Every client: MQTT 5, TCP_NODELAY (Nagle alone adds ~10 ms per hop, see
PERF-NOTES), a login (the broker never runs anonymous), and for agents a
persistent session so QoS 1 messages queued while they were away are
delivered when they come back.
"""

from __future__ import annotations

import asyncio
import random
import socket

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, ConfigDict, SecretStr

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
    will: aiomqtt.Will | None = None,
    keepalive: int = 15,
) -> aiomqtt.Client:
    """An unconnected client; enter it with ``async with``.

    ``persistent`` keeps the session (subscriptions and queued QoS 1 messages)
    on the broker while the client is away; it needs a stable ``identifier``.
    """
    properties = None
    if persistent:
        if identifier is None:
            raise ValueError("a persistent session needs a stable client identifier")
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password.get_secret_value(),
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=not persistent,
        properties=properties,
        will=will,
        keepalive=keepalive,
        timeout=10,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
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
