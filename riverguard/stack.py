"""``riverguard up``: the whole stack as child processes of one supervisor.

Order: Mosquitto and influxd (with their data under the data directory), the
hub, the edges, then the simulators. The sites' edge agents run in a few
processes (by default one per core, at least two: ``edge_processes``), each
serving a contiguous run of sites (``edge.sites``): every site still logs in as its own
``edge-<site>`` and keeps its data in ``DIR/edge-<site>``. Each component runs
through this same command line (``riverguard hub`` ...), its log in
``DIR/logs``. Ctrl-C or SIGTERM stops everything in reverse order. The tests
use ``Stack`` too.

Supervision (``Stack.supervise_once``, every half second), the same for every
child, Mosquitto and influxd included:
- a child that exited is reaped at once (no zombie) and started again with
  the same command line, port and data directory after 1, 2, 4 ... 30 s
  (the delay doubles per restart; a child up for ``STABLE_AFTER_S`` starts
  again from 1 s);
- a child with a health probe (Mosquitto: an MQTT ping answered; influxd:
  ``/ping``; hub and edges: ``/healthz``, any status) is probed every
  ``PROBE_EVERY_S``; once it has answered since its start, a probe left
  unanswered is a hang: said after ``HANG_SAY_AFTER_S``, and after
  ``hang_restart_s`` of silence the child is killed (SIGKILL) and restarted
  as if it had died. A child that never answered after a start is left to
  its own start-up time: only its exit restarts it.
Each of these is one progress line: what happened, to which child, what comes
next.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, get_args

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from riverguard import broker_acl, certs
from riverguard.columns import aligned
from riverguard.config import Config, Role, load_config
from riverguard.credentials import generate_password
from riverguard.demo_responders import write_demo_config
from riverguard.provisioning import DeviceLoginStore, device_logins_json
from riverguard.services import (
    Influxd,
    ManagedProcess,
    Mosquitto,
    ServiceError,
    TlsListener,
    free_port,
)
from riverguard.settings import DEFAULT_CONFIG
from riverguard.wire import topics

USUAL_PORTS = {"broker": 1883, "broker_tls": 8883, "influx": 8086, "hub": 8080}
SIMULATORS = ("speakers", "swimmer")
# Lowest first, as declared: the demo's swimmer watches the console with the least a login may do.
ROLES: tuple[str, ...] = get_args(Role)
RESTART_DELAY_CAP_S = 30.0
# A child up this long without dying has its restart delay reset to 1 s.
STABLE_AFTER_S = 120.0
PROBE_EVERY_S = 2.0
PROBE_TIMEOUT_S = 2.0
HANG_SAY_AFTER_S = 5.0
# A child silent this long is killed and restarted: long enough for a busy hub
# or a compacting influxd not to be killed for being slow, short enough that a
# hung broker does not leave the site deaf for long.
HANG_RESTART_S = 60.0
# How long the edges may take to come online: 200 sites took 5-6 s on two cores, and
# 24 s before their processes shared a TLS trust store, on a machine loaded 5-fold.
EDGES_ONLINE_S = 30.0
EDGES_ONLINE_PER_SITE_S = 0.1


@dataclass
class Secrets:
    """Logins generated once per data directory and kept there across runs."""

    broker: dict[str, str]
    users: dict[str, str]

    @classmethod
    def load_or_create(cls, path: Path, config: Config) -> Secrets:
        stored: dict[str, dict[str, str]] = {"broker": {}, "users": {}}
        if path.exists():
            stored = json.loads(path.read_text(encoding="utf-8"))
        # Every broker login but the devices' (those are in device-logins.json).
        broker_names = [i.username for i in broker_acl.identities(config, devices=())]
        broker = {name: stored["broker"].get(name) or generate_password() for name in broker_names}
        users = {
            user.username: stored["users"].get(user.username) or generate_password()
            for user in config.users
        }
        secrets = cls(broker=broker, users=users)
        path.write_text(json.dumps({"broker": broker, "users": users}, indent=2), encoding="utf-8")
        path.chmod(0o600)
        return secrets


@dataclass
class Component:
    """A child process the supervisor keeps alive."""

    process: ManagedProcess
    # Whether the child answers (any answer, within its own timeout); None: no probe.
    probe: Callable[[], bool] | None = None
    # Where it serves and keeps its data, for the progress lines.
    where: str = ""
    restarts: int = 0
    next_restart: float = 0.0
    started_at: float = 0.0
    answered: bool = False  # since its last start
    next_probe: float = 0.0
    silent_since: float | None = None
    said_silent: bool = False

    def started(self, now: float) -> None:
        self.started_at = now
        self.answered = False
        self.next_probe = now
        self.silent_since = None
        self.said_silent = False


def make_demo_certificates(directory: Path) -> certs.Outcome:
    """The stack's own CA (``ca.crt``, kept across runs) and its broker's server
    certificate for 127.0.0.1 and localhost, made or kept by ``riverguard certs``' rules."""
    dns, ips = certs.split_hosts(["localhost", "127.0.0.1"])
    request = certs.Request("broker", True, False, dns, ips, what="the demo broker")
    return certs.make_all(directory, [request])[-1]


@dataclass
class Stack:
    data_dir: Path
    config_path: Path = DEFAULT_CONFIG
    simulators: Iterable[str] = SIMULATORS
    # Preferred ports; a taken one is replaced by a free one. None: always a free one.
    ports: dict[str, int] | None = field(default_factory=lambda: dict(USUAL_PORTS))
    speaker_speed: float = 1.0
    progress: Callable[[str], None] = lambda message: None
    # Extra top-level topic trees the sim login may use (the benchmark's own).
    sandboxes: tuple[str, ...] = ()
    # The hub and edges connect to the broker's TLS listener instead of its plain one
    # (``riverguard bench --tls``). The TLS listener is open either way.
    tls: bool = False
    # How long a child may leave its health probe unanswered before it is restarted.
    hang_restart_s: float = HANG_RESTART_S
    # Processes the sites' edge agents run in (at most one per site); None: one per core,
    # at least two, so that one process's crash never takes every site down at once.
    edge_processes: int | None = None
    # A signed webhook every demo responder's calls go to (riverguard/demo_responders.py).
    webhook: str | None = None

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config = load_config(self.config_path)
        self.hub_config_path = self.config_path
        self.webhook_secret: str | None = None
        if self.webhook is not None:
            self.hub_config_path, self.webhook_secret = write_demo_config(
                self.config, self.webhook, self.data_dir
            )
        self.secrets = Secrets.load_or_create(self.data_dir / "secrets.json", self.config)
        preferred = self.ports or {}
        self.broker_port = free_port(preferred.get("broker"))
        self.influx_port = free_port(preferred.get("influx"))
        self.hub_port = free_port(preferred.get("hub"))
        self.hub_url = f"http://127.0.0.1:{self.hub_port}"
        self.device_logins = DeviceLoginStore.in_data_dir(self.data_dir).ensure(self.config)
        passwords = {
            **self.secrets.broker,
            **{broker_acl.device_username(d): p for d, p in self.device_logins.devices.items()},
        }
        access = broker_acl.broker_access(
            self.config,
            passwords,
            devices=[d for d in self.device_logins.devices if d in self.config.device_by_id],
            sandboxes=self.sandboxes,
        )
        # A TLS listener too, with a CA of the stack's own: connect as a remote site does.
        self.broker_tls_port = free_port(preferred.get("broker_tls"))
        self.tls_dir = self.data_dir / "tls"
        self.ca_file = self.tls_dir / "ca.crt"
        broker_cert = make_demo_certificates(self.tls_dir)
        self.mosquitto = Mosquitto(
            self.data_dir / "mosquitto",
            self.broker_port,
            access,
            tls=TlsListener(
                self.broker_tls_port,
                "127.0.0.1",
                self.ca_file,
                broker_cert.cert_path,
                broker_cert.key_path,
            ),
        )
        self.influxd = Influxd(self.data_dir / "influxdb", self.influx_port)
        self.components: dict[str, Component] = {
            "mosquitto": Component(
                self.mosquitto.process,
                probe=partial(self.mosquitto.answers, PROBE_TIMEOUT_S),
                where=f"port {self.broker_port}, data {self.mosquitto.directory}",
            ),
            "influxd": Component(
                self.influxd.process,
                probe=partial(self.influxd.answers, PROBE_TIMEOUT_S),
                where=f"port {self.influx_port}, data {self.influxd.directory}",
            ),
        }
        self._build_components()

    # --- construction ------------------------------------------------------------

    def _env(self, login: str | None, data_dir: Path, **extra: str) -> dict[str, str]:
        """A child's environment; ``login`` its broker login (None: it reads its own)."""
        env = {
            **os.environ,
            "RIVERGUARD_CONFIG": str(self.config_path.resolve()),
            "RIVERGUARD_BROKER__HOST": "127.0.0.1",
            "RIVERGUARD_BROKER__PORT": str(self.broker_port),
            **(
                {
                    "RIVERGUARD_BROKER__PORT": str(self.broker_tls_port),
                    "RIVERGUARD_BROKER__TLS": "true",
                    "RIVERGUARD_BROKER__CA_FILE": str(self.ca_file),
                }
                if self.tls
                else {}
            ),
            **(
                {
                    "RIVERGUARD_BROKER__USERNAME": login,
                    "RIVERGUARD_BROKER__PASSWORD": self.secrets.broker[login],
                }
                if login is not None
                else {}
            ),
            "RIVERGUARD_DATA_DIR": str(data_dir),
            "RIVERGUARD_LOG_JSON": "true",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(extra)
        return env

    def _add(
        self, name: str, argv: list[str], env: dict[str, str], health_url: str | None = None
    ) -> None:
        log = self.data_dir / "logs" / f"{name}.log"
        command = [sys.executable, "-m", "riverguard", *argv]
        self.components[name] = Component(
            ManagedProcess(name, command, log, env=env),
            probe=partial(_answers, health_url) if health_url else None,
            where=f"data {env['RIVERGUARD_DATA_DIR']}",
        )

    def _build_components(self) -> None:
        users_file = self.data_dir / "users.json"
        users_file.write_text(json.dumps(self.secrets.users), encoding="utf-8")
        users_file.chmod(0o600)
        self._add(
            "hub",
            ["hub"],
            self._env(
                "hub",
                self.data_dir / "hub",
                RIVERGUARD_HTTP_PORT=str(self.hub_port),
                RIVERGUARD_INFLUX_URL=self.influxd.url,
                RIVERGUARD_USERS_FILE=str(users_file),
                # Device login provisioning from the admin API (riverguard/provisioning.py).
                RIVERGUARD_DEVICE_LOGINS_FILE=str(DeviceLoginStore.in_data_dir(self.data_dir).path),
                RIVERGUARD_BROKER_ADMIN__PORT=str(self.broker_port),
                RIVERGUARD_BROKER_ADMIN__USERNAME=broker_acl.ADMIN,
                RIVERGUARD_BROKER_ADMIN__PASSWORD=self.secrets.broker[broker_acl.ADMIN],
                RIVERGUARD_CONFIG=str(self.hub_config_path.resolve()),
                **self._responder_key(),
            ),
            health_url=f"{self.hub_url}/healthz",
        )
        self.edge_health: dict[str, str] = {}
        for name, sites in self.edge_groups().items():
            # Each edge process serves /healthz, /metrics and its sites' local warning audio here.
            port = free_port()
            argv = ["edge", *(arg for site in sites for arg in ("--site", site))]
            self._add(
                name,
                [*argv, "--logins", str(self._edge_logins(name, sites))],
                self._env(
                    None,
                    self.data_dir,
                    RIVERGUARD_METRICS_PORT=str(port),
                    # Announcement audio is fetched from the hub only.
                    RIVERGUARD_HUB_URL=self.hub_url,
                    # Simulated devices repeat their status every 30 s: three missed is offline.
                    RIVERGUARD_DEVICE_OFFLINE_AFTER_S="90",
                ),
                health_url=f"http://127.0.0.1:{port}/healthz",
            )
            for site in sites:
                self.edge_health[site] = f"http://127.0.0.1:{port}/sites/{site}/healthz"
        sim_env = self._env(
            "sim", self.data_dir / "sim", RIVERGUARD_SPEAKER_SPEED=str(self.speaker_speed)
        )
        for simulator in self.simulators:
            argv, env = ["sim", simulator], sim_env
            if simulator == "swimmer":
                # The demo's swimmer comes when someone is at the console
                # (simulators/console_watch.py).
                argv += ["--loop", "--wait-for-console"]
                env = {**sim_env, **self._demo_hub_env()}
            self._add(f"sim-{simulator}", argv, env)

    def _responder_key(self) -> dict[str, str]:
        """With demo responders, the key of their links' tokens, kept in the data
        directory: a link in a message keeps working when the hub is restarted."""
        if self.webhook is None:
            return {}
        path = self.data_dir / "responder-key.txt"
        if not path.exists():
            path.write_text(generate_password(), encoding="utf-8")
            path.chmod(0o600)
        return {"RIVERGUARD_RESPONDER_KEY": path.read_text(encoding="utf-8").strip()}

    def _demo_hub_env(self) -> dict[str, str]:
        """The hub and its least privileged login, for the swimmer's watch on the console."""
        users = sorted(self.config.users, key=lambda user: ROLES.index(user.role))
        if not users:
            return {}
        return {
            "RIVERGUARD_DEMO_HUB__URL": self.hub_url,
            "RIVERGUARD_DEMO_HUB__USERNAME": users[0].username,
            "RIVERGUARD_DEMO_HUB__PASSWORD": self.secrets.users[users[0].username],
        }

    def edge_groups(self) -> dict[str, list[str]]:
        """The edge processes by name, each with its sites: contiguous runs of the
        configuration's sites, as even as they go. A process of one site is named
        ``edge-<site>``, one of several ``edges-<n>``."""
        sites = [site.id for site in self.config.sites]
        wanted = self.edge_processes or max(2, os.cpu_count() or 1)
        count = max(1, min(wanted, len(sites)))
        size = math.ceil(len(sites) / count)
        runs = [sites[i : i + size] for i in range(0, len(sites), size)]
        if len(runs) == len(sites):
            return {f"edge-{run[0]}": run for run in runs}
        return {f"edges-{n}": run for n, run in enumerate(runs, start=1)}

    def _edge_logins(self, name: str, sites: list[str]) -> Path:
        """A file of the broker passwords of ``sites`` only, for the process serving them."""
        directory = self.data_dir / "edge-logins"
        directory.mkdir(mode=0o700, exist_ok=True)
        path = directory / f"{name}.json"
        logins = {
            login: self.secrets.broker[login] for login in map(broker_acl.edge_username, sites)
        }
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps(logins, indent=2), encoding="utf-8")
        return path

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start everything in order and wait until each part is ready."""
        self._step("mosquitto", f"127.0.0.1:{self.broker_port}", self.mosquitto.start)
        self._step("influxd", self.influxd.url, self.influxd.start)
        self._step("hub", self.hub_url, self._start_hub)
        groups = self.edge_groups()
        sites = [site for run in groups.values() for site in run]
        where = ", ".join(sites) if len(sites) <= 5 else f"{sites[0]} ... {sites[-1]}"
        self._step(
            "edges", f"{where} ({len(sites)} sites, {len(groups)} processes)", self._start_edges
        )
        for simulator in self.simulators:
            self._step(f"simulator {simulator}", "", partial(self._start_simulator, simulator))
        info = self.info()
        stack_json = self.data_dir / "stack.json"
        stack_json.write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
        stack_json.chmod(0o600)
        return info

    def _step(self, what: str, where: str, action: Callable[[], None]) -> None:
        started = time.monotonic()
        self.progress(f"starting {what} {where}".rstrip() + " ...")
        action()
        self.progress(f"  {what} ready in {time.monotonic() - started:.1f}s")

    def _start_hub(self) -> None:
        hub = self.components["hub"].process
        hub.start()
        # The first start renders the default warnings (espeak-ng): allow for it.
        hub.wait_until(self.hub_healthy, 90, "healthy")

    def hub_healthy(self) -> bool:
        try:
            return httpx.get(f"{self.hub_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _start_edges(self) -> None:
        edges = [self.components[name].process for name in self.edge_groups()]
        for edge in edges:
            edge.start()
        waiting = {site.id for site in self.config.sites}
        timeout = EDGES_ONLINE_S + EDGES_ONLINE_PER_SITE_S * len(waiting)
        online = self.watch_edges(
            waiting, timeout=timeout, abort=lambda: any(not e.running() for e in edges)
        )
        if online != waiting:
            dead = [e for e in edges if not e.running()]
            detail = "\n".join(f"{e.name}:\n{e.log_tail()}" for e in dead)
            raise ServiceError(f"edges not online: {sorted(waiting - online)}\n{detail}")

    def _start_simulator(self, simulator: str) -> None:
        process = self.components[f"sim-{simulator}"].process
        process.start()
        if simulator != "speakers":
            return
        # An announcement sent before a speaker subscribed would be lost: wait
        # until every simulated speaker says it is online.
        speakers = {
            topics.field_status(device.site, "speaker", device.id)
            for device in self.config.devices
            if device.type == "speaker" and device.driver == "mqtt"
        }
        online = self.watch_online(speakers, timeout=30, abort=lambda: not process.running())
        if online != speakers:
            raise ServiceError(f"speakers not online: {sorted(speakers - online)}")

    def watch_edges(
        self, sites: set[str], timeout: float, abort: Callable[[], bool] = lambda: False
    ) -> set[str]:
        """The sites among ``sites`` whose edge reports itself online."""
        by_topic = {topics.edge_status(site): site for site in sites}
        return {by_topic[topic] for topic in self.watch_online(set(by_topic), timeout, abort)}

    def watch_online(
        self, status_topics: set[str], timeout: float, abort: Callable[[], bool] = lambda: False
    ) -> set[str]:
        """The retained status topics among ``status_topics`` that say ``"online": true``."""
        online: set[str] = set()
        done = threading.Event()

        def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
            try:
                status = json.loads(message.payload)
            except ValueError:
                return
            if isinstance(status, dict) and status.get("online") is True:
                online.add(message.topic)
            else:
                online.discard(message.topic)
            if status_topics <= online:
                done.set()

        client = paho.Client(CallbackAPIVersion.VERSION2)
        # Read-only: statuses are all it needs.
        client.username_pw_set(broker_acl.OBSERVER, self.secrets.broker[broker_acl.OBSERVER])
        client.on_message = on_message
        client.on_connect = lambda c, *_: c.subscribe([(topic, 1) for topic in status_topics])
        client.connect("127.0.0.1", self.broker_port)
        client.loop_start()
        try:
            deadline = time.monotonic() + timeout
            while not done.wait(0.2) and time.monotonic() < deadline and not abort():
                pass
        finally:
            client.loop_stop()
            client.disconnect()
        return online & status_topics

    def info(self) -> dict[str, Any]:
        """What ``stack.json`` holds (PROTOCOL 6)."""
        logins = {
            user.username: {
                "username": user.username,
                "password": self.secrets.users[user.username],
                "role": user.role,
            }
            for user in self.config.users
        }
        admin = next((u for u in self.config.users if u.role == "admin"), None)
        return {
            "hub_url": self.hub_url,
            "broker": {
                "host": "127.0.0.1",
                "port": self.broker_port,
                # The same broker over TLS, its certificate signed by ca_file (for 127.0.0.1
                # and localhost): how a remote site connects.
                "tls_port": self.broker_tls_port,
                "ca_file": str(self.ca_file),
                "username": "sim",
                "password": self.secrets.broker["sim"],
            },
            "observer": {
                "username": broker_acl.OBSERVER,
                "password": self.secrets.broker[broker_acl.OBSERVER],
            },
            "device_logins": device_logins_json(self.device_logins),
            "influx": {"url": self.influxd.url, "database": self.influxd.database},
            "edges": {site: {"health_url": url} for site, url in self.edge_health.items()},
            "admin": (
                {"username": admin.username, "password": self.secrets.users[admin.username]}
                if admin
                else None
            ),
            "logins": logins,
            "data_dir": str(self.data_dir),
            "processes": {
                name: process.pid
                for name, process in [
                    ("mosquitto", self.mosquitto.process),
                    ("influxd", self.influxd.process),
                    *((name, c.process) for name, c in self.components.items()),
                ]
                if process.pid is not None
            },
        }

    def supervise_once(self, now: float | None = None) -> list[str]:
        """Reap, restart and probe the children (module docstring); names restarted."""
        now = time.monotonic() if now is None else now
        restarted = []
        for name, component in self.components.items():
            process = component.process
            if process.process is None:
                continue  # not started yet (start() is still on its way)
            if process.running():
                self._probe(name, component, now)
                continue
            if component.next_restart == 0.0:
                delay = min(RESTART_DELAY_CAP_S, 2.0**component.restarts)
                component.next_restart = now + delay
                self.progress(
                    f"{name} exited ({_exit_text(process.process.returncode)});"
                    f" restart {component.restarts + 1} in {delay:.0f}s ({component.where})"
                )
            elif now >= component.next_restart:
                component.restarts += 1
                component.next_restart = 0.0
                try:
                    process.start()
                except OSError as exc:  # its binary gone, its log directory full ...
                    self.progress(f"{name} could not be started: {exc}")
                    process.process = None
                    continue
                component.started(now)
                restarted.append(name)
                self.progress(f"{name} restarted (pid {process.pid}, {component.where})")
        return restarted

    def _probe(self, name: str, component: Component, now: float) -> None:
        if now - component.started_at >= STABLE_AFTER_S:
            component.restarts = 0
        if component.probe is None or now < component.next_probe:
            return
        answered = component.probe()
        # After a slow probe, the next one is due a full interval later, not at once.
        now = max(now, time.monotonic())
        component.next_probe = now + PROBE_EVERY_S
        if answered:
            if component.said_silent and component.silent_since is not None:
                self.progress(
                    f"{name} answers again after {now - component.silent_since:.0f}s of silence"
                )
            component.answered = True
            component.silent_since = None
            component.said_silent = False
            return
        if not component.answered:
            return  # still starting: its exit, not its silence, restarts it
        if component.silent_since is None:
            component.silent_since = now
        silent_s = now - component.silent_since
        if silent_s >= self.hang_restart_s:
            self.progress(
                f"{name} (pid {component.process.pid}) silent for {silent_s:.0f}s: killed"
            )
            component.process.kill()
        elif silent_s >= HANG_SAY_AFTER_S and not component.said_silent:
            component.said_silent = True
            self.progress(
                f"{name} (pid {component.process.pid}) not answering for {silent_s:.0f}s;"
                f" killed and restarted if still silent after {self.hang_restart_s:.0f}s"
            )

    def stop(self) -> None:
        """Stop everything, newest first: simulators, edges, hub, influxd, Mosquitto."""
        for component in reversed(list(self.components.values())):
            component.process.stop()
        self.mosquitto.close_probe()


def _answers(url: str) -> bool:
    """Whether ``url`` gets any HTTP answer (503 included) within the probe timeout."""
    try:
        httpx.get(url, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return True


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def _print(message: str) -> None:
    print(message, flush=True)


def up(
    data_dir: Path,
    config: Path | None,
    simulate: bool,
    edge_processes: int | None = None,
    webhook: str | None = None,
) -> int:
    """Run the stack until Ctrl-C or SIGTERM; 0 on a clean stop."""
    stack = Stack(
        data_dir=data_dir,
        config_path=config or DEFAULT_CONFIG,
        simulators=SIMULATORS if simulate else (),
        progress=_print,
        edge_processes=edge_processes,
        webhook=webhook,
    )
    for service, port in (
        ("broker", stack.broker_port),
        ("broker_tls", stack.broker_tls_port),
        ("influx", stack.influx_port),
        ("hub", stack.hub_port),
    ):
        if port != USUAL_PORTS[service]:
            _print(f"port {USUAL_PORTS[service]} is taken: {service} uses {port} instead")
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        info = stack.start()
        _print_ready(info, {u.username: u.name for u in stack.config.users})
        if stack.webhook is not None:
            _print("")
            _print(f"Every demo responder's calls go to {stack.webhook}, signed with the")
            _print(f"secret {stack.webhook_secret} (docs/responders.md: the signed webhook).")
        if "swimmer" in stack.simulators:
            _print_demo(stack.data_dir / "logs" / "sim-swimmer.log")
        while not stopping.wait(0.5):
            stack.supervise_once()
    except ServiceError as exc:
        _print(f"failed: {exc}")
        return 1
    finally:
        _print("stopping ...")
        stack.stop()
        _print("stopped")
    return 0


def login_table(logins: Iterable[dict[str, str]], names: dict[str, str]) -> list[str]:
    """The demo logins as aligned lines (names may be Chinese: aligned by display width)."""
    rows = [["login", "password", "role", "name"]]
    rows += [
        [login["username"], login["password"], login["role"], names.get(login["username"], "")]
        for login in logins
    ]
    return aligned(rows, indent="  ")


def _print_ready(info: dict[str, Any], names: dict[str, str]) -> None:
    _print("")
    _print(f"Riverguard is up. Console: {info['hub_url']}/")
    for line in login_table(info["logins"].values(), names):
        _print(line)
    _print(f"Stack description: {Path(info['data_dir']) / 'stack.json'}")
    _print("Ctrl-C stops everything.")


def _print_demo(log: Path) -> None:
    _print("")
    _print("The demo waits for you: the simulated swimmer crosses a fence once someone is")
    _print("logged in to the console and no alarm waits for an acknowledgement, so it comes")
    _print("again only after you have acknowledged its alarm.")
    _print(f"What the swimmer does: {log}")
