"""MQTT over TLS against a real Mosquitto with a TLS listener, certificates from trustme.

Our client and the simulators' aiomqtt client take their TLS from
``BrokerSettings``; the broker's certificate must chain to the configured CA,
name the host we connect to and be in date, and a plain client on the TLS
port gets nowhere. Each refusal says why.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
import trustme
from pydantic import ValidationError

from edge.agent import EdgeAgent
from riverguard.config import Config
from riverguard.mqtt import BrokerSettings, TlsSettingsError, make_client
from riverguard.mqtt_client import Client, MqttError, Subscription
from riverguard.settings import ComponentSettings
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.event_ids import derived_id
from riverguard.wire.models import Event
from simulators.fleet_config import fleet_config
from tests.aiomqtt_client import aiomqtt_client
from tests.edge.support import SITE, edge_settings, publisher, recording, running_edge
from tests.tls_mosquitto import TlsFiles, TlsMosquitto

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles(tmp_path_factory.mktemp("tls"), trustme.CA())


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, files: TlsFiles) -> Iterator[TlsMosquitto]:
    """Client certificates optional: a login is enough."""
    certfile, keyfile = files.leaf("server", files.ca.issue_cert("localhost", "127.0.0.1"))
    broker = TlsMosquitto(
        tmp_path_factory.mktemp("mosquitto-tls"),
        ca_file=files.ca_file,
        certfile=certfile,
        keyfile=keyfile,
    )
    broker.start()
    yield broker
    broker.stop()


def _own_broker(
    tmp_path: Path, files: TlsFiles, cert: trustme.LeafCert, **kw: bool
) -> TlsMosquitto:
    certfile, keyfile = files.leaf(f"server-{secrets.token_hex(3)}", cert)
    broker = TlsMosquitto(
        tmp_path / "mosquitto", ca_file=files.ca_file, certfile=certfile, keyfile=keyfile, **kw
    )
    broker.start()
    return broker


async def _round_trip(settings: BrokerSettings) -> None:
    topic = f"tls/{secrets.token_hex(4)}"
    async with make_client(settings) as client:
        await client.subscribe([Subscription(topic)])
        await client.publish(topic, b"over tls", qos=1)
        async with asyncio.timeout(10):
            (message,) = await client.next_batch(1)
        assert b"over tls" == message.payload


async def test_our_client_connects_and_publishes_over_tls(
    tls_broker: TlsMosquitto, files: TlsFiles
) -> None:
    await _round_trip(tls_broker.settings(files.ca_file))
    await _round_trip(tls_broker.settings(files.ca_file, host="localhost"))


async def test_the_simulators_aiomqtt_client_publishes_over_tls_to_ours(
    tls_broker: TlsMosquitto, files: TlsFiles
) -> None:
    settings = tls_broker.settings(files.ca_file)
    topic = f"tls/{secrets.token_hex(4)}"
    async with make_client(settings) as ours, aiomqtt_client(settings) as theirs:
        await ours.subscribe([Subscription(topic)])
        await theirs.publish(topic, b"from paho", qos=1)
        async with asyncio.timeout(10):
            (message,) = await ours.next_batch(1)
        assert b"from paho" == message.payload


# paho leaves the socket of a failed handshake for the garbage collector to close.
@pytest.mark.filterwarnings("ignore:Exception ignored in. <ssl.SSLSocket")
async def test_a_server_certificate_of_another_ca_is_refused(
    tls_broker: TlsMosquitto, files: TlsFiles
) -> None:
    other = TlsFiles(files.directory / "other", trustme.CA())
    other.directory.mkdir(exist_ok=True)
    settings = tls_broker.settings(other.ca_file)
    # The broker sends our CA's root along: refused as a self-signed root we do not trust.
    with pytest.raises(MqttError, match="certificate was refused: self-signed certificate"):
        async with make_client(settings):
            pass
    with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        async with aiomqtt_client(settings):
            pass


async def test_a_server_certificate_for_another_host_is_refused(
    tmp_path: Path, files: TlsFiles
) -> None:
    broker = _own_broker(tmp_path, files, files.ca.issue_cert("broker.example.net"))
    try:
        with pytest.raises(MqttError, match="certificate was refused: IP address mismatch"):
            async with make_client(broker.settings(files.ca_file)):
                pass
        with pytest.raises(MqttError, match="certificate was refused: Hostname mismatch"):
            async with make_client(broker.settings(files.ca_file, host="localhost")):
                pass
    finally:
        broker.stop()


async def test_an_expired_server_certificate_is_refused(tmp_path: Path, files: TlsFiles) -> None:
    now = datetime.now(UTC)
    expired = files.ca.issue_cert(
        "127.0.0.1", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    broker = _own_broker(tmp_path, files, expired)
    try:
        with pytest.raises(MqttError, match="certificate was refused: certificate has expired"):
            async with make_client(broker.settings(files.ca_file)):
                pass
    finally:
        broker.stop()


async def test_a_plain_client_on_the_tls_port_is_refused(tls_broker: TlsMosquitto) -> None:
    settings = tls_broker.settings(None, tls=False)
    with pytest.raises(MqttError, match=r"before the broker answered CONNECT.*TLS port"):
        async with make_client(settings):
            pass
    await wait_for(lambda: "wrong version number" in tls_broker.log(), what="the broker's log line")


async def test_a_client_certificate_is_sent_when_the_broker_requires_one(
    tmp_path: Path, files: TlsFiles
) -> None:
    broker = _own_broker(
        tmp_path, files, files.ca.issue_cert("127.0.0.1"), require_certificate=True
    )
    try:
        without = broker.settings(files.ca_file)
        # The broker's alert or its reset, whichever reaches us first.
        with pytest.raises(MqttError, match=r"requires a client certificate|certificate missing"):
            async with make_client(without):
                pass
        await wait_for(
            lambda: "peer did not return a certificate" in broker.log(),
            what="the broker's log line",
        )
        stranger = TlsFiles(tmp_path, trustme.CA())
        certfile, keyfile = stranger.leaf("stranger", stranger.ca.issue_cert("edge-danshui"))
        with pytest.raises(MqttError, match=r"refused our client certificate|certificate missing"):
            await _round_trip(broker.settings(files.ca_file, certfile=certfile, keyfile=keyfile))
        await wait_for(
            lambda: "certificate verify failed" in broker.log(), what="the broker's log line"
        )
        certfile, keyfile = files.leaf("edge-client", files.ca.issue_cert("edge-danshui"))
        await _round_trip(broker.settings(files.ca_file, certfile=certfile, keyfile=keyfile))
        # Key and certificate in one file.
        combined = tmp_path / "edge-combined.pem"
        combined.write_bytes(keyfile.read_bytes() + certfile.read_bytes())
        await _round_trip(broker.settings(files.ca_file, certfile=combined))
    finally:
        broker.stop()


async def test_a_tls_client_on_a_plain_port_is_an_mqtt_error(files: TlsFiles) -> None:
    """A plain port that answers TLS with nothing useful: an error, not a hang."""

    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # a ClientHello, not a CONNECT: hang up as Mosquitto does
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        settings = BrokerSettings(
            port=port, username="u", password="p", tls=True, ca_file=files.ca_file
        )
        client = Client(
            "127.0.0.1", port, username="u", password="p", tls=settings.ssl_context(), timeout=5
        )
        with pytest.raises(MqttError, match=f"127.0.0.1:{port}"):
            async with client:
                pass


def test_tls_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, files: TlsFiles
) -> None:
    certfile, keyfile = files.leaf("env-client", files.ca.issue_cert("env"))
    for name, value in {
        "USERNAME": "hub",
        "PASSWORD": "secret",
        "HOST": "broker.example.net",
        "PORT": "8883",
        "TLS": "true",
        "CA_FILE": str(files.ca_file),
        "CERTFILE": str(certfile),
        "KEYFILE": str(keyfile),
    }.items():
        monkeypatch.setenv(f"RIVERGUARD_BROKER__{name}", value)
    broker = ComponentSettings().broker  # from the environment
    assert (True, files.ca_file, certfile, keyfile) == (
        broker.tls,
        broker.ca_file,
        broker.certfile,
        broker.keyfile,
    )
    context = broker.ssl_context()
    assert context is not None
    assert context.check_hostname


def test_tls_files_without_tls_are_refused_not_ignored(files: TlsFiles) -> None:
    with pytest.raises(ValidationError, match="ca_file set but broker tls is off"):
        BrokerSettings(username="u", password="p", ca_file=files.ca_file)
    with pytest.raises(ValidationError, match="keyfile set without a certfile"):
        BrokerSettings(username="u", password="p", tls=True, keyfile=files.ca_file)
    assert BrokerSettings(username="u", password="p").ssl_context() is None


def test_an_unreadable_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    settings = BrokerSettings(username="u", password="p", tls=True, ca_file=missing)
    with pytest.raises(TlsSettingsError, match=f"ca_file {missing}"):
        make_client(settings)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(TlsSettingsError, match="unusable"):
        BrokerSettings(username="u", password="p", tls=True, ca_file=garbage).ssl_context()


async def test_an_edge_agent_relays_a_fence_report_over_tls(
    tls_broker: TlsMosquitto, files: TlsFiles, tmp_path: Path, example_config: Config
) -> None:
    """The edge builds its client from BrokerSettings: TLS settings are all it takes."""
    settings = tls_broker.settings(files.ca_file)
    agent = EdgeAgent(edge_settings(settings, tmp_path), example_config)
    events = topics.events(SITE)
    async with (
        recording(settings, events) as hub_view,
        running_edge(agent),
        publisher(settings) as device,
    ):
        fence = topics.field_report(SITE, "fence", "db-fence-01")
        await device.publish(fence, json.dumps(fence_report(1842, "z1")), qos=1)
        [payload] = await hub_view.wait_count(events, 1)
        assert "db-fence-01:1842" == derived_id(Event.model_validate_json(payload).id)


# The fleet in a process of its own: run in-process after the simulator suites, it
# once hung at this step (cause not found); alone it passes in under a second.
FLEET_SCRIPT = """
import asyncio, json, sys, tomllib
from riverguard.config import Config
from riverguard.mqtt import BrokerSettings
from simulators.fleet import Fleet, FleetOptions

settings = BrokerSettings.model_validate_json(sys.argv[1])
config = Config.model_validate(tomllib.loads(sys.argv[2]))

async def main() -> None:
    stop = asyncio.Event()
    fleet = Fleet(settings, config, FleetOptions(noise_scale=0, progress=lambda _: None))
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
    summary = await fleet.run(stop)
    print(json.dumps({**summary, "connections": fleet.stats.connections}))

asyncio.run(main())
"""


async def test_a_simulated_fleet_connects_over_tls(
    tls_broker: TlsMosquitto, files: TlsFiles
) -> None:
    """paho driven by the event loop (the fleet's links) speaks TLS too: every device
    connects and its online status reaches a subscriber."""
    toml = fleet_config(1, 12)
    config = Config.model_validate(tomllib.loads(toml))
    settings = tls_broker.settings(files.ca_file)
    revealed = {
        **settings.model_dump(mode="json"),
        "password": settings.password.get_secret_value(),
    }
    statuses = {
        topics.field_status(d.site, d.type, d.id)
        for d in config.devices
        if d.source == "generic" and d.type in ("fence", "camera")
    }
    async with make_client(settings) as watcher:
        await watcher.subscribe([Subscription("field/+/+/+/status")])
        fleet = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            FLEET_SCRIPT,
            json.dumps(revealed),
            toml,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert fleet.stdin is not None
        seen: set[str] = set()
        try:
            async with asyncio.timeout(30):
                while not statuses <= seen:
                    seen.update(m.topic for m in await watcher.next_batch(100))
        finally:
            # Closing its stdin is the fleet's stop.
            fleet.stdin.close()
            async with asyncio.timeout(30):
                out, _ = await fleet.communicate()
    # Its logs come first; the summary is the last line.
    summary = json.loads(out.decode().splitlines()[-1])
    assert summary["connections"] == summary["peak_connected"]
    assert {} == summary["errors"]
