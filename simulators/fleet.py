"""``riverguard sim fleet``: thousands of field devices, one MQTT connection each, one event loop.

Every fence controller and generic camera of the chosen sites holds its own
MQTT connection with a retained last will ``{"online": false}`` on its status
topic (PROTOCOL 1.4), as real devices do. The connections are paho clients
driven by the asyncio event loop (the socket callbacks aiomqtt uses, but no
per-client task): a thread or a task per device would not carry 10,000 of
them on two cores. They connect in waves, with progress shown.

Once connected each device repeats its status every ``heartbeat_s`` (the
phases spread evenly, so the broker sees a steady rate), and the sites make
noise at low rates (per site per minute, times ``noise_scale``):

- ``rain``: rain on a fence line: a few fences of one site report bursts of
  ``breach`` within ~10 s and a camera reports a low-confidence "person";
- ``birds``: a camera reports a bird (a generic camera's ``intrusion`` with
  ``object = "bird"``, or a Frigate ``bird`` track the edge skips);
- ``walker``: Frigate tracks a person on the path, outside the guarded zones;
- ``tamper``: a fence reports ``tamper``;
- ``offline``: a device loses its connection without a word (the broker
  publishes its will) and comes back 20-90 s later.

Frigate-managed cameras are served by one Frigate NVR connection per site
publishing on ``{prefix}/events``, as Frigate does, ``prefix`` being the site's
``frigate_topic_prefix``. ``mqtt`` speakers run as
``simulators.speaker.SimulatedSpeaker`` and ``http`` ones as
``simulators.http_speaker.HttpSpeakerSim`` (``simulators.main.run_speakers``).

Counters go to a JSON summary at the end and, with a metrics port, to
Prometheus ``/metrics`` while running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import resource
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
import paho.mqtt.client as paho
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from riverguard.config import Config, ConfigError, Device, Site
from riverguard.mqtt import Backoff, BrokerSettings
from riverguard.services import port_is_free
from riverguard.testing import TINY_JPEG, camera_report, fence_report
from riverguard.wire import topics
from simulators.devices import OFFLINE, initial_seq
from simulators.frigate import FrigateMessageType, FrigateTrack
from simulators.main import run_speakers
from simulators.settings import SimSettings

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

log = structlog.get_logger()

# Per site per minute, before ``noise_scale``.
NOISE_PER_SITE_PER_MIN = {"rain": 0.2, "birds": 1.0, "walker": 0.3, "tamper": 0.05, "offline": 0.3}
HEARTBEAT_TICK_S = 0.1
KEEPALIVE_S = 60
# loop_misc (keepalive pings, ping timeouts) reaches each client once per this many seconds.
MISC_SWEEP_S = 10
CONNACK_TIMEOUT_S = 30.0
PROGRESS_EVERY_S = 10.0
CLOSE_TIMEOUT_S = 10.0


@dataclass
class FleetOptions:
    heartbeat_s: float = 30.0
    wave: int = 500
    noise_scale: float = 1.0
    duration_s: float | None = None
    speaker_speed: float = 1.0
    metrics_port: int | None = None
    # MQTT client ids are "<prefix>-<device>": two simulators on one broker need two prefixes.
    client_prefix: str = "fleet"
    # Where progress lines go (stderr by default); the JSON summary goes to stdout.
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)


@dataclass
class FleetStats:
    """What the fleet did; the summary and the Prometheus collector read it."""

    devices: int = 0
    connections: int = 0
    connected: int = 0
    peak_connected: int = 0
    connect_time_s: float | None = None
    sent: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    drops: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "connections": self.connections,
            "connected": self.connected,
            "peak_connected": self.peak_connected,
            "connect_time_s": self.connect_time_s,
            "sent": dict(sorted(self.sent.items())),
            "sent_total": sum(self.sent.values()),
            "reconnects": self.reconnects,
            "drops": self.drops,
            "errors": dict(sorted(self.errors.items())),
            "run_s": round(time.monotonic() - self.started, 1),
        }

    def line(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.sent.items()))
        return (
            f"t={time.monotonic() - self.started:.0f}s connected {self.connected}/"
            f"{self.connections} sent {sum(self.sent.values())} ({kinds}) reconnects "
            f"{self.reconnects} drops {self.drops} errors {sum(self.errors.values())}"
        )


class _StatsCollector(Collector):
    def __init__(self, stats: FleetStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily(
            "riverguard_sim_fleet_connected", "Fleet MQTT connections up now"
        )
        connected.add_metric([], self.stats.connected)
        yield connected
        if self.stats.connect_time_s is not None:
            yield GaugeMetricFamily(
                "riverguard_sim_fleet_connect_seconds",
                "How long the connect waves took",
                value=self.stats.connect_time_s,
            )
        sent = CounterMetricFamily(
            "riverguard_sim_fleet_sent", "Messages the fleet published", labels=["kind"]
        )
        for kind, count in self.stats.sent.items():
            sent.add_metric([kind], count)
        yield sent
        yield CounterMetricFamily(
            "riverguard_sim_fleet_reconnects", "Reconnections", value=self.stats.reconnects
        )
        yield CounterMetricFamily(
            "riverguard_sim_fleet_drops", "Connections dropped on purpose", value=self.stats.drops
        )
        errors = CounterMetricFamily(
            "riverguard_sim_fleet_errors", "Fleet errors", labels=["reason"]
        )
        for reason, count in self.stats.errors.items():
            errors.add_metric([reason], count)
        yield errors


class Link:
    """One MQTT connection driven by the event loop: paho's socket callbacks, no thread.

    Reconnects with capped, jittered backoff after a lost connection; ``drop``
    loses it on purpose (the broker then publishes the will) for ``back_after_s``.
    """

    def __init__(
        self,
        fleet: Fleet,
        client_id: str,
        will: tuple[str, str] | None,
        on_online: Callable[[Link], None],
    ) -> None:
        self.fleet = fleet
        self.client_id = client_id
        self.on_online = on_online
        self.up = False
        self.first_connack: asyncio.Future[bool] = fleet.loop.create_future()
        # Dropped on purpose (``drop``): no reconnect but at ``_back_after_s`` or ``come_back``.
        self._dropped = False
        self._back_after_s: float | None = None
        self._backoff = Backoff(initial=1.0, cap=30.0)
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311
        )
        client.username_pw_set(fleet.broker.username, fleet.broker.password.get_secret_value())
        if fleet.tls is not None:
            client.tls_set_context(fleet.tls)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        # Unlimited: a burst from one device must not be refused locally.
        client.max_queued_messages_set(0)
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self.client = client

    # The event loop watches the socket and calls paho when it can read or write.
    def _on_socket_open(self, client: paho.Client, userdata: object, sock: SocketLike) -> None:
        self.fleet.loop.add_reader(sock, client.loop_read)

    def _on_socket_close(self, client: paho.Client, userdata: object, sock: SocketLike) -> None:
        self.fleet.loop.remove_reader(sock)

    def _on_socket_register_write(
        self, client: paho.Client, userdata: object, sock: SocketLike
    ) -> None:
        self.fleet.loop.add_writer(sock, client.loop_write)

    def _on_socket_unregister_write(
        self, client: paho.Client, userdata: object, sock: SocketLike
    ) -> None:
        self.fleet.loop.remove_writer(sock)

    def start(self) -> None:
        try:
            # A blocking TCP connect; on loopback or a LAN it takes well under a millisecond.
            self.client.connect(self.fleet.broker.host, self.fleet.broker.port, KEEPALIVE_S)
        except OSError as exc:
            self._failed("connect_refused", exc)

    def publish(self, topic: str, payload: str | bytes, kind: str, *, retain: bool = False) -> None:
        if not self.up:
            self.fleet.stats.errors["not_connected"] += 1
            return
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.fleet.stats.sent[kind] += 1
        else:
            self.fleet.stats.errors[f"publish_{info.rc.name.lower()}"] += 1

    def drop(self, back_after_s: float | None) -> None:
        """Lose the connection without DISCONNECT, as a device losing power does.

        Back after ``back_after_s``, or with None only when ``come_back`` is called.
        """
        sock = self.client.socket()
        if not self.up or not isinstance(sock, socket.socket):
            return
        self._dropped = True
        self._back_after_s = back_after_s
        self.fleet.stats.drops += 1
        sock.shutdown(socket.SHUT_RDWR)

    def come_back(self) -> None:
        """Reconnect now after a ``drop``."""
        if self._dropped and not self.up:
            self._dropped = False
            self._reconnect()

    def close(self) -> None:
        if self.up:
            self.client.disconnect()

    def _on_connect(
        self, client: paho.Client, userdata: object, flags: object, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            self._failed(f"connack_{reason.getName().lower().replace(' ', '_')}", None)
            return
        self.up = True
        self._backoff.reset()
        self.fleet.connection_up()
        if not self.first_connack.done():
            self.first_connack.set_result(True)
        self.on_online(self)

    def _on_disconnect(
        self, client: paho.Client, userdata: object, flags: object, reason: ReasonCode, _p: object
    ) -> None:
        if self.up:
            self.up = False
            self.fleet.connection_down()
        if self.fleet.stopping:
            return
        if self._dropped:
            if self._back_after_s is not None:
                self.fleet.loop.call_later(self._back_after_s, self.come_back)
            return
        self.fleet.stats.errors["connection_lost"] += 1
        self.fleet.loop.call_later(self._backoff.next_delay(), self._reconnect)

    def _reconnect(self) -> None:
        if self.fleet.stopping:
            return
        self.fleet.stats.reconnects += 1
        try:
            self.client.reconnect()
        except OSError as exc:
            self._failed("reconnect_refused", exc)

    def _failed(self, reason: str, exc: OSError | None) -> None:
        self.fleet.stats.errors[reason] += 1
        if not self.first_connack.done():
            self.first_connack.set_result(False)
        if exc is not None:
            log.debug("fleet connection failed", client=self.client_id, error=str(exc))
        if not self.fleet.stopping:
            self.fleet.loop.call_later(self._backoff.next_delay(), self._reconnect)


@dataclass
class FieldDevice:
    """A fence or generic camera: its vitals, its ``seq``, its connection."""

    device: Device
    zone: str
    seq: int
    battery: float = field(default_factory=lambda: round(random.uniform(0.55, 0.98), 2))
    rssi: int = field(default_factory=lambda: random.randint(-85, -55))
    link: Link | None = None

    @property
    def status_topic(self) -> str:
        return topics.field_status(self.device.site, self.device.type, self.device.id)

    def status(self, *, online: bool = True) -> str:
        if not online:
            return OFFLINE
        # Slowly draining battery, wandering signal, as SimulatedDevice's heartbeat.
        self.battery = max(0.05, round(self.battery - random.uniform(0.0, 0.002), 3))
        self.rssi = max(-100, min(-40, self.rssi + random.randint(-2, 2)))
        return json.dumps({"online": True, "battery": self.battery, "rssi": self.rssi})

    def on_online(self, link: Link) -> None:
        self.send_status("status_online")

    def send_status(self, kind: str = "status") -> None:
        assert self.link is not None
        self.link.publish(self.status_topic, self.status(), kind, retain=True)

    def report(self, payload: dict[str, Any], kind: str) -> None:
        assert self.link is not None
        topic = topics.field_report(self.device.site, self.device.type, self.device.id)
        self.link.publish(topic, json.dumps(payload), kind)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


@dataclass
class FleetSite:
    id: str
    fences: list[FieldDevice] = field(default_factory=list)
    cameras: list[FieldDevice] = field(default_factory=list)
    frigate: list[Device] = field(default_factory=list)
    nvr: Link | None = None
    # The site's Frigate ``mqtt.topic_prefix``, which its edge reads.
    frigate_prefix: str = topics.FRIGATE_PREFIX


def select(config: Config, sites: int | None, devices_per_site: int | None) -> Config:
    """The first ``sites`` sites of ``config``, each with its first ``devices_per_site`` devices."""
    chosen = config.sites[:sites] if sites else config.sites
    if sites and len(chosen) < sites:
        raise ConfigError(f"the configuration has {len(config.sites)} sites, not {sites}")
    devices: list[Device] = []
    for site in chosen:
        own = config.devices_of(site.id)
        if devices_per_site and len(own) < devices_per_site:
            raise ConfigError(f"site {site.id} has {len(own)} devices, not {devices_per_site}")
        devices += own[:devices_per_site] if devices_per_site else own
    return subset(config, chosen, devices)


def subset(config: Config, sites: list[Site], devices: list[Device]) -> Config:
    """A new configuration of some sites and devices (not ``model_copy``: that would
    carry the original's cached lookups, such as ``device_by_id``, over)."""
    return Config(sites=sites, devices=devices, users=config.users)


def raise_file_limit() -> int:
    """Raise the soft limit of open files to the hard limit: one socket per device."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Fleet:
    def __init__(self, broker: BrokerSettings, config: Config, options: FleetOptions) -> None:
        self.broker = broker
        # One context for every link: each would otherwise read the CA file again.
        self.tls = broker.ssl_context()
        self.config = config
        self.options = options
        self.loop = asyncio.get_running_loop()
        self.stats = FleetStats()
        self.stopping = False
        self._all_down = asyncio.Event()
        self.sites: dict[str, FleetSite] = {
            site.id: FleetSite(site.id, frigate_prefix=site.frigate_topic_prefix)
            for site in config.sites
        }
        self.field_devices: list[FieldDevice] = []
        self.by_id: dict[str, FieldDevice] = {}
        seq = initial_seq()
        for device in config.devices:
            site = self.sites[device.site]
            zone = device.zones[0] if device.zones else config.site(device.site).zones[0].id
            if device.type == "camera" and device.source == "frigate":
                site.frigate.append(device)
            elif device.type in ("fence", "camera"):
                field_device = FieldDevice(device, zone, seq)
                field_device.link = Link(
                    self,
                    f"{options.client_prefix}-{device.id}",
                    (field_device.status_topic, OFFLINE),
                    field_device.on_online,
                )
                (site.fences if device.type == "fence" else site.cameras).append(field_device)
                self.field_devices.append(field_device)
                self.by_id[device.id] = field_device
        for site in self.sites.values():
            if site.frigate:
                site.nvr = Link(
                    self, f"{options.client_prefix}-frigate-{site.id}", None, lambda link: None
                )
        self.links = [d.link for d in self.field_devices if d.link] + [
            s.nvr for s in self.sites.values() if s.nvr
        ]
        self.speakers = [d for d in config.devices if d.type == "speaker"]
        self.stats.devices = len(config.devices)
        # Fences, generic cameras and Frigate NVRs; mqtt speakers connect on their own.
        self.stats.connections = len(self.links)

    # --- connection accounting (called by links) ---------------------------------------

    def connection_up(self) -> None:
        self.stats.connected += 1
        self.stats.peak_connected = max(self.stats.peak_connected, self.stats.connected)

    def connection_down(self) -> None:
        self.stats.connected -= 1
        if self.stats.connected == 0:
            self._all_down.set()

    # --- running ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> dict[str, Any]:
        """Connect everything, make heartbeats and noise until ``stop`` or the duration."""
        limit = raise_file_limit()
        if limit < len(self.links) + 100:
            self.options.progress(
                f"warning: the open-file limit {limit} is below {len(self.links)} connections"
            )
        metrics = None
        if self.options.metrics_port is not None:
            registry = CollectorRegistry()
            registry.register(_StatsCollector(self.stats))
            # Served from a thread of prometheus_client's own, reading the counters.
            metrics, _ = start_http_server(
                self.options.metrics_port, addr="127.0.0.1", registry=registry
            )
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = []
                if self.speakers:
                    tasks.append(tg.create_task(self._speakers(), name="sim.fleet.speakers"))
                await self.connect(stop)
                tasks += [
                    tg.create_task(self.heartbeats(), name="sim.fleet.heartbeats"),
                    tg.create_task(self._keepalive(), name="sim.fleet.keepalive"),
                    tg.create_task(self._noise(), name="sim.fleet.noise"),
                    tg.create_task(self._progress(), name="sim.fleet.progress"),
                ]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.options.duration_s)
                for task in tasks:
                    task.cancel()
            await self.close()
        finally:
            if metrics is not None:
                metrics.shutdown()
                metrics.server_close()
        summary = self.stats.summary()
        self.options.progress(self.stats.line())
        return summary

    async def connect(self, stop: asyncio.Event | None = None) -> None:
        """Connect every link, in waves; returns when each has had its first answer,
        or after the wave in which ``stop`` is set."""
        started = time.monotonic()
        total = len(self.links)
        wave = max(1, self.options.wave)
        self.options.progress(f"connecting {total} MQTT connections in waves of {wave} ...")
        for first in range(0, total, wave):
            batch = self.links[first : first + wave]
            for index, link in enumerate(batch):
                link.start()
                if index % 50 == 49:
                    await asyncio.sleep(0)  # let CONNACKs in while the wave goes out
            await asyncio.wait([link.first_connack for link in batch], timeout=CONNACK_TIMEOUT_S)
            if stop is not None and stop.is_set():
                self.options.progress("stopped while connecting")
                break
            self.options.progress(
                f"  wave {first // wave + 1}: {self.stats.connected}/{total} connected "
                f"({time.monotonic() - started:.1f}s)"
            )
        self.stats.connect_time_s = round(time.monotonic() - started, 2)
        log.info(
            "fleet connected", connected=self.stats.connected, seconds=self.stats.connect_time_s
        )

    async def close(self) -> None:
        """Say offline and disconnect cleanly (no will), as a fleet powered down in order."""
        self.stopping = True
        for device in self.field_devices:
            assert device.link is not None
            if device.link.up:
                device.link.publish(device.status_topic, OFFLINE, "status_offline", retain=True)
        for link in self.links:
            link.close()
        if self.stats.connected > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_down.wait(), CLOSE_TIMEOUT_S)

    async def heartbeats(self) -> None:
        """Each device's status every ``heartbeat_s``, phases spread over the interval."""
        ticks = max(1, round(self.options.heartbeat_s / HEARTBEAT_TICK_S))
        buckets: list[list[FieldDevice]] = [[] for _ in range(ticks)]
        for index, device in enumerate(self.field_devices):
            buckets[index % ticks].append(device)
        start = self.loop.time()
        tick = 0
        while True:
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * HEARTBEAT_TICK_S - self.loop.time()))
            for device in buckets[tick % ticks]:
                if device.link is not None and device.link.up:
                    device.send_status()

    async def _keepalive(self) -> None:
        """paho's periodic duties (PINGREQ when idle, ping timeouts), a slice per second."""
        slice_ = 0
        while True:
            await asyncio.sleep(1.0)
            for link in self.links[slice_::MISC_SWEEP_S]:
                if link.up:
                    link.client.loop_misc()
            slice_ = (slice_ + 1) % MISC_SWEEP_S

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            self.options.progress(self.stats.line())

    async def _speakers(self) -> None:
        # uvicorn ends the process (SystemExit) when it cannot bind: leave such speakers out.
        taken = [
            d.id
            for d in self.speakers
            if d.driver == "http" and d.url and not _port_free(httpx.URL(d.url))
        ]
        if taken:
            self.stats.errors["http_speaker_port_taken"] += len(taken)
            log.error("http speakers left out: their port is taken", speakers=taken)
        config = subset(
            self.config, self.config.sites, [d for d in self.config.devices if d.id not in taken]
        )
        settings = SimSettings(
            broker=self.broker,
            speaker_speed=self.options.speaker_speed,
            device_heartbeat_s=self.options.heartbeat_s,
        )
        await run_speakers(settings, config, None)

    # --- noise ------------------------------------------------------------------------

    async def _noise(self) -> None:
        """Once a second, each site may start each kind of noise (a Poisson process)."""
        chance = {
            kind: rate * self.options.noise_scale / 60.0
            for kind, rate in NOISE_PER_SITE_PER_MIN.items()
        }
        makers: dict[str, Callable[[FleetSite], None]] = {
            "rain": self._rain,
            "birds": self._birds,
            "walker": self._walker,
            "tamper": self._tamper,
            "offline": self._offline,
        }
        while True:
            await asyncio.sleep(1.0)
            for site in self.sites.values():
                for kind, p in chance.items():
                    if random.random() < p:
                        makers[kind](site)

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        self.loop.call_later(delay, lambda: None if self.stopping else action())

    def _rain(self, site: FleetSite) -> None:
        fences = _up(site.fences)
        for fence in random.sample(fences, min(len(fences), random.randint(3, 8))):
            for _ in range(random.randint(2, 5)):
                self._later(random.uniform(0, 10), partial(_fence, fence, "breach", "rain"))
        cameras = _up(site.cameras)
        if cameras:
            camera = random.choice(cameras)
            self._later(
                random.uniform(0, 10),
                lambda: camera.report(
                    camera_report(
                        camera.next_seq(),
                        camera.zone,
                        rule="intrusion",
                        confidence=round(random.uniform(0.2, 0.45), 2),
                    ),
                    "rain_camera",
                ),
            )

    def _birds(self, site: FleetSite) -> None:
        cameras = _up(site.cameras)
        if site.frigate and site.nvr is not None and site.nvr.up and random.random() < 0.5:
            self._frigate_track(site, "bird", zones=None)
        elif cameras:
            camera = random.choice(cameras)
            payload = camera_report(
                camera.next_seq(),
                camera.zone,
                rule="intrusion",
                confidence=round(random.uniform(0.3, 0.6), 2),
            )
            payload["object"] = "bird"
            camera.report(payload, "birds")

    def _walker(self, site: FleetSite) -> None:
        if site.frigate and site.nvr is not None and site.nvr.up:
            # On the path behind the fence: a zone Frigate knows and the site does not guard.
            self._frigate_track(site, "person", zones=["path"])

    def _frigate_track(self, site: FleetSite, label: str, zones: list[str] | None) -> None:
        nvr = site.nvr
        assert nvr is not None
        camera = random.choice(site.frigate)
        track = FrigateTrack(camera.source_ref or camera.id, label=label)
        kind = f"frigate_{label}"

        def send(message_type: FrigateMessageType, in_zones: list[str] | None = None) -> None:
            message = track.message(message_type, in_zones)
            nvr.publish(topics.frigate_events(site.frigate_prefix), json.dumps(message), kind)

        send("new")
        self._later(1.5, lambda: send("update", zones))
        if label == "person":
            self._later(
                1.6,
                lambda: nvr.publish(
                    topics.frigate_snapshot(track.camera, prefix=site.frigate_prefix),
                    TINY_JPEG,
                    "frigate_snapshot",
                ),
            )
        self._later(random.uniform(4, 8), lambda: send("end"))

    def _tamper(self, site: FleetSite) -> None:
        fences = _up(site.fences)
        if fences:
            _fence(random.choice(fences), "tamper", "tamper")

    def _offline(self, site: FleetSite) -> None:
        devices = _up([*site.fences, *site.cameras])
        if devices:
            device = random.choice(devices)
            assert device.link is not None
            device.link.drop(back_after_s=random.uniform(20, 90))


def _port_free(url: httpx.URL) -> bool:
    return port_is_free(url.port or 80, url.host)


def _up(devices: Iterable[FieldDevice]) -> list[FieldDevice]:
    return [d for d in devices if d.link is not None and d.link.up]


def _fence(fence: FieldDevice, state: str, kind: str) -> None:
    fence.report(fence_report(fence.next_seq(), fence.zone, state), kind)
