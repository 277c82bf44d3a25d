"""The edge agent of one site: its field side and its uplink, wired together.

- ``edge.field_side``: the site's devices on the site broker (events into the
  outbox, device statuses, the speakers, the site's own warning);
- ``edge.uplink``: the hub through the central broker (events out of the outbox,
  commits, the hub's announce and stop commands, the edge's status);
- between them the outbox (events, on disk) and ``edge.outgoing`` (acks,
  statuses and late snapshots, in memory): the field side never waits for the
  uplink, so the site keeps guarding while its uplink is down.

With one broker (``field_broker`` unset, as ``riverguard up`` runs it) both
sides connect to it, each with its own session.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from datetime import datetime

import httpx
import structlog

from edge.errors import Rejected
from edge.field_side import FieldSide
from edge.metrics import EdgeMetrics
from edge.normalizer import Normalizer
from edge.outbox import MemoryOutbox, Outbox
from edge.outgoing import Outgoing
from edge.settings import EdgeSettings
from edge.speakers import Acks, SpeakerDriver
from edge.sqlite_outbox import SqliteOutbox
from edge.uplink import Uplink
from riverguard.config import Config
from riverguard.wire.times import utcnow

log = structlog.get_logger()


class EdgeAgent:
    def __init__(
        self,
        settings: EdgeSettings,
        config: Config,
        *,
        clock: Callable[[], datetime] = utcnow,
        outbox: Outbox | None = None,
        metrics: EdgeMetrics | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``tls``: the trust of its HTTPS client (``http_tls``), when the process shares one."""
        self.settings = settings
        self._tls = tls
        self.site = config.site(settings.site)
        self.devices = {device.id: device for device in config.devices_of(self.site.id)}
        self.metrics = metrics or EdgeMetrics()
        self.outbox: Outbox = outbox or _make_outbox(settings)
        self.outgoing = Outgoing(on_drop=self.metrics.uplink_dropped.inc)
        self.acks = Acks(self.site.id, clock, self.metrics, self.outgoing)
        self.uplink = Uplink(
            settings,
            self.site.id,
            clock=clock,
            outbox=self.outbox,
            outgoing=self.outgoing,
            metrics=self.metrics,
            announce=self._announce,
            stop_speaker=self._stop_speaker,
            reject=self._reject,
            on_ready_change=self._ready_changed,
        )
        self.field = FieldSide(
            settings,
            self.site,
            self.devices,
            clock=clock,
            outbox=self.outbox,
            outgoing=self.outgoing,
            acks=self.acks,
            metrics=self.metrics,
            hand_over=self.uplink.hand_over,
            hub_unreachable=lambda: self.uplink.hub_unreachable,
            on_ready_change=self._ready_changed,
        )
        # Set while both sides are connected; tests and the supervisor wait on it.
        self.ready = asyncio.Event()
        self._name = f"edge[{self.site.id}]"

    # What the health endpoint and the tests read.

    @property
    def speakers(self) -> dict[str, SpeakerDriver]:
        return self.field.speakers

    @property
    def normalizer(self) -> Normalizer:
        return self.field.normalizer

    @property
    def devices_offline(self) -> set[str]:
        return self.field.devices_offline

    @property
    def hub_silent(self) -> bool:
        return self.uplink.hub_silent

    @property
    def hub_takes_batches(self) -> bool:
        return self.uplink.hub_takes_batches

    @property
    def audio_base_url(self) -> str | None:
        return self.field.audio_base_url

    @audio_base_url.setter
    def audio_base_url(self, url: str | None) -> None:
        self.field.audio_base_url = url

    async def run(self, stop: asyncio.Event) -> None:
        """Run both sides until ``stop`` is set; return after a clean shutdown."""
        await self.outbox.open()
        try:
            async with self._http() as http:
                await self.field.open(http)
                async with asyncio.TaskGroup() as tg:
                    writer = tg.create_task(self.outbox.run(), name=f"{self._name}.outbox")
                    sides = [
                        tg.create_task(self.field.run(stop), name=f"{self._name}.field"),
                        tg.create_task(self.uplink.run(stop), name=f"{self._name}.uplink"),
                    ]
                    # Both return once ``stop`` is set; one that fails takes the other down.
                    await asyncio.wait(sides)
                    writer.cancel()
        finally:
            self.ready.clear()
            await self.field.close()
            await self.outbox.close()

    def _http(self) -> httpx.AsyncClient:
        verify = self._tls or http_tls(self.settings)
        return httpx.AsyncClient(timeout=self.settings.http_timeout_s, verify=verify)

    def _reject(self, exc: Rejected, topic: str) -> None:
        self.field.reject(exc, topic)  # one count and log line for both sides

    def _ready_changed(self) -> None:
        if self.field.ready.is_set() and self.uplink.ready.is_set():
            self.ready.set()
        else:
            self.ready.clear()

    # The hub's commands reach the speakers, which the field side owns.

    async def _announce(self, speaker_id: str, payload: bytes) -> None:
        await self.field.announce(speaker_id, payload)

    async def _stop_speaker(self, speaker_id: str, payload: bytes) -> None:
        await self.field.stop(speaker_id, payload)


def http_tls(settings: EdgeSettings) -> ssl.SSLContext:
    """Whom the edge's HTTPS client trusts: httpx's authorities or, with
    ``hub_ca_file`` (the hub's certificate from a private CA), the system's and that CA.

    Built once per process and shared by its sites: loading the authorities takes
    30-80 ms of CPU and about a megabyte, which 200 sites would pay 200 times.
    """
    if settings.hub_ca_file is None:
        return httpx.create_ssl_context()
    # The system's authorities (for speakers that serve a public certificate) and the hub's.
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=settings.hub_ca_file)
    return context


def _make_outbox(settings: EdgeSettings) -> Outbox:
    if settings.outbox == "memory":
        return MemoryOutbox(settings.outbox_limit)
    path = settings.outbox_path or settings.data_dir / "outbox.sqlite3"
    return SqliteOutbox(path, settings.outbox_limit)
