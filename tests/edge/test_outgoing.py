"""What the edge tells the hub besides events waits in order while the uplink is down."""

from __future__ import annotations

from edge.outgoing import Message, Outgoing


def _topics(messages: list[Message]) -> list[str]:
    return [message.topic for message in messages]


def test_messages_go_in_order_and_leave_only_once_acknowledged() -> None:
    queue = Outgoing()
    for n in range(3):
        queue.post(f"ack/{n}", "{}")
    sent = queue.ready(lambda m: False)
    assert ["ack/0", "ack/1", "ack/2"] == _topics(sent)
    queue.done(sent[:2])  # the broker acknowledged two; the third is sent again
    assert ["ack/2"] == _topics(queue.ready(lambda m: False))


def test_a_message_held_for_its_event_holds_those_after_it() -> None:
    queue = Outgoing()
    queue.post("status/a", "{}", retain=True)
    queue.post("ack/warning", "{}", after_event="fence:1")
    queue.post("ack/playing", "{}")
    pending = {"fence:1"}
    held = lambda m: m.after_event in pending  # noqa: E731
    first = queue.ready(held)
    assert ["status/a"] == _topics(first)
    queue.done(first)
    pending.clear()  # the hub committed the breach
    assert ["ack/warning", "ack/playing"] == _topics(queue.ready(held))


def test_a_devices_newer_status_replaces_the_one_still_waiting() -> None:
    queue = Outgoing()
    for beat in range(100):  # an outage of many heartbeats
        queue.post("status/fence", f'{{"beat": {beat}}}', retain=True)
        queue.post("status/camera", f'{{"beat": {beat}}}', retain=True)
    waiting = queue.ready(lambda m: False)
    assert ["status/fence", "status/camera"] == _topics(waiting)
    assert b'{"beat": 99}' == waiting[0].payload


def test_a_full_queue_drops_its_oldest_and_counts_it() -> None:
    dropped: list[int] = []
    queue = Outgoing(limit=2, on_drop=dropped.append)
    for n in range(3):
        queue.post(f"ack/{n}", "{}")
    assert ["ack/1", "ack/2"] == _topics(queue.ready(lambda m: False))
    assert [1] == dropped


def test_a_status_replaced_while_its_older_one_is_sent_leaves_the_rest_waiting() -> None:
    queue = Outgoing()
    queue.post("status/fence", '{"beat": 1}', retain=True)
    queue.post("ack/1", "{}")
    sending = queue.ready(lambda m: False)
    queue.post("status/fence", '{"beat": 2}', retain=True)  # while the first is in flight
    queue.done(sending)
    waiting = queue.ready(lambda m: False)
    assert ["status/fence"] == _topics(waiting)
    assert b'{"beat": 2}' == waiting[0].payload
