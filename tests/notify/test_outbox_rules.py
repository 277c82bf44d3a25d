"""What an escalation queues, when a failed notification is tried again, and how
many sends a responder and a channel get in any minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.dispatch import Dispatch
from hub.notify.backoff import Backoff
from hub.notify.plan import plan_calls, stand_downs
from hub.notify.rate_limit import RateLimits, SlidingWindow
from hub.store import NotificationRow, PlannedCall
from riverguard.config import Config

START = datetime(2026, 7, 18, 11, 0, tzinfo=UTC)


def _config() -> Config:
    channel = {"kind": "apprise", "url": "dingtalk://TOKEN0123/"}
    return Config.model_validate(
        {
            "sites": [
                {
                    "id": "s1",
                    "name": "S1",
                    "grid": "city/grid-01",
                    "zones": [{"id": "z1", "name": "Z1"}],
                    "escalation": [
                        {"after_s": 60, "level_name": "grid officer", "call": ["wang", "li"]},
                        {"after_s": 60, "level_name": "village police", "call": []},
                    ],
                }
            ],
            "notify": {
                "webhooks": [
                    {
                        "id": "hook",
                        "url": "https://x.example.cn/",
                        "secret": "s" * 16,
                        "per_minute": 5,
                    }
                ]
            },
            "responders": [
                {
                    "id": "wang",
                    "name": "Wang",
                    "channels": [channel, {"kind": "webhook", "webhook": "hook"}],
                },
                {"id": "li", "name": "Li", "channels": [channel]},
            ],
        }
    )


def test_an_escalation_calls_each_responder_on_call_on_each_channel_once() -> None:
    calls = plan_calls(_config(), "a-1", "s1", 1, START)
    assert ["a-1/1/wang/0", "a-1/1/wang/1", "a-1/1/li/0"] == [call.key for call in calls]
    assert ["dingtalk", "webhook:hook", "dingtalk"] == [call.channel_label for call in calls]
    # Both responders' robot is one group robot: one key, one limit of 20 a minute.
    assert calls[0].channel_key == calls[2].channel_key
    assert "TOKEN0123" not in calls[0].channel_key
    assert [20, 5, 20] == [call.channel_limit for call in calls]


def test_a_level_that_calls_nobody_and_the_duty_officers_level_queue_nothing() -> None:
    assert [] == plan_calls(_config(), "a-1", "s1", 2, START)
    assert [] == plan_calls(_config(), "a-1", "s1", 0, START)


def test_the_wait_doubles_from_the_first_up_to_the_cap_then_it_gives_up() -> None:
    backoff = Backoff(first_s=10, cap_s=60, max_attempts=5)
    no_jitter = [backoff.next_attempt(n, START, lambda: 0.0) for n in range(1, 6)]
    assert [START + timedelta(seconds=s) for s in (10, 20, 40, 60)] + [None] == no_jitter


@given(st.integers(1, 99), st.floats(0, 1, exclude_max=True))
def test_jitter_takes_at_most_half_the_wait_off(attempts: int, jitter: float) -> None:
    backoff = Backoff(first_s=10, cap_s=600, max_attempts=100)
    full = min(600.0, 10 * 2.0 ** (attempts - 1))
    assert full / 2 <= backoff.delay_s(attempts, jitter) <= full


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 5),
    st.lists(
        st.tuples(st.sampled_from(["wang", "li"]), st.integers(0, 200)), min_size=1, max_size=60
    ),
)
def test_no_window_ever_holds_more_sends_than_the_limit(
    limit: int, wishes: list[tuple[str, int]]
) -> None:
    """Each wish to send (responder, seconds later than the last) waits for
    free_at; whatever the pattern, any 60 s holds at most ``limit`` sends per key."""
    window = SlidingWindow(60)
    now = START
    sent: dict[str, list[datetime]] = {}
    for key, gap in wishes:
        now += timedelta(seconds=gap)
        at = window.free_at(key, limit, now)
        assert at >= now
        window.take(key, limit, at)
        sent.setdefault(key, []).append(at)
        now = max(now, at)
    for times in sent.values():
        for first in times:
            inside = [t for t in times if first <= t < first + timedelta(seconds=60)]
            assert len(inside) <= limit


def test_a_send_waits_for_the_stricter_of_its_responders_and_its_channels_limit() -> None:
    limits = RateLimits(responder_limit=3)
    for second in range(2):
        at = START + timedelta(seconds=second)
        assert at == limits.free_at("wang", "robot", 2, at)
        limits.take("wang", "robot", 2, at)
    # The robot is full (2 a minute) though Wang could take a third.
    later = START + timedelta(seconds=5)
    assert START + timedelta(seconds=60) == limits.free_at("wang", "robot", 2, later)
    assert later == limits.free_at("wang", "webhook", None, later)
    # Another responder on the same robot waits for the robot too.
    assert START + timedelta(seconds=60) == limits.free_at("li", "robot", 2, later)
    limits.take("wang", "webhook", None, later)
    assert START + timedelta(seconds=60) == limits.free_at("wang", "email", None, later)


def test_idle_keys_are_forgotten_once_their_sends_left_the_window() -> None:
    window = SlidingWindow(60)
    window.take("wang", 1, START)
    assert START + timedelta(seconds=60) == window.free_at("wang", 1, START)
    window.forget_idle(START + timedelta(seconds=60))
    assert START == window.free_at("wang", 1, START)


@pytest.mark.parametrize("window_s", [0, -1])
def test_a_window_must_have_a_length(window_s: float) -> None:
    with pytest.raises(ValueError, match="window"):
        SlidingWindow(window_s)


def test_a_stand_down_goes_once_per_channel_that_carried_a_call_to_those_called_off() -> None:
    """wang had calls at levels 1 and 2 on channel 0 and one on channel 1; li, not
    called off (on scene), had one too: wang gets one stand-down per channel, at the
    level of the last call on it, li none."""

    def row(responder: str, level: int, channel: int) -> NotificationRow:
        call = PlannedCall("a-1", level, responder, channel, f"c{channel}", f"c{channel}", None)
        return NotificationRow(
            f"n-{responder}-{level}-{channel}", call, "sent", 1, START, "", START, START
        )

    wang = Dispatch("d-wang", "a-1", "wang", 1, "cancelled", START, ended_at=START)
    carried = [row("wang", 1, 0), row("wang", 2, 0), row("wang", 1, 1), row("li", 1, 0)]

    told = stand_downs([wang], carried)

    assert [("wang", 0, 2, "stand_down"), ("wang", 1, 1, "stand_down")] == sorted(
        (c.responder_id, c.channel_index, c.level, c.purpose) for c in told
    )
    assert {"a-1/stand_down/wang/0", "a-1/stand_down/wang/1"} == {c.key for c in told}
