"""An edge with a broker of its site's own: the site warns and keeps every event while its
uplink to the central broker is cut, and the hub hears everything, in order, after.

Two real Mosquittos (the site's and the central one); the uplink runs through a TCP
forwarder of the test's, which drops every connection while the cable is "cut". The
two-machine version, with TLS and network namespaces, is tests/deploy/test_two_hosts.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import httpx
import pytest

from edge.agent import EdgeAgent
from edge.health import HealthServer
from edge.sites import ServedSite
from riverguard.config import Config
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.models import AnnouncementAck
from simulators.speaker import SimulatedSpeaker
from tests.conftest import Broker, broker_for
from tests.edge.support import (
    SITE,
    Committer,
    background,
    edge_settings,
    publisher,
    recording,
    running_edge,
    site_config,
)

pytestmark = pytest.mark.integration

SPEAKER = "db-spk-01"
FENCE = topics.field_report(SITE, "fence", "db-fence-01")
ACKS = topics.speaker_ack(SITE, SPEAKER)
EVENTS = topics.events(SITE)


class Cable:
    """A TCP forwarder to ``port`` on loopback that can be cut (every connection
    dropped, new ones refused) and mended."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.port = 0
        self.cut = False
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Cable:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        self.pull()

    def pull(self) -> None:
        self.cut = True
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.transport.abort()
            return
        far_reader, far_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers += [writer, far_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pipe(reader, far_writer), pipe(far_reader, writer))


async def test_the_site_warns_and_keeps_its_events_with_the_uplink_cut(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    """``when_hub_unreachable`` with a 600 s grace: the edge knows its uplink is down and
    warns at once (else this waits out the test). Once the cable is mended the hub gets
    the breach, then the edge's warning acknowledged, then the speaker's states."""
    config = site_config(
        example_config, auto_warning="when_hub_unreachable", auto_warning_grace_s=600
    )
    central = own_broker
    with broker_for(tmp_path / "site-broker", config) as site:
        async with Cable(central.port) as cable:
            uplink = central.settings(f"edge-{SITE}").model_copy(update={"port": cable.port})
            settings = edge_settings(
                uplink, tmp_path / "edge", field_broker=site.settings(f"edge-{SITE}")
            )
            agent = EdgeAgent(settings, config)
            server = HealthServer([ServedSite.of(agent)], 0)
            agent.audio_base_url = f"http://127.0.0.1:{server.port}"
            server.start()
            hub = Committer(central.settings("hub"), SITE)
            try:
                async with (
                    httpx.AsyncClient() as http,
                    recording(central.settings("hub"), EVENTS, ACKS) as view,
                    background(hub.run(), "test.hub"),
                ):
                    speaker = SimulatedSpeaker(site.settings("sim"), SITE, SPEAKER, http, speed=50)
                    async with background(speaker.run(), "test.speaker"), running_edge(agent):
                        await wait_for(speaker.ready.is_set, what="speaker ready")
                        await wait_for(hub.ready.is_set, what="hub subscribed")
                        cable.pull()
                        await wait_for(
                            lambda: not agent.uplink.ready.is_set(), what="the uplink lost"
                        )
                        async with publisher(site.settings("sim")) as fence:
                            await fence.publish(FENCE, json.dumps(fence_report(1, "z1")), qos=1)
                        await wait_for(lambda: len(speaker.played) == 1, what="warned")
                        assert 1 == len(agent.outbox)  # kept, on disk
                        assert [] == view.on(ACKS)  # nothing crossed the cut cable
                        assert {} == hub.stored
                        cable.cut = False  # mended
                        await view.wait_count(ACKS, 3)
                        await wait_for(lambda: 0 == len(agent.outbox), what="committed")
            finally:
                await asyncio.to_thread(server.stop)
    assert [1] == list(hub.stored.values())  # the breach, once
    acks = [AnnouncementAck.model_validate_json(p) for p in view.on(ACKS)]
    [warning] = speaker.played
    assert [
        (warning, "received", "edge-auto"),
        (warning, "playing", ""),
        (warning, "done", ""),
    ] == [(a.id, a.state, a.detail) for a in acks]
    order = [m.topic for m in view.messages]
    assert order.index(EVENTS) < order.index(ACKS)  # the breach reached the hub first
    value = agent.metrics.registry.get_sample_value(
        "riverguard_edge_auto_warnings_total", {"outcome": "played"}
    )
    assert 1.0 == value
