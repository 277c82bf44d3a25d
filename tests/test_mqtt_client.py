"""Our MQTT 5 client against a real Mosquitto (our mosquitto.conf), and its packet codec."""

from __future__ import annotations

import asyncio
import gc
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from riverguard import mqtt_client
from riverguard import mqtt_packets as packets
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.mqtt_client import Client, Message, MqttError, Subscription, Will
from riverguard.services import free_port
from riverguard.testing import wait_for
from tests.conftest import Broker


def _topic() -> str:
    # The field side: the tree the simulators' login may publish and read.
    return f"field/test-{secrets.token_hex(4)}"


async def _take(client: Client, count: int, timeout: float = 10.0) -> list[Message]:
    got: list[Message] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            got += await client.next_batch(count - len(got))
    return got


@pytest.mark.parametrize("value", [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 268_435_455])
def test_varint_round_trip(value: int) -> None:
    encoded = packets.varint(value)
    assert packets.read_varint(encoded, 0) == (value, len(encoded))
    assert packets.read_varint(encoded[:-1], 0) is None  # cut short: wait for more bytes


def test_a_varint_longer_than_four_bytes_is_a_protocol_error() -> None:
    with pytest.raises(packets.ProtocolError):
        packets.read_varint(b"\xff\xff\xff\xff\x01", 0)


def test_properties_of_every_shape_are_read() -> None:
    block = (
        b"\x21\x03\xe8"  # receive maximum 1000
        + b"\x12\x00\x03abc"  # assigned client identifier
        + b"\x26\x00\x01k\x00\x01v"  # user property
        + b"\x0b\x81\x01"  # subscription identifier 129 (two-byte varint)
    )
    found, end = packets.properties(packets.varint(len(block)) + block, 0)
    assert found[packets.RECEIVE_MAXIMUM] == 1000
    assert found[packets.ASSIGNED_CLIENT_IDENTIFIER] == "abc"
    assert found[0x0B] == 129
    assert end == len(block) + 1


async def test_qos1_round_trip_keeps_order_topic_payload_and_retain(broker: Broker) -> None:
    topic = _topic()
    receiver = make_client(broker.settings("sim"))
    sender = make_client(broker.settings("sim"))
    async with receiver, sender:
        await receiver.subscribe([Subscription(f"{topic}/#")])
        batch = [(f"{topic}/{i % 7}", f"payload-{i}".encode() * (i % 50 + 1)) for i in range(3000)]
        await sender.publish_many(batch)
        got = await _take(receiver, len(batch))
        assert [(m.topic, m.payload) for m in got] == batch
        assert all(m.qos == 1 and not m.retain for m in got)
        # A payload longer than 127 and 16383 bytes: multi-byte remaining lengths.
        big = bytes(range(256)) * 300
        await sender.publish(f"{topic}/big", big, qos=1)
        await sender.publish(f"{topic}/retained", "kept", qos=1, retain=True)
        assert [m.payload for m in await _take(receiver, 2)] == [big, b"kept"]
    late = make_client(broker.settings("sim"))
    async with late:
        await late.subscribe([Subscription(f"{topic}/retained")])
        (message,) = await _take(late, 1)
        assert message.retain
        assert message.payload == b"kept"
        await late.publish(f"{topic}/retained", b"", qos=1, retain=True)  # clear it


async def test_no_local_keeps_our_own_messages_from_coming_back(broker: Broker) -> None:
    topic = _topic()
    client = make_client(broker.settings("sim"))
    async with client:
        await client.subscribe([Subscription(topic, no_local=True), Subscription(f"{topic}/echo")])
        await client.publish(topic, b"mine", qos=1)
        await client.publish(f"{topic}/echo", b"back", qos=1)
        (message,) = await _take(client, 1)
        assert message.topic == f"{topic}/echo"


async def test_a_wrong_password_is_refused_with_an_mqtt_error(broker: Broker) -> None:
    bad = BrokerSettings(host="127.0.0.1", port=broker.port, username="hub", password="wrong")
    with pytest.raises(MqttError, match="refused"):
        async with make_client(bad):
            pass


async def test_no_broker_listening_is_an_mqtt_error() -> None:
    client = Client("127.0.0.1", free_port(), username="x", password="y", timeout=2)
    with pytest.raises(MqttError, match="cannot connect"):
        async with client:
            pass


async def test_unacknowledged_messages_come_again_on_a_persistent_session(broker: Broker) -> None:
    """Manual acknowledgement: what was not acknowledged is redelivered after a reconnect."""
    topic = _topic()
    identifier = f"test-{secrets.token_hex(4)}"
    receiver = make_client(
        broker.settings("sim"), identifier=identifier, persistent=True, manual_ack=True
    )
    sender = make_client(broker.settings("sim"))
    async with sender:
        async with receiver:
            await receiver.subscribe([Subscription(topic)])
            await sender.publish_many([(topic, str(i).encode()) for i in range(10)])
            first = await _take(receiver, 10)
            receiver.ack(first[:4])
            # The acknowledgements are on the wire before the disconnect is.
        # Sent while we were away: queued by the broker for the session.
        await sender.publish(topic, b"10", qos=1)
        async with receiver:
            again = await _take(receiver, 7)
            assert [m.payload for m in again] == [str(i).encode() for i in range(4, 11)]
            receiver.ack(first)  # of the last connection: skipped, not sent with stale ids
            receiver.ack(again)
        async with receiver:
            with pytest.raises(TimeoutError):
                await _take(receiver, 1, timeout=0.5)


async def test_automatic_acknowledgements_go_out_together_and_before_we_leave(
    broker: Broker,
) -> None:
    """PUBACKs linger a moment to share a write; a clean exit still sends them first."""
    topic = _topic()
    identifier = f"test-{secrets.token_hex(4)}"
    receiver = make_client(broker.settings("sim"), identifier=identifier, persistent=True)
    sender = make_client(broker.settings("sim"))
    async with sender:
        async with receiver:
            await receiver.subscribe([Subscription(topic)])
            await sender.publish_many([(topic, str(i).encode()) for i in range(10)])
            await _take(receiver, 10)
            # Leaving at once: the acknowledgements are still waiting to be written.
        async with receiver:
            await sender.publish(topic, b"10", qos=1)
            got = await _take(receiver, 1)
            assert [b"10"] == [m.payload for m in got]  # nothing of before came again
            await wait_for(lambda: not receiver._pubacks, what="PUBACKs written")
        async with receiver:
            with pytest.raises(TimeoutError):
                await _take(receiver, 1, timeout=0.5)


async def test_the_will_is_sent_when_the_connection_dies_not_when_we_leave(
    broker: Broker,
) -> None:
    topic = _topic()
    watcher = make_client(broker.settings("sim"))
    async with watcher:
        await watcher.subscribe([Subscription(topic)])
        polite = make_client(broker.settings("sim"), will=Will(topic, "gone", qos=1))
        async with polite:
            pass
        dying = make_client(broker.settings("sim"), will=Will(topic, "gone", qos=1))
        async with dying:
            assert dying._protocol is not None
            assert dying._protocol.transport is not None
            dying._protocol.transport.abort()  # as if the process was killed
            with pytest.raises(MqttError):
                await dying.next_batch(1)
            with pytest.raises(MqttError):
                await dying.publish(topic, b"after", qos=1)
        (will,) = await _take(watcher, 1)
        assert will.payload == b"gone"


async def test_a_broker_that_goes_away_fails_waiters_and_readers(own_broker: Broker) -> None:
    topic = _topic()
    client = make_client(own_broker.settings("sim"))
    async with client:
        await client.subscribe([Subscription(topic)])
        reader = asyncio.create_task(client.next_batch(10))
        await asyncio.sleep(0)  # the reader is waiting
        own_broker.server.stop()
        with pytest.raises(MqttError):
            await asyncio.wait_for(reader, 10)
        assert not client.connected
    own_broker.server.start()
    async with client:  # entered again: a new connection
        await client.publish(topic, b"x", qos=1)


async def test_publishing_respects_the_brokers_receive_maximum(broker: Broker) -> None:
    """More QoS 1 publishes than the broker lets in flight (1000): they wait, none is refused."""
    topic = _topic()
    receiver = make_client(broker.settings("sim"))
    sender = make_client(broker.settings("sim"))
    async with receiver, sender:
        assert sender._inflight_max == 1000
        await receiver.subscribe([Subscription(topic)])
        await sender.publish_many([(topic, b"%d" % i) for i in range(5000)])
        assert sender._inflight == 0
        got = await _take(receiver, 5000)
        assert [m.payload for m in got] == [b"%d" % i for i in range(5000)]


async def test_reading_pauses_when_the_consumer_falls_behind_and_nothing_is_lost(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("riverguard.mqtt_client.MAX_UNREAD", 100)
    topic = _topic()
    receiver = make_client(broker.settings("sim"))
    sender = make_client(broker.settings("sim"))
    async with receiver, sender:
        await receiver.subscribe([Subscription(topic)])
        await sender.publish_many([(topic, b"%d" % i) for i in range(2000)])
        await wait_for(lambda: receiver._reading_paused, timeout=5)
        got = await _take(receiver, 2000)
        assert [m.payload for m in got] == [b"%d" % i for i in range(2000)]
        assert not receiver._reading_paused


def test_the_parser_waits_for_a_whole_packet_and_refuses_what_we_never_asked_for() -> None:
    """Bytes no broker should send us: a clear error (the connection is then closed)."""
    client = Client("127.0.0.1", 1)
    whole = packets.publish(b"a/b", b"payload", 1, 7, False)
    consumed, acks, queued = client._parse(bytearray(whole[:-1]))
    assert (0, b"", False) == (consumed, bytes(acks), queued)  # cut short: wait for the rest
    consumed, acks, queued = client._parse(bytearray(whole))
    assert (len(whole), packets.puback(7), True) == (consumed, bytes(acks), queued)
    assert b"payload" == client._queue.popleft().payload
    with pytest.raises(packets.ProtocolError, match="QoS 2"):
        client._parse(bytearray(packets.publish(b"a/b", b"x", 2, 8, False)))
    with pytest.raises(packets.ProtocolError, match="unexpected packet type 1"):
        client._parse(bytearray(b"\x10\x00"))
    with pytest.raises(MqttError, match="reason 0x8b"):
        client._parse(bytearray(b"\xe0\x01\x8b"))  # DISCONNECT: server shutting down


# --- a broker that stops answering, and one that stops reading ---------------------------


async def test_a_broker_that_stops_answering_is_found_within_one_and_a_half_keepalives(
    own_broker: Broker,
) -> None:
    """A hung broker (SIGSTOP: the socket stays open, nothing answers) loses the connection
    1.5 keepalives after it was last heard; once it runs again, the client connects again."""
    keepalive = 1
    topic = _topic()
    client = make_client(own_broker.settings("sim"), keepalive=keepalive)
    process = own_broker.server.process.process
    assert process is not None
    async with client:
        await client.subscribe([Subscription(topic)])
        process.send_signal(signal.SIGSTOP)
        try:
            stopped_at = time.monotonic()
            with pytest.raises(MqttError, match=r"no answer from the broker in 1\.5 s"):
                async with asyncio.timeout(10 * keepalive):
                    await client.next_batch(1)
            waited = time.monotonic() - stopped_at
            assert not client.connected
        finally:
            process.send_signal(signal.SIGCONT)
    # Last heard at most half a keepalive before the stop (the pings' answers): found
    # 1 to 1.5 keepalives after it; the bound below leaves room for a busy machine.
    assert keepalive * 0.9 <= waited < keepalive * 4
    async with client:  # the reconnect every agent's outer loop makes
        await client.subscribe([Subscription(topic)])
        await client.publish(topic, b"back", qos=1)
        assert [b"back"] == [m.payload for m in await _take(client, 1)]


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first, await reader.readexactly(length)


class _SlowBroker:
    """A TCP peer that answers CONNECT and then reads nothing until told to."""

    def __init__(self) -> None:
        self.read_again = asyncio.Event()
        self.received = 0
        self.server: asyncio.Server | None = None
        self.closed = asyncio.Event()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        await asyncio.wait_for(self.closed.wait(), 10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first, _ = await _read_packet(reader)
            assert packets.CONNECT == first >> 4
            writer.write(b"\x20\x03\x00\x00\x00")  # CONNACK: accepted, no properties
            await writer.drain()
            await self.read_again.wait()
            while True:
                first, body = await _read_packet(reader)
                self.received += len(body)
                if first == 0xC0:  # PINGREQ: the client's clean exit waits for the answer
                    writer.write(b"\xd0\x00")
        except asyncio.IncompleteReadError:
            pass  # the client left
        finally:
            writer.close()
            await writer.wait_closed()
            self.closed.set()


@pytest.mark.parametrize("many", [False, True], ids=["publish", "publish_many"])
async def test_publishers_wait_while_a_slow_broker_reads_nothing(many: bool) -> None:
    """Writes are bounded: the unsent bytes we hold stop near WRITE_BUFFER_HIGH."""
    payload = b"p" * 60_000
    count = 1000  # 60 MB: well past what the kernel's socket buffers take
    slow = _SlowBroker()
    async with slow as port:
        client = Client("127.0.0.1", port, keepalive=0)
        async with client:

            async def publish_all() -> None:
                if many:
                    await client.publish_many([("t", payload)] * count, qos=0)
                else:
                    for _ in range(count):
                        await client.publish("t", payload)

            publisher = asyncio.create_task(publish_all())
            await wait_for(lambda: not client._writable.is_set(), what="the publisher waiting")
            assert client._protocol is not None
            assert client._protocol.transport is not None
            held = client._protocol.transport.get_write_buffer_size()
            assert held <= mqtt_client.WRITE_BUFFER_HIGH + mqtt_client.WRITE_CHUNK + len(payload)
            assert not publisher.done()
            slow.read_again.set()
            await asyncio.wait_for(publisher, 60)
            await wait_for(lambda: slow.received > count * len(payload), what="all bytes read")


async def test_a_failed_connect_leaves_no_future_with_an_unretrieved_exception() -> None:
    """Every failed reconnect used to log "Future exception was never retrieved"."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        client = Client("127.0.0.1", free_port(), username="x", password="y", timeout=2)
        for _ in range(3):
            with pytest.raises(MqttError, match="cannot connect"):
                async with client:
                    pass
        del client
        gc.collect()
        await asyncio.sleep(0)  # the loop reports a dropped future on its next turn
    finally:
        loop.set_exception_handler(previous)
    assert [] == [str(context.get("message")) for context in reported]


async def test_a_subscribe_the_broker_never_answers_fails_after_the_timeout() -> None:
    """It answers pings but not SUBSCRIBE: an error and a closed connection, not a hang."""
    silent = _SlowBroker()
    silent.read_again.set()  # reads everything, answers PINGREQ only
    async with silent as port:
        client = Client("127.0.0.1", port, keepalive=0, timeout=0.5)
        async with client:
            with pytest.raises(MqttError, match=r"no SUBACK from the broker in 0\.5 s"):
                await client.subscribe([Subscription("t")])
            assert not client.connected


async def _cancelled_once(
    peer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    reached: asyncio.Event,
    ended: asyncio.Event,
    **client: Any,
) -> None:
    """Connect to ``peer`` and leave at once; cancel that when ``peer`` says ``reached``:
    the peer must then see the connection end."""
    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    async with server:
        mqtt = Client("127.0.0.1", server.sockets[0].getsockname()[1], **client)

        async def connect_and_leave() -> None:
            async with mqtt:
                pass

        task = asyncio.create_task(connect_and_leave())
        await asyncio.wait_for(reached.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(ended.wait(), 5)
        assert not mqtt.connected


async def test_a_connect_cancelled_before_the_broker_answers_closes_its_connection() -> None:
    """A hub stopping while its broker link reconnects: the half-made connection is
    closed, not left open for the broker to end after the event loop has gone."""
    connected = asyncio.Event()
    ended = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first, _ = await _read_packet(reader)
        assert packets.CONNECT == first >> 4
        connected.set()
        await reader.read()  # b"" once the client closes
        ended.set()
        writer.close()

    await _cancelled_once(never_answer, connected, ended, timeout=30)


async def test_leaving_cancelled_while_the_broker_has_not_answered_closes_the_connection() -> None:
    """Cancelled again while leaving (waiting for the broker's PINGRESP): closed all the
    same, not left for the broker to end after the event loop has gone."""
    pinged = asyncio.Event()
    ended = asyncio.Event()

    async def never_pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first, _ = await _read_packet(reader)
        assert packets.CONNECT == first >> 4
        writer.write(b"\x20\x03\x00\x00\x00")  # CONNACK: accepted, no properties
        try:
            while True:
                first, _ = await _read_packet(reader)
                if first == 0xC0:  # PINGREQ, never answered
                    pinged.set()
        except asyncio.IncompleteReadError:
            ended.set()
        writer.close()

    await _cancelled_once(never_pong, pinged, ended, keepalive=0)
