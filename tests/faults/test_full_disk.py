"""The disk under the hub's state store fills up mid-stream, then space comes back.

The hub's data directory is a small tmpfs (conftest); the case fills it with
one file, streams for ``FULL_S``, then deletes the file. Nothing the hub could
not commit may be lost: the edges keep every event until the hub commits it.
"""

from __future__ import annotations

import errno
import os

import pytest

from tests.faults.support import Console, Injection, Supervisor, console_shows, run_fault

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(180)]

FULL_S = 10.0


def _fill(directory: os.PathLike[str], name: str) -> None:
    """Write zeros into ``directory/name`` until the file system refuses (ENOSPC)."""
    chunk = bytes(1 << 20)
    fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)


def test_a_full_disk_under_the_state_store_loses_no_report(
    supervised: Supervisor, console: Console
) -> None:
    if supervised.hub_tmpfs is None:
        pytest.skip(f"no small file system for the hub's data: {supervised.no_tmpfs}")
    directory = supervised.hub_tmpfs
    filler = directory / "filler"

    def end() -> None:
        filler.unlink()

    case = run_fault(
        supervised,
        Injection(
            "full disk under the hub's state store",
            begin=lambda: _fill(directory, filler.name),
            end=end,
            lasts_s=FULL_S,
            shows=console_shows("store", "load-001"),
        ),
        console,
    )
    print(f"\n{case.line()}")
    free = os.statvfs(directory)
    print(f"hub data directory: {free.f_bavail * free.f_frsize // 2**20} MiB free after the case")
    # Shown, though it may lapse: a commit can succeed on a full disk while SQLite
    # still has free pages, and the store's link is up again until the next one fails.
    assert case.shown_s is not None, "the console stayed calm with the state store full"
    assert [] == case.tally.twice
    assert [] == case.tally.stray
    assert [] == case.tally.missing
    assert [] == case.tally.not_in_influx
    assert case.tally.sent == case.tally.delivered
