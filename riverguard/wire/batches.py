"""Event batches (PROTOCOL 7.12): several 2.1 events in one MQTT message.

A batch is a JSON array of event objects, at most ``MAX_BATCH_EVENTS`` of them
and ``MAX_BATCH_PAYLOAD_BYTES`` in all. The edge packs the JSON it already
holds for each event, without parsing or serialising anything again.
"""

from __future__ import annotations

from collections.abc import Sequence

from riverguard.wire.models import MAX_BATCH_EVENTS, MAX_BATCH_PAYLOAD_BYTES


def pack(payloads: Sequence[bytes]) -> list[bytes]:
    """The events' JSON objects as batches, in order, each within both limits.

    An event too big to share a batch goes in one of its own (the hub refuses
    one over the byte limit, as it refuses such an event sent alone).
    """
    batches: list[bytes] = []
    start, size = 0, 2  # the brackets
    for index, payload in enumerate(payloads):
        grown = size + len(payload) + (1 if index > start else 0)
        if index > start and (index - start == MAX_BATCH_EVENTS or grown > MAX_BATCH_PAYLOAD_BYTES):
            batches.append(_array(payloads[start:index]))
            start, grown = index, 2 + len(payload)
        size = grown
    if start < len(payloads):
        batches.append(_array(payloads[start:]))
    return batches


def _array(payloads: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(payloads) + b"]"
