"""``riverguard bench --find-max``: how it steps through the rates.

The load runs themselves are covered against a real stack in
tests/e2e/test_load.py; here each run's outcome is scripted per rate, so that
the stepping rule (a failed step is tried once more) is what is tested.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from simulators.benchmark import _sweep
from simulators.load import MAX_P99_MS, LoadResult, Target


def _target() -> Target:
    return Target("system", 1883, "secret", None, {}, [("site", "fence-1", "zone-1")])


Run = Callable[[Target, float, float, Path | None], LoadResult]


def _scripted(outcomes: dict[float, list[bool]]) -> tuple[list[float], Run]:
    tried: list[float] = []

    def run(target: Target, rate: float, duration: float, profile: Path | None) -> LoadResult:
        tried.append(rate)
        passes = outcomes[rate].pop(0)
        p99 = MAX_P99_MS / 2 if passes else MAX_P99_MS * 3
        sent = int(rate * duration)
        return LoadResult(rate, duration, 1, sent=sent, delivered=sent, latency_ms={"p99": p99})

    return tried, run


def test_a_step_that_fails_once_is_tried_again_and_the_search_goes_on() -> None:
    tried, run = _scripted({100: [True], 200: [False, True], 300: [False, False]})
    report = _sweep(_target(), [100, 200, 300, 400], 1.0, find_max=True, run=run)
    assert tried == [100, 200, 200, 300, 300]
    assert report["max_rate"] == 200
    assert [r["rate"] for r in report["runs"]] == tried  # every try is reported


def test_without_find_max_each_rate_runs_once_whatever_it_gives() -> None:
    tried, run = _scripted({100: [False], 200: [False]})
    report = _sweep(_target(), [100, 200], 1.0, find_max=False, run=run)
    assert tried == [100, 200]
    assert "max_rate" not in report
