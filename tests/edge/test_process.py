"""``riverguard edge`` as its own process: its last will ``offline`` when it dies, ``stopped``."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from riverguard.services import ManagedProcess
from riverguard.wire import topics
from riverguard.wire.models import EdgeStatus
from tests.conftest import Broker
from tests.edge.support import SITE, Recorder, component_env, recording, riverguard_process

pytestmark = pytest.mark.integration

EDGE_STATUS = topics.edge_status(SITE)


@pytest.fixture
def edge_process(own_broker: Broker, tmp_path: Path) -> Iterator[ManagedProcess]:
    env = component_env(own_broker.settings(f"edge-{SITE}"), tmp_path / "edge")
    process = riverguard_process("edge", ["edge", "--site", SITE], env, tmp_path / "edge.log")
    process.start()
    yield process
    process.stop()


def _statuses(recorder: Recorder) -> list[tuple[bool, str]]:
    statuses = [EdgeStatus.model_validate_json(p) for p in recorder.on(EDGE_STATUS)]
    return [(status.online, status.state) for status in statuses]


async def _wait_online(recorder: Recorder, process: ManagedProcess) -> None:
    try:
        await recorder.wait_count(EDGE_STATUS, 1, timeout=15)
    except TimeoutError:
        raise AssertionError(process.log_tail()) from None
    assert [(True, "online")] == _statuses(recorder)


async def test_edge_last_will_marks_it_offline_when_it_dies(
    own_broker: Broker, edge_process: ManagedProcess
) -> None:
    async with recording(own_broker.settings("hub"), EDGE_STATUS) as hub_view:
        await _wait_online(hub_view, edge_process)
        edge_process.kill()  # SIGKILL: no chance to say goodbye, the broker speaks for it
        await hub_view.wait_count(EDGE_STATUS, 2)
        assert [(True, "online"), (False, "offline")] == _statuses(hub_view)
    async with recording(own_broker.settings("hub"), EDGE_STATUS) as late_view:
        [retained] = await late_view.wait_count(EDGE_STATUS, 1)
        assert "offline" == EdgeStatus.model_validate_json(retained).state


async def test_edge_says_stopped_and_exits_cleanly_on_sigterm(
    own_broker: Broker, edge_process: ManagedProcess
) -> None:
    async with recording(own_broker.settings("hub"), EDGE_STATUS) as hub_view:
        await _wait_online(hub_view, edge_process)
        assert edge_process.process is not None
        edge_process.process.send_signal(signal.SIGTERM)
        # Waiting for a child process blocks: keep the event loop (and the recorder) running.
        code = await asyncio.to_thread(edge_process.process.wait, 10)
        assert 0 == code, edge_process.log_tail()
        await hub_view.wait_count(EDGE_STATUS, 2)
        assert [(True, "online"), (False, "stopped")] == _statuses(hub_view)
    assert '"edge stopped"' in edge_process.log_path.read_text()
