"""Memory at city scale: hub, edges and broker RSS with N x M simulated devices connected.

Writes a fleet configuration (``riverguard sim fleet-config``), starts a stack
of its own with it (the same ``Stack`` as ``riverguard up``, no demo
simulators) and samples the RSS of every component from /proc while idle.
Then it runs ``riverguard sim fleet`` against it as a child process, waits
until the fleet reports every connection made (its /metrics) and, with
``--poll-every``, until the hub lists every device that reports a status as
online (``GET /api/devices``); holds the fleet for ``--hold`` seconds of
heartbeats and noise, sampling once a second; stops it and reports as JSON:
RSS now and peak per component, a time series of hub / broker / largest edge
RSS, each process's CPU share during the hold, with ``--scenario`` the
results of a scenario played during the hold, the fleet's summary (connect
time, messages by kind, reconnects, errors), and the memory targets (hub <=
300 MB, an edge of a 1,000-device site <= 150 MB, each site in an edge
process of its own unless ``--edge-processes``) with pass/fail. Not a test:
run it by hand and put the figures in docs/performance.md::

    .venv/bin/python bench/fleet_rss.py --sites 10 --devices-per-site 1000 --hold 120
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from riverguard.config import load_config
from riverguard.hub_session import HubSession
from riverguard.services import free_port
from riverguard.stack import Stack
from simulators.fleet_config import fleet_config

HUB_TARGET_MB = 300.0
EDGE_TARGET_MB = 150.0
FLEET_STOP_TIMEOUT_S = 60.0
SERIES_EVERY_S = 10.0
SCENARIO_TIMEOUT_S = 300.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rss_mb(pid: int | None) -> tuple[float, float]:
    """(current, peak) resident memory of ``pid`` in MiB, from /proc; zeros if it is gone."""
    if pid is None:
        return 0.0, 0.0
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0.0
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return round(values.get("VmRSS", 0.0), 1), round(values.get("VmHWM", 0.0), 1)


def cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) ``pid`` has used, from /proc; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Current and peak RSS of named processes, sampled on demand; every
    ``SERIES_EVERY_S`` also kept as a time series (hub, broker, largest edge)."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)
        self.now: dict[str, float] = dict.fromkeys(pids, 0.0)
        self.started = time.monotonic()
        self.series: list[dict[str, float]] = []

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self.peak[name] = self.now[name] = 0.0

    def sample(self) -> None:
        for name, pid in self.pids.items():
            current, hwm = rss_mb(pid)
            self.now[name] = current
            self.peak[name] = max(self.peak[name], hwm, current)
        elapsed = time.monotonic() - self.started
        if not self.series or elapsed - self.series[-1]["t"] >= SERIES_EVERY_S:
            edges = [v for name, v in self.now.items() if name.startswith("edge")]
            self.series.append(
                {
                    "t": round(elapsed),
                    "hub": self.now["hub"],
                    "broker": self.now["broker"],
                    "edge_max": max(edges, default=0.0),
                }
            )

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {name: {"rss_mb": self.now[name], "peak_mb": self.peak[name]} for name in self.pids}


def online_devices(hub_url: str, session: HubSession) -> int:
    response = httpx.get(f"{hub_url}/api/devices", auth=session, timeout=30)
    response.raise_for_status()
    return sum(1 for device in response.json() if device.get("online") is True)


def login(stack: Stack) -> HubSession:
    """The admin's session (renewed on a 401: a large fleet takes longer to connect than
    an access token lives)."""
    return HubSession.login(stack.hub_url, "admin", stack.secrets.users["admin"])


def reporting_devices(config_path: Path) -> int:
    """Devices that report a status of their own: all but Frigate cameras and http speakers."""
    config = load_config(config_path)
    return sum(
        1
        for d in config.devices
        if not (d.source == "frigate" or (d.type == "speaker" and d.driver == "http"))
    )


def fleet_metrics(metrics_port: int) -> dict[str, float]:
    """The fleet's own gauges (connections up, connect seconds once done), from its /metrics."""
    try:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("riverguard_sim_fleet_connected", "riverguard_sim_fleet_connect_seconds"):
            values[name.removeprefix("riverguard_sim_fleet_")] = float(value)
    return values


def start_fleet(
    args: argparse.Namespace, config: Path, stack: Stack, metrics_port: int, log: Path
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "riverguard",
        "sim",
        "fleet",
        *("--config", str(config), "--stack", str(stack.data_dir / "stack.json")),
        *("--heartbeat", str(args.heartbeat), "--noise", str(args.noise)),
        *("--metrics-port", str(metrics_port)),
    ]
    with log.open("wb") as stderr:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)


def wait_connected(
    args: argparse.Namespace,
    fleet: subprocess.Popen[bytes],
    sampler: Sampler,
    expected: tuple[int, int],
    hub: tuple[str, HubSession],
) -> dict[str, Any]:
    """Until the fleet has every connection up and, with --poll-every, the hub sees
    every reporting device online."""
    connections, reporting = expected
    started = time.monotonic()
    deadline = started + args.connect_timeout
    result: dict[str, Any] = {"fleet_connected_s": None, "hub_sees_all_online_s": None}
    next_poll = started
    while time.monotonic() < deadline and fleet.poll() is None:
        time.sleep(1)
        sampler.sample()
        elapsed = round(time.monotonic() - started, 1)
        metrics = fleet_metrics(args.metrics_port)
        connected = int(metrics.get("connected", 0))
        if result["fleet_connected_s"] is None and "connect_seconds" in metrics:
            result["fleet_connected_s"] = metrics["connect_seconds"]
        online = None
        if args.poll_every and time.monotonic() >= next_poll:
            next_poll += args.poll_every
            online = online_devices(*hub)
            if online >= reporting:
                result["hub_sees_all_online_s"] = elapsed
        say(f"  {elapsed:.0f}s: fleet {connected}/{connections} connected, hub online {online}")
        if result["fleet_connected_s"] is not None and (
            not args.poll_every or result["hub_sees_all_online_s"] is not None
        ):
            break
    return result


def start_scenario(name: str, stack: Stack) -> subprocess.Popen[bytes]:
    """A scenario played while the fleet is up: how the alarm path fares under its load."""
    say(f"playing scenario {name} during the hold ...")
    command = [sys.executable, "-m", "riverguard", "sim", "run", name]
    command += ["--stack", str(stack.data_dir / "stack.json")]
    return subprocess.Popen(command, stdout=subprocess.PIPE)


def hold(
    args: argparse.Namespace, fleet: subprocess.Popen[bytes], sampler: Sampler
) -> dict[str, float]:
    """Keep the fleet up for ``--hold`` seconds; the CPU share each process used meanwhile."""
    say(f"holding {args.hold:g}s of heartbeats and noise ...")
    before = {name: cpu_s(pid) for name, pid in sampler.pids.items()}
    started = time.monotonic()
    end = started + args.hold
    while time.monotonic() < end and fleet.poll() is None:
        time.sleep(1)
        sampler.sample()
    wall = time.monotonic() - started
    return {
        name: round(100 * (cpu_s(pid) - before[name]) / wall, 1)
        for name, pid in sampler.pids.items()
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "sites": args.sites,
        "devices_per_site": args.devices_per_site,
        "hold_s": args.hold,
        "heartbeat_s": args.heartbeat,
        "noise": args.noise,
        "poll_every_s": args.poll_every,
    }
    with tempfile.TemporaryDirectory(prefix="riverguard-fleet-") as tmp:
        config_path = Path(tmp) / "fleet.toml"
        config_path.write_text(fleet_config(args.sites, args.devices_per_site), encoding="utf-8")
        reporting = reporting_devices(config_path)
        stack = Stack(
            data_dir=Path(tmp) / "stack",
            config_path=config_path,
            simulators=(),
            ports=None,
            progress=say,
            # One site per process by default: the edge target is that of one site.
            edge_processes=args.edge_processes or args.sites,
        )
        fleet: subprocess.Popen[bytes] | None = None
        try:
            started = time.monotonic()
            stack.start()
            report["stack_start_s"] = round(time.monotonic() - started, 1)
            edges = {name: stack.components[name].process.pid for name in stack.edge_groups()}
            sampler = Sampler(
                {
                    "hub": stack.components["hub"].process.pid,
                    "broker": stack.mosquitto.process.pid,
                    "influxd": stack.influxd.process.pid,
                    **edges,
                }
            )
            sampler.sample()
            report["idle"] = sampler.snapshot()
            hub = (stack.hub_url, login(stack))
            say(f"starting the fleet: {reporting} devices report a status ...")
            fleet = start_fleet(
                args, config_path, stack, args.metrics_port, Path(tmp) / "fleet.log"
            )
            sampler.add("fleet", fleet.pid)
            connections = stack_connections(config_path)
            report.update(wait_connected(args, fleet, sampler, (connections, reporting), hub))
            scenario = start_scenario(args.scenario, stack) if args.scenario else None
            report["hold_cpu_pct"] = hold(args, fleet, sampler)
            if scenario is not None:
                out, _ = scenario.communicate(timeout=SCENARIO_TIMEOUT_S)
                report["scenario"] = json.loads(out) if out.strip() else None
            report["hub_online_after_hold"] = online_devices(*hub)
            report["expected_online"] = reporting
            report["loaded"] = sampler.snapshot()
            report["series"] = sampler.series
            fleet.send_signal(signal.SIGTERM)
            out, _ = fleet.communicate(timeout=FLEET_STOP_TIMEOUT_S)
            report["fleet"] = json.loads(out) if out.strip() else None
            fleet = None
        finally:
            if fleet is not None:
                fleet.kill()
                fleet.wait()
            stack.stop()
    report["targets"] = targets(report["loaded"], args.devices_per_site)
    return report


def stack_connections(config_path: Path) -> int:
    """The fleet's own MQTT connections: fences, generic cameras, one Frigate NVR a site."""
    config = load_config(config_path)
    field = sum(
        1 for d in config.devices if d.type in ("fence", "camera") and d.source == "generic"
    )
    nvrs = len({d.site for d in config.devices if d.source == "frigate"})
    return field + nvrs


def targets(loaded: dict[str, dict[str, float]], devices_per_site: int) -> dict[str, Any]:
    edges = {name: v for name, v in loaded.items() if name.startswith("edge")}
    biggest = max(edges.items(), key=lambda item: item[1]["rss_mb"])
    hub = loaded["hub"]["rss_mb"]
    return {
        "hub_rss_mb": {"value": hub, "target": HUB_TARGET_MB, "pass": hub <= HUB_TARGET_MB},
        "largest_edge_rss_mb": {
            "edge": biggest[0],
            "value": biggest[1]["rss_mb"],
            "target": EDGE_TARGET_MB,
            "devices": devices_per_site,
            "pass": biggest[1]["rss_mb"] <= EDGE_TARGET_MB,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--devices-per-site", type=int, default=1000)
    parser.add_argument(
        "--edge-processes",
        type=int,
        default=None,
        help="run the sites' edges in N processes (default: one per site, as the edge "
        "target is per site; riverguard up's default is one per core, at least two)",
    )
    parser.add_argument("--hold", type=float, default=120.0, help="seconds with the fleet up")
    parser.add_argument("--heartbeat", type=float, default=30.0)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument(
        "--poll-every",
        type=float,
        default=5.0,
        help="poll GET /api/devices this often until the hub sees all online (0: never)",
    )
    parser.add_argument("--metrics-port", type=int, default=None, help="the fleet's /metrics")
    parser.add_argument(
        "--scenario", default=None, help="also play this scenario (sim run) during the hold"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.metrics_port = args.metrics_port or free_port()
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
