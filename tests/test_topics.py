"""Topics are built and parsed in one place, and the two agree."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from riverguard.wire import topics
from riverguard.wire.topics import FieldTopic, FrigateTopic, HubTopic, SiteTopic, TopicError


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (topics.field_report("s1", "fence", "f-1"), FieldTopic("s1", "fence", "f-1", "report")),
        (topics.field_status("s1", "camera", "c1"), FieldTopic("s1", "camera", "c1", "status")),
        (topics.speaker_play("s1", "sp"), FieldTopic("s1", "speaker", "sp", "play")),
        (topics.speaker_state("s1", "sp"), FieldTopic("s1", "speaker", "sp", "state")),
        (topics.events("s1"), SiteTopic("s1", "events")),
        (topics.event_batch("s1"), SiteTopic("s1", "event_batch")),
        (topics.hub_status(), HubTopic()),
        (topics.committed("s1"), SiteTopic("s1", "committed")),
        (topics.snapshot("s1", "f-1:42"), SiteTopic("s1", "snapshot", "f-1:42")),
        (topics.edge_status("s1"), SiteTopic("s1", "edge_status")),
        (topics.device_status("s1", "f-1"), SiteTopic("s1", "device_status", "f-1")),
        (topics.speaker_ack("s1", "sp"), SiteTopic("s1", "ack", "sp")),
        (topics.announce("s1", "sp"), SiteTopic("s1", "announce", "sp")),
        (topics.stop("s1", "sp"), SiteTopic("s1", "stop", "sp")),
        (topics.frigate_events(), FrigateTopic()),
        (topics.frigate_snapshot("cam_a"), FrigateTopic("cam_a", "person")),
    ],
)
def test_built_topics_parse_back(topic: str, expected: object) -> None:
    assert expected == topics.parse(topic)


@pytest.mark.parametrize(
    "topic",
    [
        "field/s1/fence",  # too short
        "field/s1/drone/d1",  # unknown device type
        "field/S1/fence/f1",  # identifiers are lower case
        "field/s1/fence/f1/reboot",  # unknown suffix
        "field/s1/fence/f1/status/extra",
        "riverguard/v1/sites/s1",
        "riverguard/v1/sites/s1/alarms",
        "riverguard/v1/sites/s1/events/other",
        "riverguard/v1/sites/s1/events/batch/more",
        "riverguard/v1/hub/status/extra",
        "riverguard/v1/hub",
        "riverguard/v1/sites/s1/speakers/sp/dance",
        "riverguard/v1/sites/s1/snapshots/bad id",
        "riverguard/v1/sites/" + "x" * 70 + "/events",
        "frigate/cam/person",
        "frigate/cam/person/snapshot/extra",
        "homeassistant/status",
        "",
    ],
)
def test_topics_outside_the_protocol_are_refused(topic: str) -> None:
    with pytest.raises(TopicError):
        topics.parse(topic)


def test_subscriptions_cover_what_the_builders_produce() -> None:
    """Every topic the hub must hear matches one of its subscription filters."""

    def matches(pattern: str, topic: str) -> bool:
        pattern_parts, topic_parts = pattern.split("/"), topic.split("/")
        if len(pattern_parts) != len(topic_parts):
            return False
        return all(p in ("+", t) for p, t in zip(pattern_parts, topic_parts, strict=True))

    for topic in (
        topics.events("s1"),
        topics.event_batch("s1"),
        topics.snapshot("s1", "f:1"),
        topics.device_status("s1", "f"),
        topics.edge_status("s1"),
        topics.speaker_ack("s1", "sp"),
    ):
        assert any(matches(p, topic) for p in topics.HUB_SUBSCRIPTIONS), topic
    for topic in (
        topics.announce("s1", "sp"),
        topics.stop("s1", "sp"),
        topics.committed("s1"),
        topics.hub_status(),
    ):
        assert any(matches(p, topic) for p in topics.edge_subscriptions("s1")), topic


@pytest.mark.parametrize("prefix", ["frigate-s002", "nvr/east"])
def test_frigate_topics_under_a_site_prefix_parse_back_with_that_prefix(prefix: str) -> None:
    events, snapshot = (
        topics.frigate_events(prefix),
        topics.frigate_snapshot("cam_a", "person", prefix),
    )
    assert (f"{prefix}/events", f"{prefix}/cam_a/person/snapshot") == (events, snapshot)
    assert FrigateTopic() == topics.parse(events, prefix)
    assert FrigateTopic("cam_a", "person") == topics.parse(snapshot, prefix)


def test_frigate_topics_of_another_prefix_are_not_the_readers() -> None:
    """An edge reading ``frigate-s001`` refuses ``frigate-s002``'s and the default NVR's topics."""
    for topic in (
        topics.frigate_events("frigate-s002"),
        topics.frigate_snapshot("cam_a", "person", "frigate-s002"),
        topics.frigate_events(),
    ):
        with pytest.raises(TopicError):
            topics.parse(topic, "frigate-s001")


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        ("", "empty"),
        ("frigate/+", "wildcards"),
        ("frigate#", "wildcards"),
        ("/frigate", "start or end"),
        ("frigate/", "start or end"),
        ("nvr//east", "empty level"),
        ("$SYS", "cannot publish"),
        ("field", "Riverguard's own"),
        ("riverguard/frigate", "Riverguard's own"),
    ],
)
def test_unusable_frigate_prefixes_are_refused_with_the_reason(prefix: str, reason: str) -> None:
    with pytest.raises(TopicError, match=reason):
        topics.check_frigate_prefix(prefix)


_LEVELS = ["field", "riverguard", "v1", "sites", "hub", "status", "danshui-bridge", "fence"]
_LEVELS += ["camera", "speaker", "db-fence-01", "events", "snapshots", "frigate", "person"]
_LEVELS += ["snapshot", "+", "#", "", "Z", "a b", "水", "x" * 70, "\x00"]


@settings(max_examples=500, deadline=None)
@given(
    topic=st.one_of(
        st.text(max_size=80),
        st.lists(st.sampled_from(_LEVELS), max_size=8).map("/".join),
    )
)
@example(topic="field/danshui-bridge/fence/db-fence-01/status/extra")
@example(topic="riverguard/v1/sites//events")
def test_any_topic_parses_to_a_protocol_topic_or_is_a_topic_error(topic: str) -> None:
    """Whatever a broker delivers, routing it is a parse or a TopicError, nothing else."""
    try:
        parsed = topics.parse(topic)
    except TopicError:
        return
    assert isinstance(parsed, FieldTopic | SiteTopic | HubTopic | FrigateTopic)
