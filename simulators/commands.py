"""``riverguard sim fleet|fleet-config|run``: entry points of the city-scale simulators (blocking).

Each returns the process exit code: 0 done (for ``run``: every expectation
passed), 1 an expectation failed, 2 bad input (a missing stack.json, a bad
configuration or scenario file), said in one line on stderr.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from riverguard.config import Config, ConfigError, load_config
from simulators.errors import SimulatorError
from simulators.fleet import Fleet, FleetOptions, select
from simulators.fleet_config import fleet_config
from simulators.scenario import Player, load_scenario
from simulators.stack_info import StackInfo, locate


def _fail(command: str, exc: Exception) -> int:
    print(f"riverguard sim {command}: {exc}", file=sys.stderr)
    return 2


def _emit(result: dict[str, Any], json_out: Path | None) -> None:
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")


def fleet(
    stack_json: Path | None,
    config_path: Path,
    *,
    sites: int | None,
    devices_per_site: int | None,
    options: FleetOptions,
    json_out: Path | None,
) -> int:
    """Run the fleet until the duration ends or SIGTERM/SIGINT; print the JSON summary."""
    try:
        info = _load_stack(stack_json)
        config = select(load_config(config_path), sites, devices_per_site)
    except (SimulatorError, ConfigError) as exc:
        return _fail("fleet", exc)
    _emit(asyncio.run(_fleet(info, config, options)), json_out)
    return 0


async def _fleet(info: StackInfo, config: Config, options: FleetOptions) -> dict[str, Any]:
    # A signal ends the run the ordinary way, so the summary is still printed.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await Fleet(info.broker, config, options).run(stop)


def _load_stack(given: Path | None) -> StackInfo:
    """The stack's description, saying on stderr which one when it was looked for."""
    path = locate(given)
    if given is None:
        print(f"stack: {path}", file=sys.stderr)
    return StackInfo.load(path)


def write_fleet_config(sites: int, devices_per_site: int, output: Path) -> int:
    try:
        text = fleet_config(sites, devices_per_site)
    except ValueError as exc:
        return _fail("fleet-config", exc)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}: {sites} sites x {devices_per_site} devices", file=sys.stderr)
    return 0


def run_scenario(
    name_or_path: str, stack_json: Path | None, *, speed: float, json_out: Path | None
) -> int:
    """Play a scenario against the stack of ``stack_json`` (None: the one running here);
    0 when every expectation held."""
    try:
        scenario = load_scenario(name_or_path)
        info = _load_stack(stack_json)
        print(f"scenario {scenario.name}: {scenario.description}", file=sys.stderr)
        result = asyncio.run(Player(scenario, info, speed=speed).play())
    except (SimulatorError, ConfigError) as exc:
        return _fail("run", exc)
    _emit(result.summary(), json_out)
    return 0 if result.passed else 1
