"""A lean asyncio MQTT 5 client for the hot path: the edges and the hub.

Why not aiomqtt over paho: every event crosses two broker hops, and paho
spends ~150 us of Python per QoS 1 message each way (PERF-NOTES), which
capped the whole pipeline below 1,000 events/s on this machine. This client
parses what arrives in one pass per socket read, hands messages over in
batches (``next_batch``), writes the PUBACKs of one read in one write, and
publishes without a task or callback object per message.

What it does: MQTT 5 over TCP or TLS, QoS 0 and 1 both ways, retained messages, a
will, persistent sessions (clean start off plus a session expiry), subscription
options (noLocal), manual acknowledgement (a message is acknowledged only when
its owner says so), the broker's Receive Maximum for our QoS 1 publishes,
keepalive pings (a broker silent for 1.5 keepalives is a lost connection),
reading paused when the consumer falls behind, and writing bounded: a
publisher waits while the socket's buffer is above ``WRITE_BUFFER_HIGH`` (a
slow broker slows its publishers instead of growing our memory). What it
does not: QoS 2, topic aliases, AUTH, or reconnecting by itself: callers
enter ``async with client`` again, as they did with aiomqtt. Every failure of
the connection surfaces as ``MqttError``; bytes from the broker that are not
MQTT 5 (``mqtt_packets.ProtocolError``) close the connection with one.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self, cast

from riverguard import mqtt_packets as packets
from riverguard.mqtt_packets import Will

# Consumers read in batches; past this many unread messages, stop reading the socket
# (the broker queues for us), and read again once half of them are taken.
MAX_UNREAD = 20_000
# What we allow the broker to have in flight towards us unacknowledged.
OUR_RECEIVE_MAXIMUM = 65_535
# Automatic PUBACKs wait this long to go out together: one write (and one wake-up of
# the broker) every few ms instead of one per socket read, which was ~6 % of the hub's
# CPU at 1,000 messages/s. Lost with the connection, they make the broker send those
# messages again: duplicates, which every consumer of ours handles.
PUBACK_LINGER_S = 0.002
# How long a clean exit waits for the broker to answer its last PINGREQ.
EXIT_ROUND_TRIP_S = 1.0
# Unsent bytes a connection holds before its publishers wait for the socket to take them
# (and may go on once it is down to the low mark). Above the 64 KiB asyncio default so that
# a burst at 10,000 events/s does not stop at every few hundred messages.
WRITE_BUFFER_HIGH = 1024 * 1024
WRITE_BUFFER_LOW = 256 * 1024
# ``publish_many`` writes its messages in pieces of about this size, each once the last
# has left the buffer.
WRITE_CHUNK = 64 * 1024

__all__ = ["Client", "Message", "MqttError", "Subscription", "Will"]


class MqttError(Exception):
    """The broker connection failed, was refused, or was lost."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    # Which connection it came on: an acknowledgement only counts on that one.
    connection: int


@dataclass(frozen=True, slots=True)
class Subscription:
    topic: str
    qos: int = 1
    no_local: bool = False  # do not send us back what we publish ourselves


class _Protocol(asyncio.Protocol):
    """One TCP connection; hands everything to its client."""

    def __init__(self, client: Client, generation: int) -> None:
        self.client = client
        self.generation = generation
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] | None = None  # done once the transport is

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports (the hub runs on uvloop) are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        self.closed = asyncio.get_running_loop().create_future()
        self.transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH, low=WRITE_BUFFER_LOW)

    def pause_writing(self) -> None:
        self.client._writable_changed(self, False)

    def resume_writing(self) -> None:
        self.client._writable_changed(self, True)

    def data_received(self, data: bytes) -> None:
        self.client._received(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)
        self.client._lost(self, exc)


class Client:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        identifier: str | None = None,
        clean_start: bool = True,
        session_expiry: int = 0,
        will: Will | None = None,
        keepalive: int = 15,
        timeout: float = 10.0,
        manual_ack: bool = False,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        max_packet_size: int = packets.MAX_PACKET_SIZE,
    ) -> None:
        """``tls``: connect over TLS with this context (its CA, hostname check and
        client certificate); ``server_hostname``: the name the broker's certificate
        must carry, when it is not ``host``. ``max_packet_size``: the largest packet
        we take from the broker (told to it in CONNECT).
        """
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.identifier = identifier or ""
        self.clean_start = clean_start
        self.session_expiry = session_expiry
        self.will = will
        self.keepalive = keepalive
        self.timeout = timeout
        self.manual_ack = manual_ack
        self.tls = tls
        self.server_hostname = server_hostname
        self.max_packet_size = max_packet_size
        self._protocol: _Protocol | None = None
        self._generation = 0
        self._buffer = bytearray()
        self._queue: deque[Message] = deque()
        self._readable = asyncio.Event()
        self._error: MqttError | None = MqttError("not connected")
        self._connack: asyncio.Future[tuple[int, dict[int, object]]] | None = None
        # Packet id -> (the packet type that answers it: PUBACK or SUBACK, its waiter).
        self._waiting: dict[int, tuple[int, asyncio.Future[bytes]]] = {}
        self._next_id = 0
        self._inflight = 0
        self._inflight_max = OUR_RECEIVE_MAXIMUM
        self._slot_freed = asyncio.Event()
        self._writable = asyncio.Event()  # clear while the transport's buffer is too full
        self._writable.set()
        self._reading_paused = False
        self._last_heard = 0.0
        self._pinger: asyncio.Task[None] | None = None
        self._pubacks = bytearray()  # automatic PUBACKs not written yet (PUBACK_LINGER_S)
        self._pubacks_due: asyncio.TimerHandle | None = None
        self._pong: asyncio.Future[None] | None = None  # a clean exit's PINGREQ, answered

    # --- connection -------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._protocol is not None:
            raise MqttError("already connected")
        loop = asyncio.get_running_loop()
        self._generation += 1
        generation = self._generation
        if self.manual_ack:
            # Unacknowledged messages of the last connection come again from the broker.
            self._queue.clear()
        self._buffer.clear()
        self._reading_paused = False  # a new transport reads from the start
        self._writable.set()  # and writes from the start
        self._connack = connack = loop.create_future()
        self._error = None
        try:
            async with asyncio.timeout(self.timeout):
                # asyncio sets TCP_NODELAY on TCP transports (Nagle would add ~10 ms a hop).
                _, protocol = await loop.create_connection(
                    lambda: _Protocol(self, generation),
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.server_hostname if self.tls else None,
                )
                self._protocol = protocol
                self._write(
                    packets.connect(
                        client_id=self.identifier,
                        username=self.username,
                        password=self.password,
                        keepalive=self.keepalive,
                        clean_start=self.clean_start,
                        session_expiry=self.session_expiry,
                        receive_maximum=OUR_RECEIVE_MAXIMUM,
                        will=self.will,
                        maximum_packet_size=self.max_packet_size,
                    )
                )
                reason, properties = await self._connack
        except ssl.SSLError as exc:  # before OSError: it is one
            connack.cancel()  # as below
            self._close(MqttError(f"TLS with {self.host}:{self.port} failed: {_tls_reason(exc)}"))
            raise self._fresh_error() from exc
        except (OSError, TimeoutError) as exc:
            # Not awaited any more: failed by ``_close``, it would be an exception nobody
            # reads ("Future exception was never retrieved" on every failed reconnect).
            connack.cancel()
            self._close(MqttError(f"cannot connect to {self.host}:{self.port}: {exc!r}"))
            raise self._fresh_error() from exc
        except MqttError:
            self._close(self._fresh_error())
            raise
        except asyncio.CancelledError:
            # Stopped while connecting (a hub shutting down mid-reconnect): the half-made
            # connection is ours to close, as ``__aexit__`` will not run.
            connack.cancel()
            self._close(MqttError("connecting was cancelled"))
            raise
        if reason >= 0x80:
            self._close(MqttError(f"connection refused by the broker: reason {reason:#04x}"))
            raise self._fresh_error()
        assigned = properties.get(packets.ASSIGNED_CLIENT_IDENTIFIER)
        if isinstance(assigned, str):
            self.identifier = assigned
        maximum = properties.get(packets.RECEIVE_MAXIMUM)
        self._inflight_max = maximum if isinstance(maximum, int) else OUR_RECEIVE_MAXIMUM
        self._inflight = 0
        keepalive = properties.get(packets.SERVER_KEEP_ALIVE, self.keepalive)
        if isinstance(keepalive, int) and keepalive > 0:
            self._pinger = asyncio.create_task(self._ping(keepalive), name="mqtt.ping")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._protocol is not None and self._error is None:
                self._write_pubacks()  # what we took is acknowledged before we leave
                await self._round_trip()
                if self._protocol is not None and self._error is None:
                    self._write(packets.DISCONNECT_PACKET)  # normal: the will is not sent
        finally:
            # Cancelled during the round trip too: the connection is closed either way.
            protocol = self._protocol
            self._close(MqttError("disconnected"), flush=True)
        if protocol is not None and protocol.transport is not None and protocol.closed:
            # Closed when we return: over TLS, closing is a goodbye exchanged with the broker.
            try:
                async with asyncio.timeout(EXIT_ROUND_TRIP_S):
                    await asyncio.shield(protocol.closed)
            except TimeoutError:
                protocol.transport.abort()

    async def _round_trip(self) -> None:
        """A PINGREQ answered: the broker has handled everything we wrote before it.

        Mosquitto, handed our PUBACKs and DISCONNECT in one go, sometimes sent an
        acknowledged message again on the next connection (about one session in
        five in a tight loop); after a round trip, never in 30.
        """
        pong = asyncio.get_running_loop().create_future()
        self._pong = pong
        try:
            self._write(packets.PINGREQ_PACKET)
            async with asyncio.timeout(EXIT_ROUND_TRIP_S):
                await pong
        except (MqttError, TimeoutError):
            pass  # leaving anyway; at worst the broker sends some of it again
        finally:
            self._pong = None

    @property
    def connected(self) -> bool:
        return self._protocol is not None and self._error is None

    # --- publishing and subscribing ---------------------------------------------

    async def publish(
        self, topic: str, payload: bytes | str = b"", qos: int = 0, retain: bool = False
    ) -> None:
        """Publish; at QoS 1, return once the broker has acknowledged it."""
        waiter = await self._send(topic, payload, qos, retain)
        if waiter is not None:
            await self._acknowledged(waiter, topic)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]], qos: int = 1) -> None:
        """Publish in order, all in flight together; return once all are acknowledged."""
        waiters = []
        # Written in pieces of WRITE_CHUNK: a write per message was a send() and a
        # wake-up of the broker each; one write for the lot, a copy of it all at once.
        unwritten: list[bytes] = []
        try:
            pending = 0
            for topic, payload in messages:
                waiters.append(await self._send(topic, payload, qos, False, unwritten))
                pending += len(unwritten[-1]) if unwritten else 0
                if pending >= WRITE_CHUNK:
                    self._write(b"".join(unwritten))
                    unwritten.clear()
                    pending = 0
                    await self._drained()
            if unwritten:
                self._write(b"".join(unwritten))
            for (topic, _), waiter in zip(messages, waiters, strict=False):
                if waiter is not None:
                    await self._acknowledged(waiter, topic)
        finally:
            for waiter in waiters:
                if waiter is not None and waiter.done() and not waiter.cancelled():
                    waiter.exception()  # retrieved: one failure is raised, not one per message

    async def subscribe(self, subscriptions: Iterable[Subscription]) -> None:
        wanted = list(subscriptions)
        if any(s.qos not in (0, 1) for s in wanted):
            raise ValueError("this client subscribes at QoS 0 or 1 only")
        packet_id = self._packet_id()
        waiter = self._expect(packet_id, packets.SUBACK)
        filters = [(s.topic, packets.subscription_options(s.qos, s.no_local)) for s in wanted]
        self._write(packets.subscribe(packet_id, filters))
        try:
            async with asyncio.timeout(self.timeout):
                codes = await self._acknowledged(waiter, "subscribe")
        except TimeoutError:
            # A broker that answers pings but not this would leave the caller waiting forever.
            self._close(MqttError(f"no SUBACK from the broker in {self.timeout:g} s"))
            raise self._fresh_error() from None
        if len(codes) != len(wanted):
            error = MqttError(f"SUBACK with {len(codes)} reason codes for {len(wanted)} filters")
            self._close(error)
            raise self._fresh_error()
        for subscription, code in zip(wanted, codes, strict=True):
            if code >= 0x80:
                raise MqttError(f"subscription to {subscription.topic} refused: {code:#04x}")

    # --- receiving ----------------------------------------------------------------

    async def next_batch(self, limit: int) -> list[Message]:
        """Wait for at least one message; return up to ``limit`` in arrival order.

        What arrived before the connection was lost is still handed out; then
        the loss is raised.
        """
        queue = self._queue
        while not queue:
            if self._error is not None:
                raise self._fresh_error()
            self._readable.clear()
            await self._readable.wait()
        batch = [queue.popleft() for _ in range(min(limit, len(queue)))]
        if self._reading_paused and len(queue) <= MAX_UNREAD // 2:
            self._reading_paused = False
            if self._protocol is not None and self._protocol.transport is not None:
                self._protocol.transport.resume_reading()
        return batch

    def ack(self, messages: Iterable[Message]) -> None:
        """Acknowledge QoS 1 messages (manual mode); those of an old connection are skipped."""
        acks = b"".join(
            packets.puback(m.mid)
            for m in messages
            if m.qos == 1 and m.connection == self._generation
        )
        if acks and self.connected:
            self._write(acks)

    # --- internals ------------------------------------------------------------------

    async def _send(
        self,
        topic: str,
        payload: bytes | str,
        qos: int,
        retain: bool,
        unwritten: list[bytes] | None = None,
    ) -> asyncio.Future[bytes] | None:
        """Send one PUBLISH; with ``unwritten``, append it there for the caller to write."""
        if qos not in (0, 1):
            raise ValueError("this client publishes at QoS 0 or 1 only")
        raw = payload.encode() if isinstance(payload, str) else bytes(payload)
        waiter = None
        if unwritten is None:
            await self._drained()
        if qos == 0:
            packet = packets.publish(topic.encode(), raw, 0, 0, retain)
        else:
            while self._inflight >= self._inflight_max:
                self._raise_if_lost()
                if unwritten:
                    # Their PUBACKs are what frees a slot: out with them first.
                    self._write(b"".join(unwritten))
                    unwritten.clear()
                self._slot_freed.clear()
                await self._slot_freed.wait()
            packet_id = self._packet_id()
            waiter = self._expect(packet_id, packets.PUBACK)
            self._inflight += 1
            packet = packets.publish(topic.encode(), raw, 1, packet_id, retain)
        if unwritten is None:
            self._write(packet)
        else:
            unwritten.append(packet)
        return waiter

    async def _acknowledged(self, waiter: asyncio.Future[bytes], what: str) -> bytes:
        try:
            return await waiter
        except MqttError as exc:
            raise MqttError(f"{what}: {exc}") from None

    def _expect(self, packet_id: int, answer: int) -> asyncio.Future[bytes]:
        self._raise_if_lost()
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[packet_id] = (answer, waiter)
        return waiter

    async def _drained(self) -> None:
        """Return once the transport's buffer is below its low mark (at once if it is)."""
        while not self._writable.is_set():
            self._raise_if_lost()
            await self._writable.wait()
        self._raise_if_lost()

    def _writable_changed(self, protocol: _Protocol, writable: bool) -> None:
        if protocol is not self._protocol:
            return
        if writable:
            self._writable.set()
        else:
            self._writable.clear()

    def _packet_id(self) -> int:
        for _ in range(65_535):
            self._next_id = self._next_id % 65_535 + 1
            if self._next_id not in self._waiting:
                return self._next_id
        raise MqttError("no free packet identifier")

    def _write(self, data: bytes) -> None:
        self._raise_if_lost()
        assert self._protocol is not None
        assert self._protocol.transport is not None
        self._protocol.transport.write(data)

    def _raise_if_lost(self) -> None:
        if self._error is not None or self._protocol is None:
            raise self._fresh_error()

    def _fresh_error(self) -> MqttError:
        # A new exception each time: one instance raised in several tasks gets tangled tracebacks.
        return MqttError(str(self._error or "not connected"))

    async def _ping(self, keepalive: int) -> None:
        """PINGREQ every half keepalive; no word from the broker in 1.5 keepalives: lost.

        The check wakes at the deadline itself, not at the next ping, so a silent
        broker (a hung process, a cut uplink that drops packets without a reset) is
        found 1.5 keepalives after it was last heard.
        """
        silence = 1.5 * keepalive
        next_ping = time.monotonic() + keepalive / 2
        while self.connected:
            now = time.monotonic()
            deadline = self._last_heard + silence
            if now >= deadline:
                self._close(MqttError(f"no answer from the broker in {silence:g} s"))
                return
            if now >= next_ping:
                self._write(packets.PINGREQ_PACKET)
                next_ping = now + keepalive / 2
            await asyncio.sleep(min(next_ping, deadline) - now)

    def _write_pubacks(self) -> None:
        self._pubacks_due = None
        acks, self._pubacks = self._pubacks, bytearray()
        if acks and self.connected:
            self._write(bytes(acks))

    def _close(self, error: MqttError, *, flush: bool = False) -> None:
        """End the connection: ``flush`` sends what is buffered first (a clean exit);
        otherwise it is dropped at once, as a failed connection's unsent bytes (and
        a TLS goodbye to a peer that may never answer) are worth nothing."""
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            if flush:
                protocol.transport.close()
            else:
                protocol.transport.abort()
        self._fail(error)

    def _lost(self, protocol: _Protocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        if isinstance(exc, ssl.SSLError):
            reason = f"TLS with {self.host}:{self.port} failed: {_tls_reason(exc)}"
        else:
            reason = f"connection lost: {exc}" if exc else "connection closed"
        if self._connack is not None and not self._connack.done():
            reason += " before the broker answered CONNECT"
            if self.tls is None:
                reason += " (a TLS port reached without TLS, or not an MQTT 5 broker?)"
            elif not isinstance(exc, ssl.SSLError):
                # TLS 1.3 checks a client certificate after the client's handshake is done:
                # a missing or refused one is an alert or a reset at our first read.
                reason += " (a client certificate missing or refused? see the broker's log)"
        self._fail(MqttError(reason))

    def _fail(self, error: MqttError) -> None:
        if self._error is None:
            self._error = error
        if self._pong is not None and not self._pong.done():
            self._pong.set_result(None)  # no answer is coming: a clean exit goes on
        # Packet ids of this connection: meaningless (or wrong) on the next one.
        self._pubacks.clear()
        if self._pubacks_due is not None:
            self._pubacks_due.cancel()
            self._pubacks_due = None
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(self._fresh_error())
            # Retrieved: when the connection failed before it was awaited (a refused TLS
            # handshake), nobody will, and asyncio would log it as never retrieved.
            self._connack.exception()
        waiting, self._waiting = self._waiting, {}
        for _, waiter in waiting.values():
            if not waiter.done():
                waiter.set_exception(self._fresh_error())
        self._slot_freed.set()
        self._writable.set()  # publishers waiting for the buffer: raise
        self._readable.set()
        pinger, self._pinger = self._pinger, None
        if pinger is not None and pinger is not asyncio.current_task():
            pinger.cancel()

    def _received(self, protocol: _Protocol, data: bytes) -> None:
        if protocol is not self._protocol:
            return
        self._last_heard = time.monotonic()
        buffer = self._buffer
        buffer += data
        try:
            consumed, acks, queued = self._parse(buffer)
        except packets.ProtocolError as exc:
            self._close(MqttError(f"protocol error from the broker: {exc}"))
            return
        except MqttError as exc:
            self._close(exc)
            return
        del buffer[:consumed]
        if acks:
            self._pubacks += acks
            if self._pubacks_due is None:
                self._pubacks_due = asyncio.get_running_loop().call_later(
                    PUBACK_LINGER_S, self._write_pubacks
                )
        if queued:
            self._readable.set()
            if len(self._queue) > MAX_UNREAD and not self._reading_paused:
                self._reading_paused = True
                if protocol.transport is not None:
                    protocol.transport.pause_reading()

    def _parse(self, buffer: bytearray) -> tuple[int, bytearray, bool]:
        """Handle every whole packet in ``buffer``: (bytes used, PUBACKs to send, queued?).

        Every read is bounded by the packet it is in: a malformed packet raises
        ``ProtocolError`` (``MqttError`` for the broker's DISCONNECT).
        """
        position = 0
        size = len(buffer)
        acks = bytearray()
        queued = False
        generation = self._generation
        auto_ack = not self.manual_ack
        append = self._queue.append
        limit = self.max_packet_size
        while size - position >= 2:
            first = buffer[position]
            if buffer[position + 1] < 0x80:  # the usual short packet: one length byte
                length, start = buffer[position + 1], position + 2
            else:
                found = packets.read_varint(buffer, position + 1)
                if found is None:
                    break
                length, start = found
            end = start + length
            if end - position > limit:
                # Refused from its header: never buffer up to 256 MB on a broker's word.
                raise packets.ProtocolError(
                    f"a packet of {end - position} bytes, above our maximum of {limit}"
                )
            if end > size:
                break
            kind = first >> 4
            if kind == packets.PUBLISH:
                qos = (first >> 1) & 0x03
                topic, mid, index = _publish_head(buffer, qos, start, end)
                append(
                    Message(topic, bytes(buffer[index:end]), qos, bool(first & 1), mid, generation)
                )
                queued = True
                if qos and auto_ack:
                    acks += packets.puback(mid)
            else:
                self._on_control(first, buffer, start, end)
            position = end
        return position, acks, queued

    def _on_control(self, first: int, buffer: bytearray, start: int, end: int) -> None:
        """Every packet but PUBLISH (rare next to it)."""
        kind = first >> 4
        length = end - start
        if first & 0x0F:
            # Reserved flags of every packet we take but PUBLISH are 0 (2.1.3).
            raise packets.ProtocolError(f"packet type {kind} with flags {first & 0x0F:#x}")
        if kind == packets.PUBACK:
            self._on_puback(buffer, start, end)
        elif kind == packets.SUBACK:
            self._on_suback(buffer, start, end)
        elif kind == packets.CONNACK:
            self._on_connack(buffer, start, end)
        elif kind == packets.DISCONNECT:
            reason = buffer[start] if end > start else 0
            raise MqttError(f"the broker disconnected us: reason {reason:#04x}")
        elif kind == packets.PINGRESP:
            if length:
                raise packets.ProtocolError(f"PINGRESP of {length} bytes")
            if self._pong is not None and not self._pong.done():
                self._pong.set_result(None)
        else:
            raise packets.ProtocolError(f"unexpected packet type {kind}")

    def _on_suback(self, buffer: bytearray, start: int, end: int) -> None:
        if end - start < 4:  # packet id, property length, at least one reason code
            raise packets.ProtocolError(f"SUBACK of {end - start} bytes")
        packet_id = (buffer[start] << 8) | buffer[start + 1]
        _, codes_at = packets.properties(buffer, start + 2, end)
        if codes_at >= end:
            raise packets.ProtocolError("SUBACK without reason codes")
        waiter = self._answered(packet_id, packets.SUBACK)
        if waiter is not None and not waiter.done():
            waiter.set_result(bytes(buffer[codes_at:end]))

    def _on_connack(self, buffer: bytearray, start: int, end: int) -> None:
        if end - start < 3:  # flags, reason, property length
            raise packets.ProtocolError(f"CONNACK of {end - start} bytes")
        reason = buffer[start + 1]
        found, after = packets.properties(buffer, start + 2, end)
        if after != end:
            raise packets.ProtocolError("CONNACK longer than its properties")
        if found.get(packets.RECEIVE_MAXIMUM) == 0:
            # 0 is a protocol error (3.2.2.3.3); taken as is, every QoS 1 publish would wait.
            raise packets.ProtocolError("CONNACK with Receive Maximum 0")
        if self._connack is not None and not self._connack.done():
            self._connack.set_result((reason, found))

    def _answered(self, packet_id: int, kind: int) -> asyncio.Future[bytes] | None:
        """The waiter of our packet ``packet_id``, if ``kind`` is what answers it."""
        entry = self._waiting.get(packet_id)
        if entry is None:
            return None  # already failed or answered: a late duplicate
        if entry[0] != kind:
            raise packets.ProtocolError(f"packet type {kind} answers packet id {packet_id}")
        del self._waiting[packet_id]
        return entry[1]

    def _on_puback(self, buffer: bytearray, start: int, end: int) -> None:
        length = end - start
        if length < 2:
            raise packets.ProtocolError(f"PUBACK of {length} bytes")
        if length > 3:
            packets.properties(buffer, start + 3, end)  # well-formed, though unused
        packet_id = (buffer[start] << 8) | buffer[start + 1]
        reason = buffer[start + 2] if length > 2 else 0
        waiter = self._answered(packet_id, packets.PUBACK)
        if waiter is None:
            return
        self._inflight -= 1
        self._slot_freed.set()
        if waiter.done():
            return
        if reason >= 0x80:
            waiter.set_exception(MqttError(f"publish refused by the broker: reason {reason:#04x}"))
        else:
            waiter.set_result(b"")


def _publish_head(buffer: bytearray, qos: int, start: int, end: int) -> tuple[str, int, int]:
    """A PUBLISH's topic, packet id (0 at QoS 0) and where its payload starts."""
    topic_end = start + 2 + ((buffer[start] << 8) | buffer[start + 1]) if end - start > 2 else end
    index = topic_end + 2 if qos else topic_end
    if index >= end or qos > 1:  # one test on the hot path for every malformed case
        raise _malformed_publish(buffer, qos, start, end)
    mid = 0
    if qos:
        mid = (buffer[index - 2] << 8) | buffer[index - 1]
        if not mid:
            raise packets.ProtocolError("QoS 1 PUBLISH with packet identifier 0")
    if buffer[index] == 0:
        index += 1
    else:
        # Their shape is checked, not their strings: those are another client's (a user
        # property), unused here, and refusing them would close our connection on every
        # redelivery of that one message.
        _, index = packets.properties(buffer, index, end, decode=False)
    try:
        topic = buffer[start + 2 : topic_end].decode()
    except UnicodeDecodeError as exc:
        raise packets.ProtocolError(f"a topic that is not UTF-8: {exc.reason}") from None
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        # Empty: a topic alias, which we never allow (our Topic Alias Maximum is 0).
        raise packets.ProtocolError(f"PUBLISH on topic {topic[:80]!r}")
    return topic, mid, index


def _malformed_publish(buffer: bytearray, qos: int, start: int, end: int) -> packets.ProtocolError:
    """Why a PUBLISH cannot be read (off the hot path)."""
    if qos > 1:
        return packets.ProtocolError(f"QoS {qos} message, but we subscribe at most QoS 1")
    if end - start < 3:
        return packets.ProtocolError(f"PUBLISH of {end - start} bytes")
    return packets.ProtocolError("PUBLISH shorter than its topic")


def _tls_reason(exc: ssl.SSLError) -> str:
    """What went wrong in a TLS handshake, in the words a reader can act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the broker's certificate was refused: {exc.verify_message}"
    reason = exc.reason or str(exc)
    if "CERTIFICATE_REQUIRED" in reason:
        return f"{reason}: the broker requires a client certificate (certfile, keyfile)"
    if "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason:
        return f"{reason}: the broker refused our client certificate"
    return reason
