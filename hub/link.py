"""The hub's side of the broker connection, for publishing from anywhere in the hub.

Ingest owns the connection (and its reconnect loop) and sets ``client`` while
connected; announcements and commit acknowledgements publish through here.
"""

from __future__ import annotations

from hub.errors import BrokerUnavailable
from riverguard.mqtt_client import Client, MqttError


class BrokerLink:
    def __init__(self) -> None:
        self.client: Client | None = None

    @property
    def connected(self) -> bool:
        return self.client is not None

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish and, for QoS 1, wait for the broker's PUBACK."""
        client = self.client
        if client is None:
            raise BrokerUnavailable("not connected to the broker")
        try:
            await client.publish(topic, payload, qos=qos)
        except MqttError as exc:
            raise BrokerUnavailable(f"publish to {topic} failed: {exc}") from exc
