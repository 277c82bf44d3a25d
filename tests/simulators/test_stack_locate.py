"""``sim run`` and ``sim fleet`` find the stack running here, or are told which one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.errors import SimulatorError
from simulators.stack_info import locate


def _exited_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


def _stack(directory: Path, pid: int) -> Path:
    directory.mkdir()
    path = directory / "stack.json"
    path.write_text(json.dumps({"hub_url": "http://127.0.0.1:1", "processes": {"hub": pid}}))
    return path


def test_a_data_directory_stands_for_its_stack_json(tmp_path: Path) -> None:
    assert tmp_path / "stack.json" == locate(tmp_path)
    assert tmp_path / "other.json" == locate(tmp_path / "other.json")


def test_the_running_stack_is_found_beside_stopped_ones(tmp_path: Path) -> None:
    _stack(tmp_path / ".riverguard", _exited_pid())
    fleet = _stack(tmp_path / ".fleet", os.getpid())
    assert fleet == locate(None, tmp_path)


def test_the_default_data_directory_is_used_when_it_is_the_only_one(tmp_path: Path) -> None:
    stopped = _stack(tmp_path / ".riverguard", _exited_pid())
    assert stopped == locate(None, tmp_path)


def test_two_running_stacks_are_not_guessed_between(tmp_path: Path) -> None:
    _stack(tmp_path / ".riverguard", os.getpid())
    _stack(tmp_path / ".fleet", os.getpid())
    with pytest.raises(SimulatorError, match=r"several stacks .*\.fleet.*choose one with --stack"):
        locate(None, tmp_path)


def test_no_stack_here_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match="scripts/run"):
        locate(None, tmp_path)


def test_an_unreadable_stack_json_counts_as_stopped(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "stack.json").write_text("[1, 2")
    running = _stack(tmp_path / ".riverguard", os.getpid())
    assert running == locate(None, tmp_path)
