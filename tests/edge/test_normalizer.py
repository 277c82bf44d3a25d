"""Duplicates are dropped and fence/camera pairs in one zone become critical."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edge.dedup import RecentSeqs
from edge.errors import Rejected
from edge.normalizer import Normalizer
from riverguard.config import Config
from riverguard.testing import camera_report, fence_report
from riverguard.wire.topics import FieldTopic

SITE = "danshui-bridge"  # correlation window 30 s
T0 = datetime(2026, 7, 27, 21, 0, 0, tzinfo=UTC)
FENCE_Z1 = FieldTopic(SITE, "fence", "db-fence-01", "report")
FENCE_Z2 = FieldTopic(SITE, "fence", "db-fence-02", "report")
CAM_Z1 = FieldTopic(SITE, "camera", "db-cam-01", "report")
CAM_Z2 = FieldTopic(SITE, "camera", "db-cam-02", "report")


@pytest.fixture
def normalizer(example_config: Config) -> Normalizer:
    return Normalizer.for_site(example_config, SITE)


def _raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def test_same_device_and_seq_twice_is_a_duplicate(normalizer: Normalizer) -> None:
    # One report delivered twice: the same bytes (a seen seq with a new device time
    # would be a device restart, edge.dedup).
    report = _raw(fence_report(10, "z1", ts=T0))
    normalizer.report(FENCE_Z1, report, T0)
    with pytest.raises(Rejected) as caught:
        normalizer.report(FENCE_Z1, report, T0 + timedelta(seconds=1))
    assert "duplicate" == caught.value.reason


def test_same_seq_from_another_device_is_not_a_duplicate(normalizer: Normalizer) -> None:
    normalizer.report(FENCE_Z1, _raw(fence_report(10, "z1")), T0)
    assert (
        "db-fence-02:10" == normalizer.report(FENCE_Z2, _raw(fence_report(10, "z2")), T0).event.id
    )


def test_rejected_report_does_not_consume_its_seq(normalizer: Normalizer) -> None:
    """A report rejected for a bad zone, then sent right, is accepted."""
    with pytest.raises(Rejected):
        normalizer.report(FENCE_Z1, _raw(fence_report(11, "z9")), T0)
    assert (
        "db-fence-01:11" == normalizer.report(FENCE_Z1, _raw(fence_report(11, "z1")), T0).event.id
    )


@pytest.mark.parametrize("state", ["breach", "clear"])
def test_a_report_in_a_zone_its_device_does_not_cover_is_refused(
    normalizer: Normalizer, state: str
) -> None:
    """db-fence-01 covers z1: its breach in z2 would raise z2's alarm, its clear there
    would mark z2's person gone. Refused before the duplicate filter: its seq stays free."""
    with pytest.raises(Rejected) as caught:
        normalizer.report(FENCE_Z1, _raw(fence_report(12, "z2", state)), T0)
    assert "wrong_zone" == caught.value.reason
    assert (
        "db-fence-01:12" == normalizer.report(FENCE_Z1, _raw(fence_report(12, "z1")), T0).event.id
    )


def test_a_refused_report_in_another_zone_correlates_with_nothing(normalizer: Normalizer) -> None:
    with pytest.raises(Rejected):
        normalizer.report(FENCE_Z1, _raw(fence_report(1, "z2")), T0)
    camera = normalizer.report(CAM_Z2, _raw(camera_report(2, "z2", rule="intrusion")), T0)
    assert ("warning", {}) == (camera.event.severity, camera.event.attrs)


def test_a_device_with_no_zones_listed_reports_for_every_zone(example_config: Config) -> None:
    data = example_config.model_dump()
    [fence] = [d for d in data["devices"] if d["id"] == "db-fence-01"]
    fence["zones"] = []
    normalizer = Normalizer.for_site(Config.model_validate(data), SITE)
    assert "z2" == normalizer.report(FENCE_Z1, _raw(fence_report(1, "z2")), T0).event.zone


def test_recent_seq_memory_is_bounded_per_device() -> None:
    seqs = RecentSeqs(window=3)
    for seq in (1, 2, 3, 4):
        seqs.add("fence", seq)
    assert not seqs.seen("fence", 1)  # forgotten: the oldest left the window
    assert all(seqs.seen("fence", seq) for seq in (2, 3, 4))
    assert not seqs.seen("camera", 2)


def test_camera_after_fence_breach_in_same_zone_is_critical_and_correlated(
    normalizer: Normalizer,
) -> None:
    fence = normalizer.report(FENCE_Z1, _raw(fence_report(1, "z1", "breach")), T0)
    camera = normalizer.report(
        CAM_Z1, _raw(camera_report(2, "z1", rule="intrusion")), T0 + timedelta(seconds=1.5)
    )
    assert "warning" == fence.event.severity
    assert "critical" == camera.event.severity
    assert {"correlated": ["db-fence-01:1"]} == camera.event.attrs


def test_fence_breach_after_camera_person_is_critical_and_correlated(
    normalizer: Normalizer,
) -> None:
    normalizer.report(CAM_Z1, _raw(camera_report(5, "z1", rule="loitering")), T0)
    fence = normalizer.report(FENCE_Z1, _raw(fence_report(6, "z1")), T0 + timedelta(seconds=29))
    assert "critical" == fence.event.severity
    assert ["db-cam-01:5"] == fence.event.attrs["correlated"]


def test_no_correlation_outside_the_window(normalizer: Normalizer) -> None:
    normalizer.report(FENCE_Z1, _raw(fence_report(1, "z1")), T0)
    camera = normalizer.report(
        CAM_Z1, _raw(camera_report(2, "z1", rule="intrusion")), T0 + timedelta(seconds=31)
    )
    assert "warning" == camera.event.severity
    assert {} == camera.event.attrs


def test_no_correlation_across_zones(normalizer: Normalizer) -> None:
    normalizer.report(FENCE_Z1, _raw(fence_report(1, "z1")), T0)
    camera = normalizer.report(CAM_Z2, _raw(camera_report(2, "z2", rule="intrusion")), T0)
    assert {} == camera.event.attrs


def test_fence_clear_and_non_person_detections_do_not_correlate(normalizer: Normalizer) -> None:
    normalizer.report(FENCE_Z1, _raw(fence_report(1, "z1", "clear")), T0)
    dog = camera_report(2, "z1", rule="intrusion")
    dog["object"] = "dog"
    assert {} == normalizer.report(CAM_Z1, _raw(dog), T0).event.attrs
    fence = normalizer.report(FENCE_Z1, _raw(fence_report(3, "z1", "breach")), T0)
    assert "warning" == fence.event.severity


def test_latest_partner_is_named(normalizer: Normalizer) -> None:
    normalizer.report(FENCE_Z1, _raw(fence_report(1, "z1")), T0)
    normalizer.report(FENCE_Z1, _raw(fence_report(2, "z1")), T0 + timedelta(seconds=2))
    camera = normalizer.report(CAM_Z1, _raw(camera_report(3, "z1")), T0 + timedelta(seconds=3))
    assert ["db-fence-01:2"] == camera.event.attrs["correlated"]
    assert "critical" == camera.event.severity
