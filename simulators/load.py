"""The load tool behind ``riverguard bench``: device -> edge -> hub -> console.

It starts its own stack (the same ``Stack`` as ``riverguard up``) with a
generated configuration of K fences, publishes sequenced raw fence reports at
a steady rate over MQTT QoS 1, listens on a console WebSocket subscribed to
every site's events, and reports what arrived: sent, delivered, lost,
duplicated, throughput, device->console latency percentiles, and the CPU time
and peak RSS of the broker, edges, hub and InfluxDB.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import websockets
from paho.mqtt.enums import CallbackAPIVersion

from riverguard.services import ManagedProcess
from riverguard.stack import Stack
from riverguard.testing import fence_report
from riverguard.wire import topics

ZONES_PER_SITE = 4
# After the last publish, how long stragglers may take before they count as lost.
DRAIN_S = 10.0
# --find-max: the rates tried, in order, until one fails the bar.
FIND_MAX_RATES = (250, 500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000)
MAX_P99_MS = 100.0


@dataclass
class LoadResult:
    rate: float
    duration_s: float
    devices: int
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    throughput: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    resources: dict[str, dict[str, float]] = field(default_factory=dict)
    # perf_counter() of the last delivery, for throughput; not reported.
    last_arrival: float = field(default=0.0, repr=False)

    @property
    def passes(self) -> bool:
        """Zero loss and p99 within the bar: what --find-max looks for."""
        return self.lost == 0 and self.latency_ms.get("p99", float("inf")) <= MAX_P99_MS


def fleet_config(sites: int, devices_per_site: int) -> str:
    """A site configuration (TOML) of ``sites`` sites with that many fences each."""
    lines = []
    for s in range(1, sites + 1):
        site = f"load-{s:03d}"
        lines += [
            "[[sites]]",
            f'id = "{site}"',
            f'name = "压测站点 {s}"',
            f'name_en = "Load site {s}"',
            f'grid = "bench/grid-{s:03d}"',
        ]
        for z in range(1, ZONES_PER_SITE + 1):
            lines += ["  [[sites.zones]]", f'  id = "z{z}"', f'  name = "区域 {z}"']
        for d in range(1, devices_per_site + 1):
            zone = f"z{(d - 1) % ZONES_PER_SITE + 1}"
            lines += [
                "[[devices]]",
                f'id = "{site}-f{d:05d}"',
                f'site = "{site}"',
                'type = "fence"',
                f'zones = ["{zone}"]',
            ]
    lines += ["[[users]]", 'username = "admin"', 'name = "Bench"', 'role = "admin"']
    return "\n".join(lines) + "\n"


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class _Cpu:
    """CPU seconds and peak RSS of processes we started, read from /proc."""

    def __init__(self, processes: dict[str, list[ManagedProcess]]) -> None:
        self.processes = processes
        self.start = {name: self._cpu(group) for name, group in processes.items()}
        self.started = time.monotonic()

    @staticmethod
    def _cpu(group: list[ManagedProcess]) -> float:
        ticks = 0
        for process in group:
            if process.pid is None:
                continue
            try:
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
        return ticks / 100.0  # USER_HZ is 100 on Linux

    @staticmethod
    def _peak_rss_mb(group: list[ManagedProcess]) -> float:
        peak = 0.0
        for process in group:
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        return peak

    def report(self) -> dict[str, dict[str, float]]:
        wall = time.monotonic() - self.started
        result = {}
        for name, group in self.processes.items():
            cpu = self._cpu(group) - self.start[name]
            result[name] = {
                "cpu_s": round(cpu, 2),
                "cpu_pct": round(100 * cpu / wall, 1),
                "peak_rss_mb": round(self._peak_rss_mb(group), 1),
            }
        return result


class _Publisher(threading.Thread):
    """Publishes fence reports at a steady rate from its own thread (paho, QoS 1)."""

    def __init__(
        self, stack: Stack, devices: list[tuple[str, str, str]], rate: float, duration: float
    ) -> None:
        super().__init__(name="bench.publisher", daemon=True)
        self.devices = devices
        self.rate = rate
        self.duration = duration
        self.sent_at: dict[str, float] = {}
        self.seq = int(time.time() * 10) % 2**31
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.username_pw_set("sim", stack.secrets.broker["sim"])
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", stack.broker_port)
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()

    def run(self) -> None:
        total = int(self.rate * self.duration)
        started = time.perf_counter()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - started) * self.rate) + 1)
            while sent < due:
                site, device, zone = self.devices[sent % len(self.devices)]
                self.seq += 1
                self.sent_at[f"{device}:{self.seq}"] = time.perf_counter()
                self.client.publish(
                    topics.field_report(site, "fence", device),
                    json.dumps(fence_report(self.seq, zone, "breach")),
                    qos=1,
                )
                sent += 1
            time.sleep(0.002)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def _login(stack: Stack) -> str:
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=10) as client:
        response = await client.post(
            "/api/auth/token",
            data={"username": "admin", "password": stack.secrets.users["admin"]},
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


async def _collect(
    ws: websockets.ClientConnection,
    publisher: _Publisher,
    expected: int,
    deadline: float,
    result: LoadResult,
) -> list[float]:
    """Latencies (ms) of our events as they reach the console; counts duplicates."""
    latencies: list[float] = []
    seen: set[str] = set()
    last_shown = 0.0
    while len(seen) < expected and time.perf_counter() < deadline:
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
        except TimeoutError:
            continue
        arrived = time.perf_counter()
        message = json.loads(raw)
        if message["type"] != "event":
            continue
        event_id = message["data"]["id"]
        sent_at = publisher.sent_at.get(event_id)
        if sent_at is None:
            continue  # not ours
        if event_id in seen:
            result.duplicated += 1
            continue
        seen.add(event_id)
        latencies.append((arrived - sent_at) * 1000)
        result.last_arrival = arrived
        if arrived - last_shown > 0.25:
            last_shown = arrived
            _show_progress(len(publisher.sent_at), len(seen), expected)
    _show_progress(len(publisher.sent_at), len(seen), expected)
    print(file=sys.stderr)
    return latencies


async def run_load(stack: Stack, rate: float, duration: float) -> LoadResult:
    """One run at one rate against a running stack."""
    devices = [
        (d.site, d.id, d.zones[0] if d.zones else stack.config.site(d.site).zones[0].id)
        for d in stack.config.devices
        if d.type == "fence"
    ]
    result = LoadResult(rate=rate, duration_s=duration, devices=len(devices))
    token = await _login(stack)
    url = stack.hub_url.replace("http://", "ws://") + f"/api/ws?token={token}&events=*"
    async with websockets.connect(url, max_size=None, max_queue=None) as ws:
        await ws.recv()  # hello
        processes = {
            "broker": [stack.mosquitto.process],
            "influxd": [stack.influxd.process],
            "hub": [stack.components["hub"].process],
            "edges": [c.process for n, c in stack.components.items() if n.startswith("edge-")],
        }
        cpu = _Cpu(processes)
        publisher = _Publisher(stack, devices, rate, duration)
        started = time.perf_counter()
        publisher.start()
        expected = int(rate * duration)
        latencies = await _collect(ws, publisher, expected, started + duration + DRAIN_S, result)
        publisher.join()
        publisher.close()
        result.resources = cpu.report()
    result.sent = len(publisher.sent_at)
    result.delivered = len(latencies)
    result.lost = result.sent - result.delivered
    if result.delivered:
        result.throughput = round(result.delivered / (result.last_arrival - started), 1)
    latencies.sort()
    result.latency_ms = {
        "p50": round(_percentile(latencies, 0.50), 2),
        "p95": round(_percentile(latencies, 0.95), 2),
        "p99": round(_percentile(latencies, 0.99), 2),
        "max": round(latencies[-1], 2) if latencies else float("nan"),
    }
    return result


def _show_progress(sent: int, delivered: int, expected: int) -> None:
    width = 30
    done = int(width * delivered / max(1, expected))
    bar = "#" * done + "." * (width - done)
    print(
        f"\r[{bar}] sent {sent}/{expected} delivered {delivered}",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _public(result: LoadResult) -> dict[str, Any]:
    report = asdict(result)
    del report["last_arrival"]
    return report


def bench(
    *,
    rate: float,
    duration: float,
    devices: int,
    sites: int,
    find_max: bool,
    json_out: Path | None,
) -> int:
    """Start a stack sized for the load, run it, print and optionally save the report."""
    with tempfile.TemporaryDirectory(prefix="riverguard-bench-") as tmp:
        config = Path(tmp) / "fleet.toml"
        config.write_text(fleet_config(sites, max(1, devices // sites)), encoding="utf-8")
        stack = Stack(
            data_dir=Path(tmp) / "stack",
            config_path=config,
            simulators=(),
            ports=None,
            progress=lambda message: print(message, file=sys.stderr),
        )
        try:
            stack.start()
            runs = []
            rates = list(FIND_MAX_RATES) if find_max else [rate]
            for step in rates:
                print(f"load: {step:g} events/s for {duration:g}s", file=sys.stderr)
                result = asyncio.run(run_load(stack, step, duration))
                runs.append(result)
                print(json.dumps(_public(result)), file=sys.stderr)
                if find_max and not result.passes:
                    break
        finally:
            stack.stop()
    report: dict[str, Any] = {"runs": [_public(r) for r in runs]}
    if find_max:
        passing = [r.rate for r in runs if r.passes]
        report["max_rate"] = max(passing) if passing else 0
    text = json.dumps(report, indent=2)
    print(text)
    if json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")
    return 0
