"""MQTT 5 packets: the few our client sends and reads, encoded and decoded by hand.

Only what Riverguard's agents use: CONNECT/CONNACK, PUBLISH at QoS 0 and 1,
PUBACK, SUBSCRIBE/SUBACK, PINGREQ/PINGRESP and DISCONNECT (OASIS MQTT 5.0,
section 3). Pure functions over bytes, so they are tested without a broker.
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

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # reason 0, normal disconnection: the broker drops the will

# How many bytes each property's value takes, by identifier; None: length-prefixed.
_FIXED_SIZE = {
    0x01: 1, 0x02: 4, 0x11: 4, 0x13: 2, 0x17: 1, 0x18: 4, 0x19: 1, 0x21: 2, 0x22: 2,
    0x23: 2, 0x24: 1, 0x25: 1, 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1,
}  # fmt: skip
_STRING_PAIR = 0x26  # user property: two strings
_VARINT = 0x0B  # subscription identifier


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


def read_varint(data: bytes | bytearray | memoryview, start: int) -> tuple[int, int] | None:
    """(value, index after it), or None if the bytes end before it does."""
    value = 0
    shift = 0
    index = start
    while index < len(data):
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


def properties(data: bytes | bytearray | memoryview, start: int) -> tuple[dict[int, object], int]:
    """The property block at ``start``: ({identifier: value}, index after the block)."""
    found = read_varint(data, start)
    if found is None:
        raise ProtocolError("truncated properties")
    length, index = found
    end = index + length
    result: dict[int, object] = {}
    while index < end:
        identifier = data[index]
        index += 1
        size = _FIXED_SIZE.get(identifier)
        if size is not None:
            result[identifier] = int.from_bytes(data[index : index + size], "big")
            index += size
        elif identifier == _VARINT:
            value = read_varint(data, index)
            if value is None:
                raise ProtocolError("truncated subscription identifier")
            result[identifier], index = value
        else:
            count = 2 if identifier == _STRING_PAIR else 1
            for _ in range(count):
                (size,) = struct.unpack_from("!H", data, index)
                result[identifier] = bytes(data[index + 2 : index + 2 + size])
                index += 2 + size
    if index != end:
        raise ProtocolError("properties overrun their length")
    return result, end
