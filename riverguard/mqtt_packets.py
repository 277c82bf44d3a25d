"""MQTT 5 packets: the few our client sends and reads, encoded and decoded by hand.

Only what Riverguard's agents use: CONNECT/CONNACK, PUBLISH at QoS 0 and 1,
PUBACK, SUBSCRIBE/SUBACK, PINGREQ/PINGRESP and DISCONNECT (OASIS MQTT 5.0,
section 3). Pure functions over bytes, so they are tested without a broker.

Reading is bounded: every length is checked against the packet it is in, so
bytes that are not MQTT 5 raise ``ProtocolError`` (never an ``IndexError`` or a
read into the next packet), and a packet longer than we accept is refused from
its fixed header, before its bytes are buffered.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
SUBSCRIBE = 8
SUBACK = 9
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14

# Property identifiers (MQTT 5.0, 2.2.2.2) that we write or read.
SESSION_EXPIRY_INTERVAL = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
MAXIMUM_QOS = 0x24
MAXIMUM_PACKET_SIZE = 0x27

# The largest packet we accept from the broker, told to it in CONNECT (it then drops
# bigger messages for us instead of sending them): twice the broker's own limit
# (mosquitto.conf, 1,100,000 bytes: a camera report with a 512 KiB snapshot).
MAX_PACKET_SIZE = 2 * 1024 * 1024

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # reason 0, normal disconnection: the broker drops the will

# How many bytes each property's value takes, by identifier; None: length-prefixed.
_FIXED_SIZE = {
    0x01: 1, 0x02: 4, 0x11: 4, 0x13: 2, 0x17: 1, 0x18: 4, 0x19: 1, 0x21: 2, 0x22: 2,
    0x23: 2, 0x24: 1, 0x25: 1, 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1,
}  # fmt: skip
_STRING_PAIR = 0x26  # user property: two strings
_VARINT = 0x0B  # subscription identifier
# Length-prefixed UTF-8 strings: content type, response topic, assigned client id,
# authentication method, response information, server reference, reason string.
_UTF8 = frozenset({0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F})
# Length-prefixed binary data: correlation data, authentication data.
_BINARY = frozenset({0x09, 0x16})


class ProtocolError(Exception):
    """Bytes from the broker that are not the MQTT 5 we expect."""


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(
    data: bytes | bytearray | memoryview, start: int, end: int | None = None
) -> tuple[int, int] | None:
    """(value, index after it), or None if the bytes (up to ``end``) end before it does."""
    value = 0
    shift = 0
    index = start
    stop = len(data) if end is None else min(end, len(data))
    while index < stop:
        byte = data[index]
        value |= (byte & 0x7F) << shift
        index += 1
        if not byte & 0x80:
            return value, index
        shift += 7
        if shift > 21:
            raise ProtocolError("variable byte integer longer than 4 bytes")
    return None


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _binary(raw: bytes) -> bytes:
    return struct.pack("!H", len(raw)) + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + varint(len(body)) + body


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes | str
    qos: int = 0
    retain: bool = False


def connect(
    *,
    client_id: str,
    username: str | None,
    password: str | None,
    keepalive: int,
    clean_start: bool,
    session_expiry: int,
    receive_maximum: int,
    will: Will | None,
    maximum_packet_size: int = MAX_PACKET_SIZE,
) -> bytes:
    flags = 0x02 if clean_start else 0
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    properties = b""
    if session_expiry:
        properties += struct.pack("!BI", SESSION_EXPIRY_INTERVAL, session_expiry)
    properties += struct.pack("!BH", RECEIVE_MAXIMUM, receive_maximum)
    properties += struct.pack("!BI", MAXIMUM_PACKET_SIZE, maximum_packet_size)
    body = bytearray(b"\x00\x04MQTT\x05")
    body += struct.pack("!BH", flags, keepalive)
    body += varint(len(properties)) + properties
    body += _string(client_id)
    if will is not None:
        payload = will.payload.encode() if isinstance(will.payload, str) else will.payload
        body += b"\x00" + _string(will.topic) + _binary(payload)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _binary(password.encode())
    return _packet(CONNECT << 4, bytes(body))


def publish(topic: bytes, payload: bytes, qos: int, packet_id: int, retain: bool) -> bytes:
    """A PUBLISH with no properties; ``topic`` already UTF-8 encoded."""
    first = (PUBLISH << 4) | (qos << 1) | (1 if retain else 0)
    head = struct.pack("!H", len(topic)) + topic
    if qos:
        head += struct.pack("!H", packet_id)
    length = len(head) + 1 + len(payload)
    return bytes((first,)) + varint(length) + head + b"\x00" + payload


def puback(packet_id: int) -> bytes:
    # Remaining length 2: reason code 0 (success) and no properties, implied.
    return struct.pack("!BBH", PUBACK << 4, 2, packet_id)


def subscribe(packet_id: int, filters: list[tuple[str, int]]) -> bytes:
    """``filters``: (topic filter, subscription options byte: QoS, noLocal, ...)."""
    body = struct.pack("!H", packet_id) + b"\x00"
    for topic_filter, options in filters:
        body += _string(topic_filter) + bytes((options,))
    return _packet((SUBSCRIBE << 4) | 0x02, body)


def subscription_options(qos: int, no_local: bool = False) -> int:
    return qos | (0x04 if no_local else 0)


def properties(
    data: bytes | bytearray | memoryview,
    start: int,
    end: int | None = None,
    *,
    decode: bool = True,
) -> tuple[dict[int, object], int]:
    """The property block at ``start`` of a packet ending at ``end``.

    ({identifier: value}, index after the block). Values are ints, ``str`` for
    UTF-8 strings (a user property: its value) and ``bytes`` for binary data;
    with ``decode`` off, strings stay ``bytes`` and are not checked.
    """
    limit = len(data) if end is None else end
    found = read_varint(data, start, limit)
    if found is None:
        raise ProtocolError("truncated property length")
    length, index = found
    stop = index + length
    if stop > limit:
        raise ProtocolError(f"properties of {length} bytes overrun their packet")
    result: dict[int, object] = {}
    while index < stop:
        identifier = data[index]
        index += 1
        size = _FIXED_SIZE.get(identifier)
        if size is not None:
            if index + size > stop:
                raise ProtocolError(f"property {identifier:#04x} cut short")
            result[identifier] = int.from_bytes(data[index : index + size], "big")
            index += size
        elif identifier == _VARINT:
            value = read_varint(data, index, stop)
            if value is None:
                raise ProtocolError("truncated subscription identifier")
            result[identifier], index = value
        elif identifier in _UTF8 or identifier in _BINARY or identifier == _STRING_PAIR:
            for _ in range(2 if identifier == _STRING_PAIR else 1):
                raw, index = _length_prefixed(data, index, stop, identifier)
                result[identifier] = raw if identifier in _BINARY or not decode else utf8(raw)
        else:
            raise ProtocolError(f"unknown property {identifier:#04x}")
    return result, stop


def _length_prefixed(
    data: bytes | bytearray | memoryview, index: int, stop: int, identifier: int
) -> tuple[bytes, int]:
    if index + 2 > stop:
        raise ProtocolError(f"property {identifier:#04x} cut short")
    size = (data[index] << 8) | data[index + 1]
    if index + 2 + size > stop:
        raise ProtocolError(f"property {identifier:#04x} of {size} bytes overruns its block")
    return bytes(data[index + 2 : index + 2 + size]), index + 2 + size


def utf8(raw: bytes | bytearray | memoryview) -> str:
    """An MQTT UTF-8 string: well-formed UTF-8 (no surrogates) without U+0000 (1.5.4)."""
    try:
        text = bytes(raw).decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"a string that is not UTF-8: {exc.reason}") from None
    if "\x00" in text:
        raise ProtocolError("a string with U+0000")
    return text
