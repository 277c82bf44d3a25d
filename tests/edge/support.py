"""Helpers for the edge and simulator tests: a running edge, an MQTT recorder, an audio server."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.server
import io
import json
import os
import sqlite3
import struct
import sys
import threading
import time
import wave
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from edge.agent import EdgeAgent
from edge.event_ids import EventIds
from edge.settings import EdgeSettings
from riverguard import testing as shared
from riverguard.config import Config
from riverguard.mqtt import BrokerSettings
from riverguard.services import ManagedProcess, free_port
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.models import Announce, AudioRef, Committed, Event
from riverguard.wire.times import utcnow
from tests.aiomqtt_client import aiomqtt_client

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "examples" / "danshui.toml"
SITE = "danshui-bridge"
# How long a test edge may take to stop once told to.
EDGE_STOP_S = 10.0


@contextlib.asynccontextmanager
async def background(
    coro: Coroutine[Any, Any, None], name: str
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``coro`` as a task for the block; cancel and await it afterwards.

    Unlike a TaskGroup around a ``yield``, a failing assertion in the block
    stays a plain AssertionError instead of an ExceptionGroup.
    """
    task = asyncio.create_task(coro, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def component_env(broker: BrokerSettings, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment ``riverguard up`` gives a component, for running one as a process."""
    return {
        **os.environ,
        "RIVERGUARD_CONFIG": str(EXAMPLE_CONFIG),
        "RIVERGUARD_BROKER__HOST": broker.host,
        "RIVERGUARD_BROKER__PORT": str(broker.port),
        "RIVERGUARD_BROKER__USERNAME": broker.username,
        "RIVERGUARD_BROKER__PASSWORD": broker.password.get_secret_value(),
        "RIVERGUARD_DATA_DIR": str(data_dir),
        "RIVERGUARD_LOG_JSON": "true",
        **extra,
    }


def riverguard_process(
    name: str, args: list[str], env: dict[str, str], log: Path
) -> ManagedProcess:
    """``python -m riverguard <args>`` as a child process we own."""
    return ManagedProcess(name, [sys.executable, "-m", "riverguard", *args], log, env=env, cwd=REPO)


def edge_settings(broker: BrokerSettings, data_dir: Path, **overrides: Any) -> EdgeSettings:
    return EdgeSettings(
        site=overrides.pop("site", SITE),
        broker=broker,
        data_dir=data_dir,
        config=EXAMPLE_CONFIG,
        **overrides,
    )


def keyed(agent: EdgeAgent, *derived: str) -> list[str]:
    """The ids a running agent gives the events whose derived ids are ``derived`` (7.10)."""
    return [agent.normalizer.ids.mint(event_id) for event_id in derived]


@contextlib.asynccontextmanager
async def running_edge(agent: EdgeAgent) -> AsyncIterator[EdgeAgent]:
    """The agent connected and subscribed for the block; stopped cleanly afterwards."""
    stop = asyncio.Event()
    async with background(agent.run(stop), f"test.edge[{agent.site.id}]") as task:
        await wait_for(lambda: agent.ready.is_set() or task.done(), what="edge ready")
        if task.done():
            task.result()  # raises why the edge died
        yield agent
        stop.set()
        try:
            async with asyncio.timeout(EDGE_STOP_S):
                await asyncio.shield(task)
        except TimeoutError:
            # Name what the edge still waits on: a task that ignores its cancel would
            # otherwise hang here until the test's timeout with every thread idle.
            for waiting in asyncio.all_tasks():
                waiting.print_stack(file=sys.stderr)
            raise AssertionError(f"the edge did not stop within {EDGE_STOP_S:g} s") from None


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Recorder:
    """Every message on some topic filters, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[Received] = []

    async def collect(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            assert isinstance(payload, bytes)
            self.messages.append(Received(message.topic.value, payload, bool(message.retain)))

    def on(self, topic: str) -> list[bytes]:
        return [m.payload for m in self.messages if m.topic == topic]

    def topics(self) -> list[str]:
        return [m.topic for m in self.messages]

    async def wait_count(self, topic: str, count: int, timeout: float = 10.0) -> list[bytes]:
        await wait_for(
            lambda: len(self.on(topic)) >= count,
            timeout=timeout,
            what=f"{count} message(s) on {topic}; saw {self.topics()}",
        )
        return self.on(topic)


@contextlib.asynccontextmanager
async def recording(
    broker: BrokerSettings, *filters: str, session: str | None = None
) -> AsyncIterator[Recorder]:
    """Record messages on ``filters``; with ``session``, in a persistent session of that id."""
    recorder = Recorder()
    async with aiomqtt_client(broker, session, persistent=session is not None) as client:
        granted = await client.subscribe([(topic_filter, 1) for topic_filter in filters])
        # A subscription the broker's access list refuses must fail the test, not record nothing.
        refused = [
            f for f, code in zip(filters, granted or (), strict=False) if _code(code) >= 0x80
        ]
        if refused:
            raise AssertionError(f"{broker.username} may not subscribe to {refused}")
        async with background(recorder.collect(client), "test.recorder"):
            yield recorder


def _code(code: object) -> int:
    value = getattr(code, "value", code)
    return value if isinstance(value, int) else 0x80


@contextlib.asynccontextmanager
async def publisher(broker: BrokerSettings) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt_client(broker) as client:
        yield client


def wav_bytes(duration_ms: int, rate: int = 8000) -> bytes:
    """A silent mono 16-bit WAV of the given length."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x00" * (rate * duration_ms // 1000))
    return buffer.getvalue()


class AudioServer:
    """A real HTTP server in a thread, serving files as the hub does (``/api/audio/<name>``).

    ``files``, ``requests`` and ``gated`` hold paths below ``/api/audio`` (``/w.wav``).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        # Requests for these paths wait until the gate opens (a slow hub, on demand).
        self.gated: set[str] = set()
        self.gate = threading.Event()
        files, requests, gated, gate = self.files, self.requests, self.gated, self.gate

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.removeprefix("/api/audio")
                requests.append(path)
                if path in gated:
                    gate.wait(10)
                body = files.get(path) if self.path.startswith("/api/audio/") else None
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.02,), name="test.audio"
        )

    def add(self, name: str, body: bytes) -> AudioRef:
        self.files[f"/{name}"] = body
        return AudioRef(
            url=f"{self.hub_url}/api/audio/{name}",
            sha256=hashlib.sha256(body).hexdigest(),
            format="wav",
            duration_ms=0,
        )

    @property
    def hub_url(self) -> str:
        """The public URL of the hub this server stands in for (an edge's ``hub_url``)."""
        return f"http://127.0.0.1:{self.port}"

    @contextlib.contextmanager
    def running(self) -> Iterator[AudioServer]:
        self.thread.start()
        try:
            yield self
        finally:
            self.gate.set()
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame marker."""
    index = 2
    while index < len(data):
        marker, length = data[index + 1], struct.unpack(">H", data[index + 2 : index + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return width, height
        index += 2 + length
    raise ValueError("no start-of-frame marker")


def announce(
    announcement_id: str, audio: AudioRef, *, expires_in_s: float = 60.0, repeat: int = 1
) -> Announce:
    return Announce(
        id=announcement_id,
        audio=audio,
        repeat=repeat,
        volume=80,
        requested_by="officer-li",
        expires_at=utcnow() + timedelta(seconds=expires_in_s),
    )


def config_with_http_speaker(
    config: Config, url: str = "http://127.0.0.1:9/audio", speaker: str = "db-spk-http"
) -> Config:
    """The example configuration plus an ``http`` speaker at danshui-bridge."""
    data = config.model_dump()
    data["devices"].append(
        {
            "id": speaker,
            "site": SITE,
            "type": "speaker",
            "driver": "http",
            "url": url,
            "zones": ["z1"],
        }
    )
    return Config.model_validate(data)


def config_with_local_speaker(config: Config) -> Config:
    """The example configuration plus a ``local`` speaker at danshui-bridge."""
    data = config.model_dump()
    data["devices"].append(
        {"id": "db-spk-local", "site": SITE, "type": "speaker", "driver": "local", "zones": ["z1"]}
    )
    return Config.model_validate(data)


class Committer:
    """Acts as the hub: keeps every event id it receives and commits them (PROTOCOL 3.3).

    ``deliveries`` is every event received, in order (duplicates included, as
    at-least-once delivery allows); ``stored`` is what an idempotent store
    keeps: each id once, with how often it came. It reconnects forever, by
    default in a persistent session (the broker queues events while it is away).
    """

    def __init__(
        self,
        broker: BrokerSettings,
        site: str,
        session: str = "test-hub",
        *,
        persistent: bool = True,
    ) -> None:
        self.broker = broker
        self.site = site
        self.session = session
        self.persistent = persistent
        self.deliveries: list[str] = []
        self.stored: dict[str, int] = {}
        self.ready = asyncio.Event()
        self._uncommitted: list[str] = []

    async def run(self, commit_every_s: float = 0.05) -> None:
        while True:
            try:
                client = aiomqtt_client(self.broker, self.session, persistent=self.persistent)
                async with client:
                    await client.subscribe(topics.events(self.site), qos=1)
                    self.ready.set()
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._collect(client), name="test.hub.collect")
                        tg.create_task(self._commit(client, commit_every_s), name="test.hub.commit")
            except* aiomqtt.MqttError:
                self.ready.clear()
                await asyncio.sleep(0.2)  # reconnect pause, not a wait for a condition

    async def _collect(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            assert isinstance(payload, bytes)
            event_id = Event.model_validate_json(payload).id
            self.deliveries.append(event_id)
            self.stored[event_id] = self.stored.get(event_id, 0) + 1
            self._uncommitted.append(event_id)

    async def _commit(self, client: aiomqtt.Client, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            if self._uncommitted:
                ids, self._uncommitted = self._uncommitted, []
                for start in range(0, len(ids), 5_000):
                    message = Committed(ids=ids[start : start + 5_000]).model_dump_json()
                    await client.publish(topics.committed(self.site), message, qos=1)

    def first_seen(self) -> list[str]:
        """Ids in the order they first arrived."""
        return list(dict.fromkeys(self.deliveries))


class FenceBurst:
    """A fence controller that publishes ``seq`` 1..N, retrying each report until the broker has it.

    Real controllers buffer reports while their broker is away; so does this.
    """

    def __init__(self, broker: BrokerSettings, site: str, device: str, zone: str) -> None:
        self.broker = broker
        self.topic = topics.field_report(site, "fence", device)
        self.zone = zone
        self.sent = 0  # reports the broker acknowledged
        self.retries = 0
        self._payloads: dict[int, str] = {}

    def payload(self, seq: int) -> str:
        """Report ``seq``, made once: a retry resends the same bytes, as devices do."""
        if seq not in self._payloads:
            # Alternating states: every report is a distinct, kept event.
            state = "breach" if seq % 2 else "clear"
            self._payloads[seq] = json.dumps(fence_report(seq, self.zone, state))
        return self._payloads[seq]

    async def run(self, count: int, per_s: float | None = None, batch: int = 50) -> None:
        """Publish ``count`` reports, at ``per_s`` a second or as fast as possible."""
        start = time.monotonic()
        while self.sent < count:
            try:
                async with aiomqtt_client(self.broker) as client:
                    client.pending_calls_threshold = 4 * batch
                    while self.sent < count:
                        seqs = range(self.sent + 1, min(count, self.sent + batch) + 1)
                        async with asyncio.TaskGroup() as tg:
                            for seq in seqs:
                                tg.create_task(client.publish(self.topic, self.payload(seq), qos=1))
                        self.sent = seqs[-1]
                        if per_s is not None:
                            ahead = start + self.sent / per_s - time.monotonic()
                            if ahead > 0:
                                await asyncio.sleep(ahead)  # pacing, not waiting for a condition
            except* aiomqtt.MqttError:
                self.retries += 1
                await asyncio.sleep(0.2)  # reconnect pause; the unacknowledged batch goes again


FRIGATE_CAMERA = "riverbank_east"  # the camera's name in Frigate


def config_with_frigate_camera(config: Config) -> Config:
    """The example configuration plus a Frigate camera at danshui-bridge watching z2.

    Frigate's zone ``water_edge`` is our ``z2``, where a person counts as
    ``water_entry``; Frigate's ``steps`` zone is not one of ours.
    """
    data = config.model_dump()
    data["devices"].append(
        {
            "id": "db-frigate-01",
            "site": SITE,
            "type": "camera",
            "source": "frigate",
            "source_ref": FRIGATE_CAMERA,
            "zones": ["z2"],
            "frigate_zones": {"water_edge": "z2"},
            "frigate_rules": {"z2": "water_entry"},
        }
    )
    return Config.model_validate(data)


def frigate_message(
    kind: str,
    event_id: str = "1722115265.123456-k3x9qa",
    *,
    camera: str = FRIGATE_CAMERA,
    label: str = "person",
    current_zones: list[str] | None = None,
    entered_zones: list[str] | None = None,
    has_snapshot: bool = False,
    false_positive: bool = False,
    frame_time: float = 1722115267.45,
) -> dict[str, Any]:
    """A ``frigate/events`` message in the shape Frigate 0.13 publishes (trimmed of nothing)."""
    after = shared.frigate_object(
        event_id,
        camera,
        label=label,
        frame_time=frame_time,
        end_time=frame_time + 4.0 if kind == "end" else None,
        current_zones=current_zones,
        entered_zones=entered_zones,
        has_snapshot=has_snapshot,
        false_positive=false_positive,
    )
    before = {**after, "current_zones": [], "entered_zones": [], "frame_time": frame_time - 0.2}
    return shared.frigate_message(kind, after, before)


def minted_ids(device: str, count: int, data_dir: Path) -> list[str]:
    """The ids the edge with ``data_dir`` gives ``device``'s seqs 1 to ``count`` (its key
    is there)."""
    ids = EventIds.load_or_create(data_dir)
    return [ids.mint(f"{device}:{seq}") for seq in range(1, count + 1)]


def outbox_rows(path: Path) -> int:
    """Events in the edge's SQLite outbox at ``path``."""
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def site_config(config: Config, **changes: Any) -> Config:
    """``config`` with the test site's settings changed."""
    data = config.model_dump()
    for site in data["sites"]:
        if site["id"] == SITE:
            site.update(changes)
    return Config.model_validate(data)
