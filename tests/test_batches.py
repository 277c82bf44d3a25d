"""Event batches (PROTOCOL 7.12) are packed in order, within both limits."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from riverguard.wire import batches
from riverguard.wire.models import MAX_BATCH_EVENTS, MAX_BATCH_PAYLOAD_BYTES


def _payload(number: int, size: int = 40) -> bytes:
    text = json.dumps({"id": f"f:{number}", "pad": ""})
    return json.dumps({"id": f"f:{number}", "pad": "x" * (size - len(text))}).encode()


def _ids(packed: list[bytes]) -> list[list[str]]:
    return [[event["id"] for event in json.loads(batch)] for batch in packed]


def _all_ids(packed: list[bytes]) -> list[str]:
    return [event_id for ids in _ids(packed) for event_id in ids]


def test_few_events_make_one_array_in_order() -> None:
    assert [["f:0", "f:1", "f:2"]] == _ids(batches.pack([_payload(n) for n in range(3)]))


def test_nothing_packs_to_no_batch() -> None:
    assert [] == batches.pack([])


def test_a_batch_holds_at_most_the_event_limit() -> None:
    packed = batches.pack([_payload(n) for n in range(2 * MAX_BATCH_EVENTS + 1)])
    assert [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 1] == [len(ids) for ids in _ids(packed)]
    assert [f"f:{n}" for n in range(2 * MAX_BATCH_EVENTS + 1)] == _all_ids(packed)


def test_a_batch_holds_at_most_the_byte_limit_and_fills_up_to_it() -> None:
    size = 10_000
    payloads = [_payload(n, size) for n in range(120)]
    packed = batches.pack(payloads)
    assert all(len(batch) <= MAX_BATCH_PAYLOAD_BYTES for batch in packed)
    # Full: one more event would not have fitted.
    assert all(len(batch) + size + 1 > MAX_BATCH_PAYLOAD_BYTES for batch in packed[:-1])
    assert [f"f:{n}" for n in range(120)] == _all_ids(packed)


def test_an_event_too_big_to_share_goes_alone() -> None:
    big = _payload(1, MAX_BATCH_PAYLOAD_BYTES)
    packed = batches.pack([_payload(0), big, _payload(2)])
    assert [["f:0"], ["f:1"], ["f:2"]] == _ids(packed)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(
        st.one_of(
            st.integers(40, 2_000),
            st.integers(40, 2_000),
            st.integers(100_000, MAX_BATCH_PAYLOAD_BYTES + 10),
        ),
        max_size=1_200,
    )
)
def test_any_events_pack_in_order_within_both_limits(sizes: list[int]) -> None:
    payloads = [_payload(number, size) for number, size in enumerate(sizes)]
    packed = batches.pack(payloads)
    assert [f"f:{number}" for number in range(len(sizes))] == _all_ids(packed)
    for batch in packed:
        count = len(json.loads(batch))
        assert 1 <= count <= MAX_BATCH_EVENTS
        assert count == 1 or len(batch) <= MAX_BATCH_PAYLOAD_BYTES  # a big one goes alone
