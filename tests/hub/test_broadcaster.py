"""Console fan-out: seq, resume from the ring buffer, bounded client queues."""

from __future__ import annotations

import json

from hub.broadcaster import Broadcaster, Client
from hub.metrics import HubMetrics


def _broadcaster(**kwargs: int) -> Broadcaster:
    return Broadcaster(HubMetrics(), start_seq=100, **kwargs)


def test_every_message_gets_the_next_seq_and_one_encoding() -> None:
    broadcaster = _broadcaster()
    first = broadcaster.publish("alarm", {"id": "alm-1"})
    second = broadcaster.publish("site", {"id": "s"})
    assert (101, 102) == (first.seq, second.seq)
    assert {"seq": 101, "type": "alarm", "data": {"id": "alm-1"}} == json.loads(first.text)


def test_resume_returns_what_came_after_since() -> None:
    broadcaster = _broadcaster()
    for n in range(5):
        broadcaster.publish("alarm", {"n": n})
    seq, replay = broadcaster.attach(Client(10), since=102)
    assert 105 == seq
    assert [103, 104, 105] == [e.seq for e in replay or []]


def test_resume_at_the_current_seq_replays_nothing() -> None:
    broadcaster = _broadcaster()
    broadcaster.publish("alarm", {})
    assert (101, []) == broadcaster.attach(Client(10), since=101)


def test_too_old_or_future_since_asks_for_a_fresh_hello() -> None:
    broadcaster = _broadcaster(ring_size=3)
    for n in range(10):
        broadcaster.publish("alarm", {"n": n})
    assert None is broadcaster.attach(Client(10), since=105)[1]
    assert None is broadcaster.attach(Client(10), since=999)[1]
    assert [108, 109, 110] == [e.seq for e in broadcaster.attach(Client(10), since=107)[1] or []]


def test_events_go_only_to_subscribers_of_their_site() -> None:
    broadcaster = _broadcaster()
    nobody, one, everyone = Client(10), Client(10, {"a"}), Client(10, {"*"})
    for client in (nobody, one, everyone):
        broadcaster.attach(client, None)
    broadcaster.publish("event", {}, site="a")
    broadcaster.publish("event", {}, site="b")
    broadcaster.publish("alarm", {})
    assert (1, 2, 3) == (nobody.queue.qsize(), one.queue.qsize(), everyone.queue.qsize())


def test_a_client_whose_queue_is_full_is_marked_and_dropped_others_are_not() -> None:
    metrics = HubMetrics()
    broadcaster = Broadcaster(metrics, queue_size=3, start_seq=0)
    slow, fast = Client(3), Client(100)
    broadcaster.attach(slow, None)
    broadcaster.attach(fast, None)
    for n in range(5):
        broadcaster.publish("alarm", {"n": n})
    assert slow.overflowed.is_set()
    assert not fast.overflowed.is_set()
    assert 1 == broadcaster.client_count
    assert 1.0 == metrics.ws_slow_closed._value.get()
