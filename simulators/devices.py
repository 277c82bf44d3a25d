"""Simulated fence controllers and AI cameras (PROTOCOL 1.1, 1.2, 1.4).

Each device has its own MQTT connection with a last will ``{"online": false}``
on its retained status topic, as real devices do, and a per-device ``seq``.
Online, it reports its battery and signal strength, and ``heartbeat`` repeats
that status periodically as battery-powered controllers do.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from contextlib import suppress
from types import TracebackType
from typing import Any, ClassVar, Self

import structlog

from riverguard.mqtt import BrokerSettings, make_client
from riverguard.mqtt_client import MqttError, Will
from riverguard.testing import TINY_JPEG, camera_report, fence_report
from riverguard.wire import topics
from riverguard.wire.models import DeviceType

log = structlog.get_logger()

OFFLINE = json.dumps({"online": False})
SEQ_MODULUS = 2**31


def initial_seq() -> int:
    """A starting ``seq`` above any a previous run of this simulator used.

    Counting tenths of seconds since the epoch: a restarted simulator does not
    repeat the sequence numbers the edge still remembers, as long as the
    previous run sent fewer than ten reports a second on average.
    """
    return int(time.time() * 10) % SEQ_MODULUS


class SimulatedDevice:
    device_type: ClassVar[DeviceType]

    def __init__(
        self, broker: BrokerSettings, site: str, device: str, seq_start: int | None = None
    ) -> None:
        self.site = site
        self.device = device
        self.seq = initial_seq() if seq_start is None else seq_start
        # Plausible vitals of a solar-buffered controller on a riverbank.
        self.battery = round(random.uniform(0.55, 0.98), 2)
        self.rssi = random.randint(-85, -55)
        status_topic = topics.field_status(site, self.device_type, device)
        self.client = make_client(broker, will=Will(status_topic, OFFLINE, qos=1, retain=True))
        self.log = log.bind(site=site, device=device)

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        await self.publish_status(online=True)
        return self

    async def heartbeat(self, interval_s: float) -> None:
        """Repeat the online status every ``interval_s``, with slowly changing vitals."""
        while True:
            await asyncio.sleep(interval_s)
            self.battery = max(0.05, round(self.battery - random.uniform(0.0, 0.002), 3))
            self.rssi = max(-100, min(-40, self.rssi + random.randint(-2, 2)))
            await self.publish_status(online=True)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Leaving cleanly means no last will: say offline ourselves.
        with suppress(MqttError):
            await self.publish_status(online=False)
        await self.client.__aexit__(exc_type, exc, tb)

    async def publish_status(self, *, online: bool) -> None:
        """The retained status; online, with the device's battery and signal strength."""
        status: dict[str, Any] = {"online": online}
        if online:
            status["battery"] = self.battery
            status["rssi"] = self.rssi
        await self.client.publish(
            topics.field_status(self.site, self.device_type, self.device),
            json.dumps(status),
            qos=1,
            retain=True,
        )

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) % SEQ_MODULUS
        return self.seq

    async def publish_report(self, payload: dict[str, Any]) -> None:
        await self.client.publish(
            topics.field_report(self.site, self.device_type, self.device),
            json.dumps(payload),
            qos=1,
        )


class FenceSim(SimulatedDevice):
    device_type = "fence"

    async def report(self, zone: str, state: str = "breach") -> dict[str, Any]:
        """Publish one fence report; returns the payload sent."""
        payload = fence_report(self.next_seq(), zone, state)
        await self.publish_report(payload)
        self.log.info("fence report", zone=zone, state=state, seq=payload["seq"])
        return payload


class CameraSim(SimulatedDevice):
    device_type = "camera"

    def __init__(
        self,
        broker: BrokerSettings,
        site: str,
        device: str,
        seq_start: int | None = None,
        snapshot: bytes = TINY_JPEG,
    ) -> None:
        super().__init__(broker, site, device, seq_start)
        # What this camera attaches by default (see simulators.snapshot).
        self.snapshot = snapshot

    async def detect(
        self,
        zone: str,
        rule: str = "water_entry",
        confidence: float = 0.91,
        snapshot: bytes | None = None,
        *,
        attach: bool = True,
    ) -> dict[str, Any]:
        """Publish one detection of a person; returns the payload sent.

        With ``attach`` the report carries ``snapshot``, or the camera's own.
        """
        jpeg = (snapshot or self.snapshot) if attach else None
        payload = camera_report(
            self.next_seq(), zone, rule=rule, confidence=confidence, snapshot=jpeg
        )
        await self.publish_report(payload)
        self.log.info(
            "camera detection", zone=zone, rule=rule, seq=payload["seq"], snapshot=jpeg is not None
        )
        return payload
