"""One stack for the whole fault suite, supervised as ``riverguard up`` supervises it.

Starting a stack takes most of a fault's cost (influxd, the hub rendering its
warnings, the edges): every case of the suite runs on this one, one after the
other, each waiting until the stack has recovered from the last.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from riverguard.services import ServiceError
from riverguard.stack import Stack
from simulators.load import fences_config
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, WALL_SCREEN
from tests.faults.support import Console, Supervisor, wait_until

# Two sites of twenty fences: a stream of a few hundred reports a second is a few
# reports a second per fence, as a fence in an incident sends.
SITES = 2
FENCES_PER_SITE = 20
# The hub's data directory (state store, rendered audio) on a tmpfs of this size, so
# that a case can fill it: big enough for every case's events, small enough to fill.
HUB_TMPFS = "192m"


def _mount_tmpfs(directory: Path) -> str | None:
    """Mount a small tmpfs at ``directory``; None, or why it could not be."""
    directory.mkdir(parents=True)
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={HUB_TMPFS},mode=0700", "tmpfs", str(directory)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError as exc:
        return f"mount: {exc}"
    if mounted.returncode != 0:
        return f"mount -t tmpfs refused (needs root): {mounted.stderr.strip()}"
    return None


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

    hub_dir = directory / "stack" / "hub"
    no_tmpfs = _mount_tmpfs(hub_dir)
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
        if no_tmpfs is None:
            subprocess.run(["umount", str(hub_dir)], check=False, timeout=30)
        raise
    supervisor = Supervisor(stack, lines, lock, hub_tmpfs=None if no_tmpfs else hub_dir)
    supervisor.no_tmpfs = no_tmpfs
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.stop()
        stack.stop()
        if no_tmpfs is None:
            subprocess.run(["umount", str(hub_dir)], check=False, timeout=30)


@pytest.fixture(scope="package")
def console(supervised: Supervisor) -> Iterator[Console]:
    """The duty console in headless Chromium, logged in (as the configuration's admin)."""
    stack = supervised.stack
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport=WALL_SCREEN)
            watching = Console(page, stack.hub_url, "admin", stack.secrets.users["admin"])
            watching.log_in()
            wait_until(watching.calm, 60, "the console calm")
            yield watching
        finally:
            browser.close()
