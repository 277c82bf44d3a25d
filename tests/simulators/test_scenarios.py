"""Scenario files: each validates, a bad one is refused clearly, and two play end to end."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from riverguard.cli import main
from riverguard.hub_session import HubSession
from riverguard.stack import Stack
from simulators.errors import ScenarioError
from simulators.scenario import SCENARIOS_DIR, Player, load_scenario
from simulators.stack_info import StackInfo
from tests.conftest import stack_logs

SCENARIO_FILES = sorted(SCENARIOS_DIR.glob("*.toml"))
REQUIRED = {
    "swimmer-persuaded",
    "swimmer-stays",
    "rain-false-alarms",
    "offline-red-stretch",
    "children-group",
    "storm-500",
}


def test_the_library_has_the_six_scenarios_the_readme_lists() -> None:
    assert REQUIRED <= {path.stem for path in SCENARIO_FILES}


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda path: path.stem)
def test_each_scenario_file_validates_and_checks_something(path: Path) -> None:
    scenario = load_scenario(str(path))
    assert path.stem == scenario.name
    assert any(step.do.startswith("expect_") for step in scenario.steps)


def test_a_scenario_is_found_by_name() -> None:
    assert "storm-500" == load_scenario("storm-500").name


BAD = """
name = "bad"
[[steps]]
do = "fence"
state = "smashed"
[[steps]]
do = "camera"
count = 0
[[steps]]
do = "status"
device = "fence"
[[steps]]
do = "dance"
"""


def test_a_bad_scenario_is_refused_saying_where_and_why(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(str(path))
    message = str(caught.value)
    assert f"{path} is not a valid scenario" in message
    assert "steps.0.fence.state: Input should be 'breach', 'clear', 'tamper' or 'fault'" in message
    assert "steps.1.camera.count: Input should be greater than or equal to 1" in message
    assert "steps.2.status.online: Field required" in message
    assert "steps.3: Input tag 'dance' found using 'do' does not match" in message


def test_an_unknown_scenario_name_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match="known: children-group, "):
        load_scenario("no-such-scenario")


def test_sim_run_exits_2_with_one_clear_line_for_a_file_that_is_not_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("name = \n", encoding="utf-8")
    assert 2 == main(["sim", "run", str(path), "--stack", str(tmp_path / "stack.json")])
    assert f"riverguard sim run: {path} is not valid TOML" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.parametrize("name", ["swimmer-persuaded", "offline-red-stretch", "second-swimmer"])
async def test_scenario_plays_against_the_stack_and_its_expectations_hold(
    stack: Stack, name: str
) -> None:
    await _resolve_active_alarms(stack)  # the session stack: earlier tests leave alarms
    lines: list[str] = []
    player = Player(load_scenario(name), StackInfo.parse(stack.info()), say=lines.append)
    result = await player.play()
    assert result.checks, "a scenario with expectations checked none"
    failed = [check for check in result.checks if not check.passed]
    assert [] == failed, "\n".join(lines) + "\n" + stack_logs(stack)
    assert "danshui-bridge" == result.site


async def _resolve_active_alarms(stack: Stack) -> None:
    """Resolve every open or acknowledged alarm, as a shift would before a drill."""
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=10) as http:
        session = await HubSession.login_async(http, "admin", stack.secrets.users["admin"])
        http.headers.update(session.headers)
        for state in ("open", "acknowledged"):
            for alarm in (await http.get("/api/alarms", params={"state": state})).json():
                resolved = await http.post(
                    f"/api/alarms/{alarm['id']}/resolve", json={"outcome": "false_alarm"}
                )
                resolved.raise_for_status()


WRONG = """
name = "wrong"
zone = "z2"
[[steps]]
do = "camera"
rule = "water_entry"
[[steps]]
do = "expect_alarm"
severity = "critical"
[[steps]]
do = "expect_site"
risk = "blue"
within_s = 1
[[steps]]
do = "resolve"
outcome = "false_alarm"
"""


@pytest.mark.integration
async def test_an_expectation_that_does_not_hold_fails_with_what_was_seen(
    stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "wrong.toml"
    path.write_text(WRONG, encoding="utf-8")
    player = Player(load_scenario(str(path)), StackInfo.parse(stack.info()), say=lambda _: None)
    result = await player.play()
    assert not result.passed
    alarm, site = result.checks
    assert alarm.passed
    assert (False, "site danshui-bridge risk blue", "risk red") == (
        site.passed,
        site.what,
        site.detail,
    )


@pytest.mark.integration
async def test_a_step_that_cannot_act_fails_the_scenario_and_stops_it(
    stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "early.toml"
    path.write_text(
        'name = "early"\n[[steps]]\ndo = "ack"\n[[steps]]\ndo = "fence"\n', encoding="utf-8"
    )
    player = Player(load_scenario(str(path)), StackInfo.parse(stack.info()), say=lambda _: None)
    result = await player.play()
    assert not result.passed
    [check] = result.checks
    assert (1, "ack") == (check.step, check.what)
    assert "nothing sent in danshui-bridge/z1 yet: no alarm to act on" == check.detail
    assert 0 == result.sent  # the fence step after it did not run
