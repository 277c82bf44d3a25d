"""The load tool waits for its own events only: a shared stack carries others' too."""

from __future__ import annotations

from simulators.load import ours


def test_only_this_runs_events_count_each_once() -> None:
    sent_at = {"fence-1:1": 0.0, "fence-1:2": 0.1, "fence-2:1": 0.2}
    arrivals = [
        ("fence-1:1", 1.0),
        ("fence-9:7", 1.1),  # a simulator's, not this run's
        ("fence-1:1", 1.2),  # the same event again
        ("fence-2:1", 1.3),
        ("fence-9:8", 1.4),
    ]
    assert 2 == ours(arrivals, sent_at)
