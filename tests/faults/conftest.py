"""One stack for the whole fault suite, supervised as ``riverguard up`` supervises it.

Starting a stack takes most of a fault's cost (influxd, the hub rendering its
warnings, the edges): every case of the suite runs on this one, one after the
other, each waiting until the stack has recovered from the last.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from riverguard.services import ServiceError
from riverguard.stack import Stack
from simulators.load import fences_config
from tests.faults.support import Supervisor

# Two sites of twenty fences: a stream of a few hundred reports a second is a few
# reports a second per fence, as a fence in an incident sends.
SITES = 2
FENCES_PER_SITE = 20


@pytest.fixture(scope="package")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    """A stack without simulators, its supervisor loop running in a thread."""
    directory = tmp_path_factory.mktemp("faults")
    config = directory / "fences.toml"
    config.write_text(fences_config(SITES, FENCES_PER_SITE), encoding="utf-8")
    lines: list[str] = []
    lock = threading.Lock()

    def progress(message: str) -> None:
        with lock:
            lines.append(message)

    stack = Stack(
        data_dir=Path(directory / "stack"),
        config_path=config,
        simulators=(),
        ports=None,
        progress=progress,
    )
    try:
        stack.start()
    except ServiceError:
        stack.stop()
        raise
    supervisor = Supervisor(stack, lines, lock)
    supervisor.start()
    yield supervisor
    supervisor.stop()
    stack.stop()
