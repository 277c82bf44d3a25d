"""What a newcomer meets at the start of the demo: the login table and the swimmer's wait."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from riverguard.columns import aligned, display_width
from riverguard.stack import Stack, login_table
from tests.conftest import EXAMPLE_CONFIG


def test_display_width_counts_chinese_as_two_cells_and_combining_marks_as_none() -> None:
    assert 8 == display_width("李值班员")
    assert 15 == display_width("supervisor-wang")
    assert 4 == display_width("Ｌｉ")  # full-width Latin
    assert 1 == display_width("e\u0301")  # e and a combining acute accent


def _cell_starts(line: str, cells: list[str]) -> list[int]:
    """The display column where each of ``cells`` starts in ``line``."""
    starts, position = [], 0
    for cell in cells:
        position = line.index(cell, position)
        starts.append(display_width(line[:position]))
        position += len(cell)
    return starts


def test_login_table_columns_line_up_with_chinese_names_and_long_logins() -> None:
    logins = [
        {"username": "admin", "password": "pw-admin-0123456789", "role": "admin"},
        {"username": "supervisor-wang", "password": "pw-sup", "role": "supervisor"},
        {"username": "李四", "password": "pw-李", "role": "officer"},
    ]
    names = {"admin": "系统管理员", "supervisor-wang": "王值班长", "李四": "Li Si"}
    lines = login_table(logins, names)
    assert 4 == len(lines)
    rows = [["login", "password", "role", "name"]] + [
        [x["username"], x["password"], x["role"], names[x["username"]]] for x in logins
    ]
    starts = {tuple(_cell_starts(line, row)) for line, row in zip(lines, rows, strict=True)}
    assert 1 == len(starts), lines
    assert all(line.startswith("  ") for line in lines)


def test_aligned_leaves_the_last_column_unpadded() -> None:
    assert ["ab  c", "a   dd"] == aligned([["ab", "c"], ["a", "dd"]])


# Nothing is started, but building a Stack looks up the installed mosquitto and influxd.
@pytest.mark.integration
def test_demo_swimmer_waits_for_the_console_watched_with_the_lowest_login(tmp_path: Path) -> None:
    stack = Stack(data_dir=tmp_path, config_path=EXAMPLE_CONFIG, ports=None)
    swimmer = stack.components["sim-swimmer"].process
    assert ["--loop", "--wait-for-console"] == swimmer.argv[-2:]
    assert swimmer.env is not None
    assert stack.hub_url == swimmer.env["RIVERGUARD_DEMO_HUB__URL"]
    assert "viewer" == swimmer.env["RIVERGUARD_DEMO_HUB__USERNAME"]
    assert stack.secrets.users["viewer"] == swimmer.env["RIVERGUARD_DEMO_HUB__PASSWORD"]
    speakers = stack.components["sim-speakers"].process
    assert speakers.env is not None
    assert "RIVERGUARD_DEMO_HUB__PASSWORD" not in speakers.env


def test_scripts_riverguard_runs_the_clones_command_from_any_directory(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "scripts" / "riverguard"
    done = subprocess.run(
        [str(script), "sim", "run", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert "--stack PATH" in done.stdout
