"""Memory at city scale: hub, edges and broker RSS with N x M simulated devices connected.

Writes a fleet configuration (``riverguard sim fleet-config``), starts a stack
of its own with it (the same ``Stack`` as ``riverguard up``, no demo
simulators), samples the RSS of every component from /proc while idle, then
runs ``riverguard sim fleet`` against it as a child process, waits until the
hub lists every device that reports a status as online (``GET /api/devices``),
holds the fleet for ``--hold`` seconds of heartbeats and noise, sampling once
a second, stops it and reports as JSON: RSS now and peak per component (the
largest edge and every edge), the fleet's summary (connect time, messages by
kind, reconnects, errors), and the issue 7 targets (hub <= 300 MB, an edge of
a 1,000-device site <= 150 MB) with pass/fail. Not a test: run it by hand and
put the figures in docs/performance.md::

    .venv/bin/python bench/fleet_rss.py --sites 10 --devices-per-site 1000 --hold 120
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from riverguard.config import load_config
from riverguard.stack import Stack
from simulators.fleet_config import fleet_config

HUB_TARGET_MB = 300.0
EDGE_TARGET_MB = 150.0
FLEET_STOP_TIMEOUT_S = 60.0


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


class Sampler:
    """Current and peak RSS of named processes, sampled on demand."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)
        self.now: dict[str, float] = dict.fromkeys(pids, 0.0)

    def sample(self) -> None:
        for name, pid in self.pids.items():
            current, hwm = rss_mb(pid)
            self.now[name] = current
            self.peak[name] = max(self.peak[name], hwm, current)

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {name: {"rss_mb": self.now[name], "peak_mb": self.peak[name]} for name in self.pids}


def online_devices(hub_url: str, token: str) -> int:
    response = httpx.get(
        f"{hub_url}/api/devices", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    response.raise_for_status()
    return sum(1 for device in response.json() if device.get("online") is True)


def login(stack: Stack) -> str:
    response = httpx.post(
        f"{stack.hub_url}/api/auth/token",
        data={"username": "admin", "password": stack.secrets.users["admin"]},
        timeout=10,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def reporting_devices(config_path: Path) -> int:
    """Devices that report a status of their own: all but Frigate cameras and http speakers."""
    config = load_config(config_path)
    return sum(
        1
        for d in config.devices
        if not (d.source == "frigate" or (d.type == "speaker" and d.driver == "http"))
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "sites": args.sites,
        "devices_per_site": args.devices_per_site,
        "hold_s": args.hold,
        "heartbeat_s": args.heartbeat,
        "noise": args.noise,
    }
    with tempfile.TemporaryDirectory(prefix="riverguard-fleet-") as tmp:
        config_path = Path(tmp) / "fleet.toml"
        config_path.write_text(fleet_config(args.sites, args.devices_per_site), encoding="utf-8")
        expected = reporting_devices(config_path)
        stack = Stack(
            data_dir=Path(tmp) / "stack",
            config_path=config_path,
            simulators=(),
            ports=None,
            progress=say,
        )
        fleet: subprocess.Popen[bytes] | None = None
        try:
            started = time.monotonic()
            stack.start()
            report["stack_start_s"] = round(time.monotonic() - started, 1)
            edges = {n: c.process.pid for n, c in stack.components.items() if n.startswith("edge-")}
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
            token = login(stack)

            fleet_log = (Path(tmp) / "fleet.log").open("wb")
            command = [
                sys.executable,
                "-m",
                "riverguard",
                "sim",
                "fleet",
                "--config",
                str(config_path),
                "--stack",
                str(stack.data_dir / "stack.json"),
                "--heartbeat",
                str(args.heartbeat),
                "--noise",
                str(args.noise),
            ]
            say(f"starting the fleet: {expected} devices report a status ...")
            fleet_started = time.monotonic()
            fleet = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=fleet_log)
            sampler.pids["fleet"] = fleet.pid
            sampler.peak["fleet"] = 0.0
            deadline = fleet_started + args.connect_timeout
            online = 0
            while time.monotonic() < deadline and fleet.poll() is None:
                time.sleep(2)
                sampler.sample()
                online = online_devices(stack.hub_url, token)
                say(
                    f"  hub sees {online}/{expected} online ({time.monotonic() - fleet_started:.0f}s)"
                )
                if online >= expected:
                    break
            report["hub_sees_all_online_s"] = (
                round(time.monotonic() - fleet_started, 1) if online >= expected else None
            )
            report["hub_online"] = online
            report["expected_online"] = expected
            say(f"holding {args.hold:g}s of heartbeats and noise ...")
            hold_end = time.monotonic() + args.hold
            while time.monotonic() < hold_end and fleet.poll() is None:
                time.sleep(1)
                sampler.sample()
            report["hub_online_after_hold"] = online_devices(stack.hub_url, token)
            report["loaded"] = sampler.snapshot()
            fleet.send_signal(signal.SIGTERM)
            out, _ = fleet.communicate(timeout=FLEET_STOP_TIMEOUT_S)
            report["fleet"] = json.loads(out) if out.strip() else None
            fleet = None
        finally:
            if fleet is not None:
                fleet.kill()
                fleet.wait()
            stack.stop()
    edge_peaks = {n: v for n, v in report["loaded"].items() if n.startswith("edge-")}
    biggest = max(edge_peaks.items(), key=lambda item: item[1]["rss_mb"])
    hub = report["loaded"]["hub"]["rss_mb"]
    report["targets"] = {
        "hub_rss_mb": {"value": hub, "target": HUB_TARGET_MB, "pass": hub <= HUB_TARGET_MB},
        "largest_edge_rss_mb": {
            "edge": biggest[0],
            "value": biggest[1]["rss_mb"],
            "target": EDGE_TARGET_MB,
            "devices": args.devices_per_site,
            "pass": biggest[1]["rss_mb"] <= EDGE_TARGET_MB,
        },
    }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--devices-per-site", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=120.0, help="seconds with the fleet up")
    parser.add_argument("--heartbeat", type=float, default=30.0)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
