"""Real receivers for notification tests: an HTTP server on a free port that keeps
what it was sent, and the same server behind an HTTPS proxy that answers for a
public host (a WeCom or DingTalk robot endpoint) with a certificate from a test
CA, so an unmodified client speaks its real protocol to its real host name.

HTTP is parsed by h11 (the parser under httpx), one request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import h11

from riverguard.services import free_port


@dataclass(frozen=True)
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    # The host:port a client asked the proxy to CONNECT to, when it came through one.
    tunnel: str | None = None


@dataclass
class HttpReceiver:
    """Answers every request with ``status`` and ``answer``; while ``hold`` is set
    it answers nothing until ``release`` is set (a hung server)."""

    status: int = 200
    answer: bytes = b'{"errcode":0,"errmsg":"ok"}'
    hold: bool = False
    # Terminate TLS for a CONNECT tunnel with this context (the proxy's role).
    tunnel_tls: ssl.SSLContext | None = None
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            tunnel = None
            request = await _read_request(reader)
            if request is None:
                return
            if request.method == "CONNECT" and self.tunnel_tls is not None:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await writer.start_tls(self.tunnel_tls)
                tunnel = request.target
                request = await _read_request(reader)
                if request is None:
                    return
            self.received.append(
                Received(request.method, request.target, request.headers, request.body, tunnel)
            )
            self.arrived.set()
            if self.hold:
                await self.release.wait()
            head = (
                f"HTTP/1.1 {self.status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(self.answer)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + self.answer)
            await writer.drain()
        except (ConnectionError, ssl.SSLError, h11.RemoteProtocolError):
            # A client that gave up (a timeout) or broke the protocol: nothing to answer.
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


@dataclass(frozen=True)
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    connection = h11.Connection(h11.SERVER)
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            connection.receive_data(data)
            if not data and request is None:
                return None
            continue
        if isinstance(event, h11.Request):
            request = event
            if event.method == b"CONNECT":
                break
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    if request is None:
        return None
    return _Request(
        request.method.decode(),
        request.target.decode(),
        {name.decode().lower(): value.decode() for name, value in request.headers},
        bytes(body),
    )


@contextlib.asynccontextmanager
async def http_receiver(
    receiver: HttpReceiver | None = None, port: int | None = None
) -> AsyncIterator[HttpReceiver]:
    """A receiver listening on ``port`` (default: a free one) for the block."""
    receiver = receiver or HttpReceiver()
    receiver.port = port or free_port()
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", receiver.port)
    try:
        yield receiver
    finally:
        # A held request is let go so its connection closes before the server does.
        receiver.release.set()
        server.close()
        await server.wait_closed()


@contextlib.contextmanager
def http_receiver_in_thread(receiver: HttpReceiver | None = None) -> Iterator[HttpReceiver]:
    """A receiver on a loop of its own in a thread: it answers while the test's loop is
    kept busy (as a responder's receiver on another machine would)."""
    receiver = receiver or HttpReceiver()
    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = Future()

    async def serve() -> None:
        stop = asyncio.Event()
        async with http_receiver(receiver):
            started.set_result((asyncio.get_running_loop(), stop))
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="test.receiver")
    thread.start()
    loop, stop = started.result(timeout=10)
    try:
        yield receiver
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
