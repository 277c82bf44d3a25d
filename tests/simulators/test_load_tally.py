"""The load tool waits for its own events only: a shared stack carries others' too."""

from __future__ import annotations

from simulators.load import events_heard, ours


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


def test_an_event_is_matched_by_device_and_seq_whatever_boot_and_key_tag_the_edge_gave_it() -> None:
    frame = [
        {"type": "event", "data": {"id": "db-fence-01:786900650:kabcdefghijklmnop"}},
        # The edge took another sender's small seq for a restart of this fence.
        {"type": "event", "data": {"id": "db-fence-02:786900651:b1796677000:kqrstuvwxyz234567"}},
        {"type": "alarm", "data": {"id": "alm-1"}},
    ]
    assert ["db-fence-01:786900650", "db-fence-02:786900651"] == events_heard(frame)
    assert ["db-fence-01:7"] == events_heard({"type": "event", "data": {"id": "db-fence-01:7"}})
