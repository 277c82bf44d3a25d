"""Simulated cameras attach a synthetic 640x360 night scene, not a 1x1 pixel."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from riverguard.testing import TINY_JPEG
from riverguard.wire.models import MAX_SNAPSHOT_BYTES
from simulators import snapshot
from simulators.snapshot import render_snapshot, render_snapshots
from tests.edge.support import jpeg_size

AT = datetime(2026, 7, 27, 21, 21, 5, tzinfo=UTC)


def test_rendered_snapshot_is_a_640x360_jpeg_well_under_the_limit() -> None:
    jpeg = render_snapshot("db-cam-01", AT)
    assert jpeg.startswith(b"\xff\xd8\xff")
    assert (640, 360) == jpeg_size(jpeg)
    assert 10_000 < len(jpeg) < MAX_SNAPSHOT_BYTES // 4


async def test_each_camera_gets_its_own_snapshot() -> None:
    jpegs = await render_snapshots(["db-cam-01", "db-cam-02"])
    assert ["db-cam-01", "db-cam-02"] == sorted(jpegs)
    assert jpegs["db-cam-01"] != jpegs["db-cam-02"]  # the camera id is drawn in


def test_without_ffmpeg_the_camera_falls_back_to_the_tiny_jpeg(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("simulators.snapshot.shutil.which", lambda name: None)
    assert TINY_JPEG == render_snapshot("db-cam-01", AT)


def test_a_failing_ffmpeg_falls_back_to_the_tiny_jpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "_SCENE", ("no_such_filter=1",))
    assert TINY_JPEG == render_snapshot("db-cam-01", AT)
