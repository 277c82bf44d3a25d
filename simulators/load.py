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
import ssl
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect as ws_connect

from riverguard.heap import freeze_startup_heap
from riverguard.hub_session import HubSession
from riverguard.mqtt_client import Client as MqttClient
from riverguard.mqtt_client import Subscription
from riverguard.services import ManagedProcess
from riverguard.stack import Stack
from riverguard.testing import fence_report
from riverguard.wire import topics
from riverguard.wire.event_ids import device_seq_id
from riverguard.wire.socket_auth import subprotocols
from simulators.profiling import Profiler

ZONES_PER_SITE = 4
# Top-level topic trees of the bare broker hop and of the Node-RED peer: the sim login
# may use them only on a stack started with them as sandboxes (riverguard.broker_acl).
HOP_TREE = "hop"
PEER_TREE = "peer"
BENCH_TREES = (HOP_TREE, PEER_TREE)
# After the last publish, how long stragglers may take before they count as lost.
DRAIN_S = 10.0
# --find-max: the rates tried, in order, until one fails the bar twice in a row.
FIND_MAX_RATES = (
    250,
    500,
    1000,
    1500,
    2000,
    2500,
    3000,
    3500,
    4000,
    5000,
    6000,
    7000,
    8000,
    9000,
    10_000,
    12_000,
    16_000,
    20_000,
    24_000,
    32_000,
)
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
    # Frames (messages) the listener received: delivered / frames is how many events
    # a Riverguard console frame carried, about the hub's ingest batch.
    frames: int = 0
    resources: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def passes(self) -> bool:
        """Zero loss and p99 within the bar: what --find-max looks for."""
        return self.lost == 0 and self.latency_ms.get("p99", float("inf")) <= MAX_P99_MS


def fences_config(sites: int, devices_per_site: int) -> str:
    """A site configuration (TOML) of ``sites`` sites with that many fences each.

    Fences only, for the throughput benchmark; ``simulators.fleet_config`` makes
    the mixed fleet (cameras, Frigate, speakers) of ``riverguard sim fleet``.
    """
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
        # The load tool's own publisher and listener share the machine: count them too.
        self.own_start = time.process_time()
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
        own = time.process_time() - self.own_start
        result["load_tool"] = {"cpu_s": round(own, 2), "cpu_pct": round(100 * own / wall, 1)}
        return result


class _Publisher(threading.Thread):
    """Publishes fence reports at a steady rate, QoS 1, from its own thread and loop.

    On our own MQTT client (``riverguard.mqtt_client``): each tick's reports go out
    in one write and their PUBACKs are read in one pass. paho spent ~0.2 ms of CPU
    per report, which on two cores the tool took from the systems it measures, and
    it capped the bare broker hop at 2,000/s.
    """

    def __init__(self, target: Target, rate: float, duration: float) -> None:
        super().__init__(name="bench.publisher", daemon=True)
        self.target = target
        self.rate = rate
        self.duration = duration
        self.sent_at: dict[str, float] = {}
        self.seq = int(time.time() * 10) % 2**31
        self.connected = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._publish())
        except Exception as exc:  # reported by the main thread: the run is void
            self.failure = exc
        finally:
            self.connected.set()  # nobody waits forever on a failed connection

    async def _publish(self) -> None:
        target = self.target
        client = target.mqtt_client()
        async with client:
            self.connected.set()
            in_flight: set[asyncio.Task[None]] = set()
            total = int(self.rate * self.duration)
            started = time.perf_counter()
            sent = 0
            while sent < total:
                due = min(total, int((time.perf_counter() - started) * self.rate) + 1)
                tick = []
                while sent < due:
                    site, device, zone = target.devices[sent % len(target.devices)]
                    self.seq += 1
                    self.sent_at[f"{device}:{self.seq}"] = time.perf_counter()
                    tick.append(
                        (
                            target.prefix + topics.field_report(site, "fence", device),
                            json.dumps(fence_report(self.seq, zone, "breach")).encode(),
                        )
                    )
                    sent += 1
                if tick:
                    task = asyncio.create_task(client.publish_many(tick))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                await asyncio.sleep(0.002)
            await asyncio.gather(*in_flight)


class _Collector(threading.Thread):
    """Records when each of our events reaches the listener, from its own thread.

    Two kinds of listener: a console WebSocket (Riverguard's hub or the peer's
    websocket-out node), or an MQTT subscription on the raw device topics
    (the bare broker hop, the ceiling of this machine).
    """

    def __init__(self, target: Target) -> None:
        super().__init__(name="bench.collector", daemon=True)
        self.target = target
        self.arrivals: list[tuple[str, float]] = []
        self.frames = 0
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            if self.target.ws_url is None:
                asyncio.run(self._listen_mqtt())
            else:
                self._listen_websocket(self.target.ws_url)
        except Exception as exc:  # reported by the main thread: the run is void
            self.failure = exc

    async def _listen_mqtt(self) -> None:
        target = self.target
        client = target.mqtt_client()
        async with client:
            await client.subscribe([Subscription(target.prefix + "field/+/fence/+", qos=1)])
            self.ready.set()
            while not self.stopping.is_set():
                try:
                    async with asyncio.timeout(0.2):
                        messages = await client.next_batch(1000)
                except TimeoutError:
                    continue
                arrived = time.perf_counter()
                for message in messages:
                    self.frames += 1
                    device = message.topic.rsplit("/", 1)[1]
                    seq = json.loads(message.payload)["seq"]
                    self.arrivals.append((f"{device}:{seq}", arrived))

    def _listen_websocket(self, ws_url: str) -> None:
        token = self.target.ws_token
        offered = subprotocols(token) if token else None
        with ws_connect(ws_url, max_size=None, subprotocols=offered) as ws:
            self.ready.set()
            while not self.stopping.is_set():
                try:
                    raw = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                arrived = time.perf_counter()
                self.frames += 1
                self.arrivals.extend((heard, arrived) for heard in events_heard(json.loads(raw)))


@dataclass
class Target:
    """What a load runs against: where devices publish, where events are heard."""

    name: str
    broker_port: int
    password: str  # of the "sim" broker login
    ws_url: str | None  # None: listen on the raw device topics (broker hop only)
    processes: dict[str, list[ManagedProcess]]
    devices: list[tuple[str, str, str]]  # (site, device, zone)
    # Raw reports go to prefix + the device topic: the peer and the bare broker
    # hop get topics of their own, so the other systems on the broker stay idle.
    prefix: str = ""
    # The hub's bearer token, offered as a WebSocket subprotocol (never in the URL).
    ws_token: str | None = None
    # Devices and the listener connect over TLS, this CA checking the broker.
    ca_file: Path | None = None

    def mqtt_client(self) -> MqttClient:
        """The simulators' login on the target's broker (TLS if it takes TLS)."""
        return MqttClient(
            "127.0.0.1",
            self.broker_port,
            username="sim",
            password=self.password,
            tls=self.tls_context(),
        )

    def tls_context(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def riverguard_target(stack: Stack) -> Target:
    token = HubSession.login(stack.hub_url, "admin", stack.secrets.users["admin"]).access_token
    return Target(
        name="riverguard",
        broker_port=stack.broker_tls_port if stack.tls else stack.broker_port,
        ca_file=stack.ca_file if stack.tls else None,
        password=stack.secrets.broker["sim"],
        ws_url=stack.hub_url.replace("http://", "ws://") + "/api/ws?events=*&batch=1",
        ws_token=token,
        processes={
            "broker": [stack.mosquitto.process],
            "influxd": [stack.influxd.process],
            "hub": [stack.components["hub"].process],
            "edges": [stack.components[name].process for name in stack.edge_groups()],
        },
        devices=fences(stack),
    )


def broker_target(stack: Stack) -> Target:
    """The raw broker hop: device -> Mosquitto -> a Python subscriber."""
    return Target(
        name="broker",
        broker_port=stack.broker_tls_port if stack.tls else stack.broker_port,
        ca_file=stack.ca_file if stack.tls else None,
        password=stack.secrets.broker["sim"],
        ws_url=None,
        processes={"broker": [stack.mosquitto.process]},
        devices=fences(stack),
        prefix=HOP_TREE + "/",
    )


def fences(stack: Stack) -> list[tuple[str, str, str]]:
    return [
        (d.site, d.id, d.zones[0] if d.zones else stack.config.site(d.site).zones[0].id)
        for d in stack.config.devices
        if d.type == "fence"
    ]


def run_load(
    target: Target, rate: float, duration: float, profile_dir: Path | None = None
) -> LoadResult:
    """One run at one rate against a running target; ``profile_dir``: py-spy it too."""
    result = LoadResult(rate=rate, duration_s=duration, devices=len(target.devices))
    collector = _Collector(target)
    collector.start()
    if not collector.ready.wait(10):
        raise RuntimeError(f"{target.name}: listener not ready in 10 s: {collector.failure!r}")
    cpu = _Cpu(target.processes)
    profiler = None
    if profile_dir is not None:
        python = {k: v for k, v in target.processes.items() if k in ("hub", "edges")}
        profiler = Profiler(python, profile_dir, f"{target.name}-{rate:g}")
    publisher = _Publisher(target, rate, duration)
    # The tool's own pauses would count as the target's latency: no full collections
    # walking what the set-up left (riverguard.heap).
    freeze_startup_heap()
    publisher.start()
    if not publisher.connected.wait(10) or publisher.failure is not None:
        raise RuntimeError(f"{target.name}: cannot publish: {publisher.failure!r}")
    started = time.perf_counter()
    if profiler is not None:
        profiler.start(duration)
    expected = int(rate * duration)
    deadline = started + duration + DRAIN_S
    while time.perf_counter() < deadline:
        heard = ours(collector.arrivals, publisher.sent_at)
        _show_progress(len(publisher.sent_at), heard, expected)
        if heard >= expected:
            break
        time.sleep(0.25)
    publisher.join()
    collector.stopping.set()
    collector.join(5)
    for failed in (publisher, collector):
        if failed.failure is not None:
            raise RuntimeError(f"{target.name}: the load tool failed: {failed.failure!r}")
    _show_progress(len(publisher.sent_at), ours(collector.arrivals, publisher.sent_at), expected)
    print(file=sys.stderr)
    result.resources = cpu.report()
    result.frames = collector.frames
    if profiler is not None:
        for summary in profiler.finish():
            print(f"profile: {summary}", file=sys.stderr)

    _tally(result, publisher.sent_at, collector.arrivals, started)
    return result


def events_heard(frame: Any) -> list[str]:
    """The events of one WebSocket frame, as the tool sent them: ``{device}:{seq}``.

    An edge adds its key tag, and a boot suffix once it has seen the device restart
    (7.10). On a shared stack another test's small seqs after the tool's large ones
    look like a restart: with the suffix kept, every later event of that device
    went unmatched and was reported lost (seen in CI: 75 of 100, one fence of four).
    """
    # Riverguard's batch frames are arrays; the peer sends one message a frame.
    messages = frame if isinstance(frame, list) else [frame]
    return [device_seq_id(m["data"]["id"]) for m in messages if m.get("type") == "event"]


def ours(arrivals: list[tuple[str, float]], sent_at: Mapping[str, float]) -> int:
    """The events of this run heard so far, each once. A shared stack carries others
    too (its simulators, other tests): counted, they ended the wait before this run's
    last events had come, and those were reported lost."""
    return len({event_id for event_id, _ in list(arrivals) if event_id in sent_at})


def _tally(
    result: LoadResult,
    sent_at: dict[str, float],
    arrivals: list[tuple[str, float]],
    started: float,
) -> None:
    """Delivered, lost, duplicated and latency percentiles from what was sent and heard."""
    latencies: list[float] = []
    seen: set[str] = set()
    last_arrival = started
    for event_id, arrived in list(arrivals):
        sent = sent_at.get(event_id)
        if sent is None:
            continue  # not ours
        if event_id in seen:
            result.duplicated += 1
            continue
        seen.add(event_id)
        latencies.append((arrived - sent) * 1000)
        last_arrival = max(last_arrival, arrived)
    result.sent = len(sent_at)
    result.delivered = len(latencies)
    result.lost = result.sent - result.delivered
    if latencies:
        result.throughput = round(result.delivered / (last_arrival - started), 1)
    latencies.sort()
    result.latency_ms = {
        "p50": round(_percentile(latencies, 0.50), 2),
        "p95": round(_percentile(latencies, 0.95), 2),
        "p99": round(_percentile(latencies, 0.99), 2),
        "max": round(latencies[-1], 2) if latencies else float("nan"),
    }


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
