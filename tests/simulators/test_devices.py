"""Simulated fences and cameras publish protocol reports and retained statuses."""

from __future__ import annotations

import base64
import json

import pytest

from riverguard.testing import TINY_JPEG
from riverguard.wire import topics
from riverguard.wire.models import CameraReport, DeviceStatusReport, FenceReport
from simulators.devices import CameraSim, FenceSim, initial_seq
from tests.conftest import Broker
from tests.edge.support import background, recording

SITE = "danshui-bridge"


@pytest.mark.integration
async def test_fence_reports_with_increasing_seq_and_status_online_then_offline(
    own_broker: Broker,
) -> None:
    report_topic = topics.field_report(SITE, "fence", "db-fence-01")
    status_topic = topics.field_status(SITE, "fence", "db-fence-01")
    async with recording(own_broker.settings("sim"), "field/#") as view:
        async with FenceSim(own_broker.settings("sim"), SITE, "db-fence-01", seq_start=41) as fence:
            await fence.report("z1", "breach")
            await fence.report("z1", "clear")
        await view.wait_count(status_topic, 2)
        reports = [
            FenceReport.model_validate_json(p) for p in await view.wait_count(report_topic, 2)
        ]
        assert [(42, "breach"), (43, "clear")] == [(r.seq, r.state) for r in reports]
        online, offline = (json.loads(p) for p in view.on(status_topic))
        assert {"online", "battery", "rssi"} == set(online)
        assert online["online"] is True
        assert 0.0 < online["battery"] <= 1.0
        assert -150 <= online["rssi"] <= 0
        assert {"online": False} == offline


@pytest.mark.integration
async def test_heartbeat_repeats_the_retained_online_status(own_broker: Broker) -> None:
    status_topic = topics.field_status(SITE, "camera", "db-cam-02")
    async with (
        recording(own_broker.settings("sim"), status_topic) as view,
        CameraSim(own_broker.settings("sim"), SITE, "db-cam-02") as camera,
        background(camera.heartbeat(0.02), "test.heartbeat"),
    ):
        await view.wait_count(status_topic, 4)
    statuses = [DeviceStatusReport.model_validate_json(p) for p in view.on(status_topic)[:4]]
    assert [True] * 4 == [status.online for status in statuses]
    assert all(status.battery is not None and status.rssi is not None for status in statuses)


@pytest.mark.integration
async def test_camera_detection_carries_the_snapshot(own_broker: Broker) -> None:
    report_topic = topics.field_report(SITE, "camera", "db-cam-01")
    async with recording(own_broker.settings("sim"), report_topic) as view:
        async with CameraSim(own_broker.settings("sim"), SITE, "db-cam-01") as camera:
            await camera.detect("z1", "water_entry", snapshot=TINY_JPEG)
        [payload] = await view.wait_count(report_topic, 1)
        report = CameraReport.model_validate_json(payload)
        assert ("water_entry", "person") == (report.rule, report.object)
        assert TINY_JPEG == base64.b64decode(report.snapshot or "")


def test_a_simulator_restarted_a_second_later_starts_ten_seqs_higher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([1_790_000_000.0, 1_790_000_001.0])
    monkeypatch.setattr("simulators.devices.time.time", lambda: next(clock))
    first, second = initial_seq(), initial_seq()
    assert 10 == second - first
