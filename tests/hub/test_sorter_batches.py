"""Event batches (PROTOCOL 7.12) at the sorter: each element judged as if it came alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.sorter import DEAD_LETTER_BYTES, EventBatchIn, Refused, Sorter
from riverguard.config import Config
from riverguard.wire import topics
from riverguard.wire.models import (
    MAX_BATCH_EVENTS,
    MAX_BATCH_PAYLOAD_BYTES,
    MAX_EVENT_PAYLOAD_BYTES,
)
from riverguard.wire.times import utcnow
from tests.hub.conftest import SITE, event_payload

NOW = utcnow()
BATCH = topics.event_batch(SITE)


@pytest.fixture
def sorter(example_config: Config) -> Sorter:
    return Sorter(example_config)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _batch(sorter: Sorter, elements: list[Any]) -> EventBatchIn:
    item = sorter.sort(BATCH, _json(elements), NOW)
    assert isinstance(item, EventBatchIn)
    return item


def test_a_batch_of_valid_events_gives_each_event_in_order(sorter: Sorter) -> None:
    elements = [event_payload(seq) for seq in range(1, 4)]
    batch = _batch(sorter, elements)
    assert [] == batch.refused
    assert [e["id"] for e in elements] == [item.event.id for item in batch.events]
    assert [item.event.model_dump_json() for item in batch.events] == [
        item.json for item in batch.events
    ]


@pytest.mark.parametrize(
    "element",
    [
        pytest.param(event_payload(7, severity="apocalyptic"), id="invalid-severity"),
        pytest.param(event_payload(7, confidence="high"), id="wrong-type"),
        pytest.param({**event_payload(7), "extra": 1}, id="unknown-field"),
        pytest.param({"id": "db-fence-01:7"}, id="fields-missing"),
        pytest.param("db-fence-01:7", id="not-an-object"),
        pytest.param(None, id="null"),
        pytest.param(
            event_payload(7, attrs={"x": "y" * MAX_EVENT_PAYLOAD_BYTES}), id="oversize-element"
        ),
        pytest.param(event_payload(7, device="ghost-01"), id="unknown-device"),
        pytest.param(event_payload(7, zone="z9"), id="unknown-zone"),
        pytest.param(event_payload(7, zone="z2"), id="zone-its-device-does-not-cover"),
        pytest.param(
            event_payload(7, site="xiyong-wharf", device="xy-fence-01"), id="another-site"
        ),
    ],
)
def test_a_bad_element_is_refused_as_it_would_be_alone_and_the_others_are_kept(
    sorter: Sorter, element: Any
) -> None:
    with pytest.raises(Refused) as alone:
        sorter.sort(topics.events(SITE), _json(element), NOW)
    good = [event_payload(1), event_payload(2)]

    batch = _batch(sorter, [good[0], element, good[1]])

    assert [g["id"] for g in good] == [item.event.id for item in batch.events]
    [refused] = batch.refused
    assert (alone.value.reason, alone.value.ack) == (refused.reason, refused.ack)
    assert refused.detail.startswith("batch element 1: ")
    # The dead letter is the element's own JSON (its start, for a big one).
    compact = json.dumps(element, separators=(",", ":")).encode()
    assert compact[:DEAD_LETTER_BYTES] == refused.payload


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[{", "malformed_json"),
        (b"\xff[]", "malformed_json"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed_json"),
        (_json(event_payload(1)), "not_array"),
        (b'"db-fence-01:1"', "not_array"),
        (b"[]", "invalid"),
        (_json([event_payload(seq) for seq in range(MAX_BATCH_EVENTS + 1)]), "oversize"),
        (b"[" + b" " * MAX_BATCH_PAYLOAD_BYTES + b"]", "oversize"),
    ],
)
def test_a_batch_that_is_not_a_bounded_array_is_refused_whole(
    sorter: Sorter, payload: bytes, reason: str
) -> None:
    with pytest.raises(Refused) as caught:
        sorter.sort(BATCH, payload, NOW)
    assert (reason, None) == (caught.value.reason, caught.value.ack)


def test_a_full_batch_within_both_limits_is_accepted(sorter: Sorter) -> None:
    elements = [event_payload(seq) for seq in range(MAX_BATCH_EVENTS)]
    assert len(_json(elements)) <= MAX_BATCH_PAYLOAD_BYTES
    assert MAX_BATCH_EVENTS == len(_batch(sorter, elements).events)
