"""The tests' stand-in devices and edges on aiomqtt (over paho): a second implementation
of MQTT 5 beside Riverguard's own (``riverguard.mqtt_client``), so what our components
send and take is checked against another client on the real broker, as real devices
would be.
"""

from __future__ import annotations

import socket

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from riverguard.mqtt import SESSION_EXPIRY_S, BrokerSettings


def aiomqtt_client(
    broker: BrokerSettings,
    identifier: str | None = None,
    *,
    persistent: bool = False,
    will: aiomqtt.Will | None = None,
    keepalive: int = 15,
) -> aiomqtt.Client:
    """An unconnected aiomqtt client (MQTT 5, TCP_NODELAY, our login, TLS if the settings
    say so), for ``async with``."""
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
        tls_context=broker.ssl_context(),
    )
