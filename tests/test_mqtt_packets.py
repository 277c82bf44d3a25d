"""The MQTT client's reading of broker bytes: whole, split anywhere, or damaged.

Packets are encoded here by a second, independent encoder (the broker's side of
MQTT 5, section 3) and fed to the client's parser as a socket would: in pieces
cut at any byte. Damaged streams must end in a ``ProtocolError`` (or the
broker's own DISCONNECT as an ``MqttError``) or in a parse of what is there,
never in another exception or a wait for bytes a packet cannot have.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from riverguard import mqtt_packets as packets
from riverguard.mqtt_client import Client, Message, MqttError, _Protocol

# --- the broker's side: an encoder of its own -----------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, byte = divmod(value, 128)
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _varint(len(body)) + body


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!H", len(raw)) + raw


def _block(props: bytes) -> bytes:
    return _varint(len(props)) + props


@dataclass(frozen=True)
class Sent:
    """One packet the broker sends, and what the client should make of it."""

    raw: bytes
    message: tuple[str, bytes, int, bool, int] | None = None  # topic, payload, qos, retain, mid


# Property blocks a broker may put on a PUBLISH: none, or some of every shape (their
# strings come from other clients: not refused, even with a U+0000).
_publish_properties = st.lists(
    st.one_of(
        st.integers(0, 2**32 - 1).map(lambda v: struct.pack("!BI", 0x02, v)),  # message expiry
        st.integers(0, 1).map(lambda v: bytes((0x01, v))),  # payload format
        st.text(max_size=20).map(lambda v: b"\x03" + _text(v)),  # content type
        st.binary(max_size=20).map(lambda v: b"\x09" + struct.pack("!H", len(v)) + v),
        st.integers(1, 268_435_455).map(lambda v: b"\x0b" + _varint(v)),  # subscription id
        st.tuples(st.text(max_size=10), st.text(max_size=10)).map(
            lambda kv: b"\x26" + _text(kv[0]) + _text(kv[1])
        ),
    ),
    max_size=4,
).map(b"".join)

_topic = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00+#"),
    min_size=1,
    max_size=40,
)


@st.composite
def _publish(draw: st.DrawFn) -> Sent:
    topic = draw(_topic)
    payload = draw(st.binary(max_size=300))
    qos = draw(st.integers(0, 1))
    retain = draw(st.booleans())
    mid = draw(st.integers(1, 65_535)) if qos else 0
    head = _text(topic) + (struct.pack("!H", mid) if qos else b"")
    body = head + _block(draw(_publish_properties)) + payload
    first = (packets.PUBLISH << 4) | (qos << 1) | retain
    return Sent(_packet(first, body), (topic, payload, qos, retain, mid))


@st.composite
def _control(draw: st.DrawFn) -> Sent:
    """A packet answering something of ours, for ids the client no longer waits on."""
    mid = draw(st.integers(1, 65_535))
    # An MQTT string: no U+0000 (1.5.4); the broker's own, so it is checked.
    text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
    reason_string = text.map(lambda v: b"\x1f" + _text(v))
    kind = draw(st.sampled_from(["puback", "puback_long", "suback", "pingresp", "connack"]))
    if kind == "puback":
        return Sent(_packet(packets.PUBACK << 4, struct.pack("!H", mid)))
    if kind == "puback_long":
        props = _block(draw(reason_string))
        return Sent(_packet(packets.PUBACK << 4, struct.pack("!HB", mid, 0x10) + props))
    if kind == "suback":
        codes = draw(st.binary(min_size=1, max_size=5))
        props = _block(draw(reason_string))
        return Sent(_packet((packets.SUBACK << 4), struct.pack("!H", mid) + props + codes))
    if kind == "connack":
        props = struct.pack("!BH", packets.RECEIVE_MAXIMUM, draw(st.integers(1, 65_535)))
        return Sent(_packet(packets.CONNACK << 4, b"\x00\x00" + _block(props)))
    return Sent(b"\xd0\x00")


_streams = st.lists(st.one_of(_publish(), _publish(), _control()), min_size=1, max_size=6)


def _expected(stream: list[Sent]) -> list[tuple[str, bytes, int, bool, int]]:
    return [sent.message for sent in stream if sent.message is not None]


def _seen(messages: list[Message]) -> list[tuple[str, bytes, int, bool, int]]:
    return [(m.topic, m.payload, m.qos, m.retain, m.mid) for m in messages]


def _client() -> Client:
    """A client whose parser is fed by hand: the connection it reads from is ours."""
    client = Client("127.0.0.1", 1, manual_ack=True)
    client._protocol = _Protocol(client, client._generation)
    client._error = None
    return client


def _feed(client: Client, chunks: list[bytes]) -> list[Message]:
    assert client._protocol is not None
    for chunk in chunks:
        client._received(client._protocol, chunk)
    return list(client._queue)


# --- whole and split streams ------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=_streams, cuts=st.lists(st.integers(0, 2_000), max_size=8))
def test_a_stream_cut_anywhere_parses_as_the_whole_does(
    stream: list[Sent], cuts: list[int]
) -> None:
    """Any number of cuts, anywhere: the same messages, in order, and no error."""
    data = b"".join(sent.raw for sent in stream)
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    client = _client()
    assert _expected(stream) == _seen(_feed(client, chunks))
    assert client._error is None
    assert b"" == bytes(client._buffer)  # nothing left over, nothing half-read


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=_streams)
def test_a_stream_cut_at_every_single_point_parses_as_the_whole_does(stream: list[Sent]) -> None:
    data = b"".join(sent.raw for sent in stream)
    for cut in range(len(data) + 1):
        client = _client()
        assert _expected(stream) == _seen(_feed(client, [data[:cut], data[cut:]])), cut
        assert client._error is None


def test_a_stream_fed_one_byte_at_a_time_parses() -> None:
    big = b"x" * 20_000  # a three-byte remaining length, arriving one byte at a time
    stream = packets.publish(b"a/b", big, 1, 9, True) + b"\xd0\x00"
    client = _client()
    messages = _feed(client, [stream[i : i + 1] for i in range(len(stream))])
    assert [("a/b", big, 1, True, 9)] == _seen(messages)
    assert client._error is None


# --- damaged streams --------------------------------------------------------------------


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(sent.raw for sent in draw(_streams)))
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if operation == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return bytes(data)


# Regression examples: each made a read run past its packet (an IndexError, a
# struct.error, a UnicodeDecodeError, or bytes of the next packet taken as this one's).
_EXAMPLES = [
    b"\x30\x02\x00\x05\xd0\x00",  # PUBLISH whose topic overruns it, a PINGRESP after
    b"\x30\x02\x00\x00",  # PUBLISH with an empty topic and no property length
    b"\x32\x04\x00\x01a\x00",  # QoS 1 PUBLISH cut inside its packet id
    b"\x30\x05\x00\x02\xff\xfe\x00",  # topic that is not UTF-8
    b"\x30\x05\x00\x01a\x05\x02",  # properties longer than the packet
    b"\x30\x06\x00\x01a\x01\x7f\x00",  # unknown property 0x7f
    b"\x40\x00",  # PUBACK without a packet id
    b"\x40\x01\x01",  # PUBACK with half a packet id
    b"\x90\x00",  # SUBACK without anything
    b"\x90\x03\x00\x01\x00",  # SUBACK without reason codes
    b"\x20\x00",  # CONNACK without flags or reason
    b"\x20\x03\x00\x00\x09",  # CONNACK whose properties overrun it
    b"\x20\x06\x00\x00\x03\x21\x00\x00",  # CONNACK with Receive Maximum 0
    b"\xd0\x01\x00",  # PINGRESP with a body
    b"\x42\x02\x00\x01",  # PUBACK with reserved flags set
    b"\x36\x04\x00\x01a\x00",  # QoS 3
    b"\xf0\x00",  # AUTH: never asked for
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_damaged())
@example(data=b"\x30\xff\xff\xff\x7f")  # a remaining length of 256 MB
@example(data=b"\x30\xff\xff\xff\xff\x01")  # a five-byte remaining length
def test_damaged_bytes_are_a_protocol_error_or_a_parse(data: bytes) -> None:
    _parse_or_refuse(data)


@pytest.mark.parametrize("data", _EXAMPLES)
def test_each_malformed_packet_is_a_protocol_error(data: bytes) -> None:
    client = _client()
    with pytest.raises(packets.ProtocolError):
        client._parse(bytearray(data))


def _parse_or_refuse(data: bytes) -> None:
    client = _client()
    try:
        consumed, _, _ = client._parse(bytearray(data))
    except (packets.ProtocolError, MqttError):
        pass
    else:
        assert 0 <= consumed <= len(data)
        assert len(data) - consumed < packets.MAX_PACKET_SIZE + 5  # a packet still to come
        for message in client._queue:
            assert message.qos in (0, 1)
            assert message.payload in data
            assert message.topic.encode() in data
            assert "+" not in message.topic
            assert "#" not in message.topic
    # Through the socket path: the connection is closed with a reason, nothing escapes.
    fed = _client()
    _feed(fed, [data])
    if fed._error is not None:
        assert str(fed._error).startswith(("protocol error from the broker", "the broker"))


def test_a_packet_longer_than_our_maximum_is_refused_from_its_header() -> None:
    """Five bytes announce 2 MB + 1: refused at once, not buffered while it arrives."""
    client = _client()
    header = b"\x30" + _varint(packets.MAX_PACKET_SIZE)
    with pytest.raises(packets.ProtocolError, match="above our maximum"):
        client._parse(bytearray(header))
    _feed(client, [header])
    assert "above our maximum" in str(client._error)
    assert client._protocol is None  # the connection is closed


def test_the_largest_packet_we_accept_is_parsed() -> None:
    payload = b"p" * (packets.MAX_PACKET_SIZE - 100)
    body = _text("big") + b"\x00" + payload
    raw = _packet(packets.PUBLISH << 4, body)
    assert len(raw) <= packets.MAX_PACKET_SIZE
    client = _client()
    assert [("big", payload, 0, False, 0)] == _seen(_feed(client, [raw[:70_000], raw[70_000:]]))


def test_connect_tells_the_broker_our_maximum_packet_size() -> None:
    raw = packets.connect(
        client_id="c",
        username=None,
        password=None,
        keepalive=15,
        clean_start=True,
        session_expiry=0,
        receive_maximum=10,
        will=None,
        maximum_packet_size=123_456,
    )
    # Fixed header (2), protocol name (6), version, flags, keepalive (4): properties next.
    found, _ = packets.properties(raw, 12)
    assert 123_456 == found[packets.MAXIMUM_PACKET_SIZE]
    assert 10 == found[packets.RECEIVE_MAXIMUM]


async def test_an_answer_of_the_wrong_type_for_a_packet_id_is_a_protocol_error() -> None:
    """A PUBACK for the id of our SUBSCRIBE must not pass as its SUBACK."""
    client = _client()
    waiter = client._expect(7, packets.SUBACK)
    with pytest.raises(packets.ProtocolError, match="answers packet id 7"):
        client._parse(bytearray(b"\x40\x02\x00\x07"))
    assert not waiter.done()
    assert 0 == client._inflight
