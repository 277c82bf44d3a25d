"""Start-up at city scale: how long ``riverguard up`` takes and how much memory it holds.

Writes a fleet configuration (``riverguard sim fleet-config``), runs
``riverguard up --no-sim`` on it as a child process and times it from the
command to "Riverguard is up" (with the stack's own step times: hub, edges),
then reads every component's RSS and PSS (proportional set size: shared pages
split between the processes sharing them) from /proc, and the CPU each spent
starting, stops the stack with SIGINT and reports as JSON. Not a test: run it
by hand and put the figures in docs/performance.md::

    .venv/bin/python bench/city_startup.py --sites 200 --devices-per-site 20
    .venv/bin/python bench/city_startup.py --sites 50 --devices-per-site 20 --edge-processes 50
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from simulators.fleet_config import fleet_config

UP_TIMEOUT_S = 600.0
STEP = re.compile(r"^\s+(\S+) ready in ([0-9.]+)s$")


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    # utime and stime are fields 14 and 15, after the parenthesised command name.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(sites: int, devices_per_site: int, edge_processes: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="riverguard-city-") as tmp:
        config = Path(tmp) / "fleet.toml"
        config.write_text(fleet_config(sites, devices_per_site), encoding="utf-8")
        data_dir = Path(tmp) / "stack"
        command = [sys.executable, "-m", "riverguard", "up", "--no-sim"]
        command += ["--config", str(config), "--data-dir", str(data_dir)]
        if edge_processes is not None:
            command += ["--edge-processes", str(edge_processes)]
        started = time.monotonic()
        up = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert up.stdout is not None
        steps: dict[str, float] = {}
        lines: list[str] = []
        try:
            for line in up.stdout:
                lines.append(line.rstrip())
                step = STEP.match(line.rstrip())
                if step is not None:
                    steps[step.group(1)] = float(step.group(2))
                if line.startswith("Riverguard is up") or line.startswith("failed:"):
                    break
                if time.monotonic() - started > UP_TIMEOUT_S:
                    break
            up_s = time.monotonic() - started
            if not any(line.startswith("Riverguard is up") for line in lines):
                return {"sites": sites, "failed": lines[-20:]}
            info = json.loads((data_dir / "stack.json").read_text(encoding="utf-8"))
            processes: dict[str, dict[str, float]] = {}
            for name, pid in info["processes"].items():
                processes[name] = {
                    "rss_mb": round(_status_kb(pid, "VmRSS") / 1024, 1),
                    "pss_mb": round(_pss_kb(pid) / 1024, 1),
                    "cpu_s": round(_cpu_s(pid), 2),
                }
            edges = {k: v for k, v in processes.items() if k.startswith("edge")}
            return {
                "sites": sites,
                "devices_per_site": devices_per_site,
                "edge_processes": len(edges),
                "up_s": round(up_s, 1),
                "steps_s": steps,
                "rss_total_mb": round(sum(p["rss_mb"] for p in processes.values()), 1),
                "pss_total_mb": round(sum(p["pss_mb"] for p in processes.values()), 1),
                "edges_rss_mb": round(sum(p["rss_mb"] for p in edges.values()), 1),
                "edges_pss_mb": round(sum(p["pss_mb"] for p in edges.values()), 1),
                "edges_cpu_s": round(sum(p["cpu_s"] for p in edges.values()), 1),
                "processes": processes
                if len(processes) <= 12
                else {k: v for k, v in processes.items() if not k.startswith("edge")},
            }
        finally:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(120)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--devices-per-site", type=int, default=20)
    parser.add_argument(
        "--edge-processes",
        type=int,
        default=None,
        help="default: riverguard up's (one per core, at least two)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    report = measure(args.sites, args.devices_per_site, args.edge_processes)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0 if "failed" not in report else 1


if __name__ == "__main__":
    sys.exit(main())
