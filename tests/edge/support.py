"""Helpers for the edge and simulator tests: a running edge, an MQTT recorder, an audio server."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.server
import io
import os
import struct
import sys
import threading
import wave
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from edge.agent import EdgeAgent
from edge.settings import EdgeSettings
from riverguard.config import Config
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.services import ManagedProcess, free_port
from riverguard.testing import wait_for
from riverguard.wire.models import Announce, AudioRef
from riverguard.wire.times import utcnow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "examples" / "danshui.toml"
SITE = "danshui-bridge"


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
        await asyncio.wait_for(task, 10)


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
    async with make_client(broker, session, persistent=session is not None) as client:
        await client.subscribe([(topic_filter, 1) for topic_filter in filters])
        async with background(recorder.collect(client), "test.recorder"):
            yield recorder


@contextlib.asynccontextmanager
async def publisher(broker: BrokerSettings) -> AsyncIterator[aiomqtt.Client]:
    async with make_client(broker) as client:
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
    """A real HTTP server in a thread, serving files from a dict by path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        # Requests for these paths wait until the gate opens (a slow hub, on demand).
        self.gated: set[str] = set()
        self.gate = threading.Event()
        files, requests, gated, gate = self.files, self.requests, self.gated, self.gate

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                if self.path in gated:
                    gate.wait(10)
                body = files.get(self.path)
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
            url=f"http://127.0.0.1:{self.port}/{name}",
            sha256=hashlib.sha256(body).hexdigest(),
            format="wav",
            duration_ms=0,
        )

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


def config_with_http_speaker(config: Config) -> Config:
    """The example configuration plus an ``http`` speaker at danshui-bridge."""
    data = config.model_dump()
    data["devices"].append(
        {
            "id": "db-spk-http",
            "site": SITE,
            "type": "speaker",
            "driver": "http",
            "url": "http://127.0.0.1:9/audio",
            "zones": ["z1"],
        }
    )
    return Config.model_validate(data)
