"""The fault suite's tools: a supervisor thread, a sequenced fence stream, the tally.

A case streams sequenced fence reports into the whole stack, injects one fault
into one process (by its PID), ends it, waits for the stack to recover and
classifies every report it sent: delivered (in the hub's state store and in
InfluxDB, once), missing, stored twice, or stray (stored, but never sent).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from riverguard.stack import Stack
from riverguard.testing import fence_report
from riverguard.wire import topics
from riverguard.wire.event_ids import derived_id
from riverguard.wire.times import utcnow

Fault = Literal["SIGKILL", "SIGSTOP"]

# Where the console's screenshots during faults go (ignored by git), when asked for with
# RIVERGUARD_FAULT_SCREENSHOTS=1: under load a screenshot takes seconds.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WANT_SCREENSHOTS = os.environ.get("RIVERGUARD_FAULT_SCREENSHOTS") == "1"

# Fence reports a second during a case (RIVERGUARD_FAULT_RATE). Each one is also an
# event on the console, which headless Chromium draws on the same two cores as the
# whole stack: at 100/s and more on a loaded machine the console fell 30 s behind
# (the hub's links message waited behind the events; the hub then closed its socket
# as too slow), and its figures measured Chromium's share of the CPU, not the fault.
RATE = float(os.environ.get("RIVERGUARD_FAULT_RATE", "25"))
# The stream goes on this long after the fault ended (the SIGKILL, SIGCONT, space freed).
AFTER_S = 1.0
# A case is over when everything sent is stored and in InfluxDB, or when nothing
# more arrived for this long (then the tally says what is missing).
SETTLED_S = 8.0
RECOVERY_TIMEOUT_S = 90.0


class Supervisor:
    """``riverguard up``'s supervision loop, in a thread; its progress lines kept."""

    def __init__(
        self, stack: Stack, lines: list[str], lock: threading.Lock, hub_tmpfs: Path | None
    ) -> None:
        self.stack = stack
        # The tmpfs the hub's data directory is on (None: could not mount one).
        self.hub_tmpfs = hub_tmpfs
        self.no_tmpfs: str | None = None
        self._lines = lines
        self._lock = lock
        self._stopping = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faults.supervisor", daemon=True)
        # Every report id any case sent: a stored id outside it is stray.
        self.ever_sent: set[str] = set()
        self.failure: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(30)

    def pause(self) -> None:
        """Supervise nothing until ``resume``: a child killed meanwhile stays away."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def _run(self) -> None:
        try:
            while not self._stopping.wait(0.2):
                if not self._paused.is_set():
                    self.stack.supervise_once()
        except BaseException as exc:  # the test that looks next fails with it
            self.failure = exc
            raise

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def said(self, *fragments: str, after: int = 0) -> bool:
        """Whether a progress line since line ``after`` holds every fragment."""
        if self.failure is not None:
            raise AssertionError("the supervisor loop failed") from self.failure
        return any(all(f in line for f in fragments) for line in self.lines()[after:])

    def pid(self, name: str) -> int:
        pid = self.stack.components[name].process.pid
        assert pid is not None, f"{name} never started"
        return pid


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until true; the seconds it took. AssertionError after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not {what} after {timeout:.0f}s")
        time.sleep(0.1)
    return time.monotonic() - started


def answers(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status ``url`` answers with, or None when it does not answer in time."""
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError:
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie has exited, whatever kill(0) says)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class FenceStream:
    """Sequenced fence reports at a steady rate, as the fences of the stack send them.

    One paho client (a second MQTT implementation, as real controllers are), QoS 1,
    keeping every report until the broker acknowledges it and sending it again
    after a reconnect (paho does, as the standard asks): what a controller does
    when its broker goes away. Every report has its own ``seq`` and device time,
    so its event id is ``{device}:{seq}`` (and the edge's key tag, set aside here).
    """

    def __init__(self, stack: Stack, rate: float) -> None:
        self.rate = rate
        self.fences = [
            (d.site, d.id, d.zones[0]) for d in stack.config.devices if d.type == "fence"
        ]
        # Far from any earlier stream's numbers, and increasing across cases.
        self._seq = int(time.time() * 1000)
        self._last_ms: dict[str, int] = {}
        self.sent: dict[str, int] = {}  # event id -> the MQTT packet id it went with
        self._acked: set[int] = set()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fault-fences-{self._seq}",
            protocol=paho.MQTTv311,
            clean_session=False,
        )
        self._client.username_pw_set("sim", stack.secrets.broker["sim"])
        self._client.on_publish = self._on_publish
        self._client.max_inflight_messages_set(200)
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.connect_async("127.0.0.1", stack.broker_port, keepalive=5)
        self._thread = threading.Thread(target=self._run, name="faults.fences", daemon=True)

    def __enter__(self) -> FenceStream:
        self._client.loop_start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._client.loop_stop()
        self._client.disconnect()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)

    def ids(self) -> set[str]:
        with self._lock:
            return set(self.sent)

    def acked(self) -> int:
        """How many reports the broker acknowledged (PUBACK)."""
        with self._lock:
            mids = list(self.sent.values())
        return sum(1 for mid in mids if mid in self._acked)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        # Not under self._lock: paho calls this holding its own lock, which publish()
        # takes too. A set's add is atomic.
        self._acked.add(mid)

    def _run(self) -> None:
        started = time.monotonic()
        count = 0
        while not self._stopping.wait(0.01):
            due = int((time.monotonic() - started) * self.rate)
            while count < due:
                site, device, zone = self.fences[count % len(self.fences)]
                self._publish(site, device, zone)
                count += 1

    def _publish(self, site: str, device: str, zone: str) -> None:
        self._seq += 1
        # One report per device and millisecond: InfluxDB keeps one point per series and time.
        now_ms = int(utcnow().timestamp() * 1000)
        ts_ms = max(now_ms, self._last_ms.get(device, 0) + 1)
        self._last_ms[device] = ts_ms
        ts = datetime.fromtimestamp(ts_ms / 1000, UTC)
        payload = fence_report(self._seq, zone, "breach", ts=ts)
        topic = topics.field_report(site, "fence", device)
        # Published while the broker is away, a report waits in the client (paho keeps
        # it and sends it after the reconnect); its packet id is what its PUBACK names.
        # Packet ids wrap at 65,535: far more than one case sends.
        info = self._client.publish(topic, json.dumps(payload), qos=1)
        with self._lock:
            self.sent[f"{device}:{self._seq}"] = info.mid


@dataclass
class Tally:
    """Every report of a case, classified."""

    sent: int
    delivered: int = 0
    missing: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)
    # Stored by the hub, not (yet) in InfluxDB: the event history lacks them.
    not_in_influx: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"sent {self.sent}, delivered {self.delivered}, missing {len(self.missing)},"
            f" stored twice {len(self.twice)}, stray {len(self.stray)},"
            f" not in InfluxDB {len(self.not_in_influx)}"
        )


def stored_ids(stack: Stack, devices: set[str]) -> list[str]:
    """Event ids the hub's state store holds for ``devices`` (read-only, beside the hub)."""
    path = stack.data_dir / "hub" / "hub.db"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        marks = ",".join("?" * len(devices))
        query = f"SELECT id FROM events WHERE device IN ({marks})"  # noqa: S608  # only ?s
        rows = db.execute(query, sorted(devices))
        # Sent as device:seq; the edge adds its key tag (PROTOCOL 7.10).
        return [derived_id(str(row[0])) for row in rows]
    finally:
        db.close()


def influx_ids(stack: Stack, since: datetime) -> list[str]:
    """Every event point's id in InfluxDB since ``since``, one per point."""
    since_ms = int(since.timestamp() * 1000)
    query = f'SELECT "id" FROM "events" WHERE time >= {since_ms}ms'  # noqa: S608  # an int
    response = httpx.get(
        f"{stack.influxd.url}/query",
        params={"db": stack.influxd.database, "q": query, "epoch": "ms"},
        timeout=30,
    )
    response.raise_for_status()
    series = response.json()["results"][0].get("series", [])
    return [derived_id(str(row[1])) for row in series[0]["values"]] if series else []


def tally(supervised: Supervisor, sent: set[str], since: datetime) -> Tally:
    stack = supervised.stack
    devices = {event_id.split(":", 1)[0] for event_id in supervised.ever_sent}
    stored = Counter(stored_ids(stack, devices))
    history = Counter(influx_ids(stack, since - timedelta(minutes=1)))
    result = Tally(sent=len(sent))
    result.missing = sorted(sent - set(stored))
    result.twice = sorted(i for i in sent if stored.get(i, 0) > 1 or history.get(i, 0) > 1)
    result.stray = sorted(i for i in set(stored) | set(history) if i not in supervised.ever_sent)
    result.not_in_influx = sorted(i for i in sent if i in stored and i not in history)
    result.delivered = sum(1 for i in sent if stored.get(i) == 1 and history.get(i) == 1)
    return result


def signal_pid(pid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to a process of ours, by its PID only."""
    os.kill(pid, signum)


@dataclass
class Injection:
    """One fault: how it begins, how it ends, how long it lasts, how it shows."""

    name: str
    begin: Callable[[], None]
    end: Callable[[], None]
    lasts_s: float
    # Whether a console state (Console.state) shows the fault.
    shows: Callable[[dict[str, Any]], bool]
    # When (time.monotonic()) the fault was over, asked after the case, if not when it
    # ended: a killed process is away until it has been started again.
    over: Callable[[], float] | None = None


@dataclass
class Case:
    name: str
    tally: Tally
    # When the console first showed the fault (seconds after it began), None: never.
    shown_s: float | None
    # Whether it went back to calm after that while the fault lasted.
    lapsed: bool
    recovered_s: float
    # When the console was calm again after the fault (seconds after it ended).
    console_calm_s: float | None = None
    watched: bool = True  # whether a console watched the case

    def line(self) -> str:
        shown = "not shown" if self.watched else "no console watching"
        if self.shown_s is not None:
            held = "lapsed before the fault ended" if self.lapsed else "held while it lasted"
            shown = f"shown after {self.shown_s:.1f} s ({held})"
        calm = (
            f", console calm {self.console_calm_s:.1f} s after"
            if self.console_calm_s is not None
            else ""
        )
        return (
            f"{self.name}: {shown}, recovered {self.recovered_s:.1f} s after the fault"
            f" ended{calm}; {self.tally.line()}"
        )


def healthy(stack: Stack) -> bool:
    return answers(f"{stack.hub_url}/healthz", timeout=5) == 200


def run_fault(
    supervised: Supervisor,
    fault: Injection,
    console: Console | None = None,
    rate: float = RATE,
) -> Case:
    """Stream, inject ``fault`` after a second, end it, stream a second more, tally.

    With ``console``: the console must be calm before the fault, and after it
    (that time is part of the figures); ``fault.shows`` is sampled every 0.1 s.
    """
    stack = supervised.stack
    since = utcnow()
    wait_until(lambda: healthy(stack), 60, "healthy before the fault")
    if console is not None:
        wait_until(console.calm, 90, "the console calm before the fault")
    with FenceStream(stack, rate) as stream:
        wait_until(lambda: stream.acked() >= rate, 20, "a second of reports acknowledged")
        fault_at = time.monotonic()
        fault_at_unix = time.time()
        fault.begin()
        # A fault that takes a while to set up lasts ``lasts_s`` from when it is set up.
        ended_at = time.monotonic() + fault.lasts_s
        pictured = console is None or not WANT_SCREENSHOTS
        picture_at = time.monotonic() + min(3.0, fault.lasts_s / 2 or 0.5)
        ongoing = True
        while time.monotonic() < ended_at + AFTER_S:
            if ongoing and time.monotonic() >= ended_at:
                fault.end()
                ended_at = time.monotonic()
                ongoing = False
            # The console as the fault shows on it, once (a screenshot is slow under load).
            if not pictured and console is not None and time.monotonic() >= picture_at:
                console.screenshot(re.sub(r"[^a-z0-9]+", "-", fault.name.lower()))
                pictured = True
            threading.Event().wait(0.1)
        if ongoing:
            fault.end()
            ended_at = time.monotonic()
        ended_at_unix = time.time() - (time.monotonic() - ended_at)
        stream.stop()
        sent = stream.ids()
        supervised.ever_sent |= sent
        wait_until(
            lambda: stream.acked() == len(sent), 60, "every report acknowledged by the broker"
        )
    devices = {i.split(":", 1)[0] for i in sent}
    progress = {"count": -1, "at": time.monotonic()}

    def recovered() -> bool:
        if not healthy(stack):
            return False
        stored = set(stored_ids(stack, devices)) & sent
        history = set(influx_ids(stack, since)) & sent
        count = len(stored) + len(history)
        if count != progress["count"]:
            progress.update(count=count, at=time.monotonic())
        if len(stored) == len(history) == len(sent):
            return True
        return time.monotonic() - progress["at"] > SETTLED_S

    wait_until(recovered, RECOVERY_TIMEOUT_S, "recovered")
    shown_s: float | None = None
    lapsed = False
    console_calm_s: float | None = None
    if console is not None:
        wait_until(console.calm, 90, f"the console calm after {fault.name}")
        trace = console.trace(fault_at_unix)
        # Monotonic times to the page's clock (Unix time), through the fault's start.
        over_unix = fault_at_unix + ((fault.over() if fault.over else ended_at) - fault_at)
        recovered_unix = fault_at_unix + (progress["at"] - fault_at)
        for at, state in trace:
            shows = fault.shows(state)
            if shows and shown_s is None and at <= recovered_unix:
                shown_s = at - fault_at_unix
            elif not shows and shown_s is not None and at < over_unix:
                lapsed = True
        console_calm_s = max(0.0, trace[-1][0] - ended_at_unix)
    case = Case(
        fault.name, tally(supervised, sent, since), shown_s, lapsed, progress["at"] - ended_at
    )
    case.console_calm_s = console_calm_s
    case.watched = console is not None
    return case


# What the duty console shows, recorded by the page itself at each change (a
# MutationObserver), with the page's clock: its own socket, the hub's links, each
# site's edge as the wall shows it, whether the wall claims to know. Read back
# afterwards, so that a page slow to answer (Chromium busy drawing 200 events a
# second on two shared cores) does not delay the fault or blur its timing.
_CONSOLE_TRACE_JS = """
(() => {
  const look = () => {
    const edges = {};
    for (const el of document.querySelectorAll("#status-strip .site-status[data-site]")) {
      const edge = el.querySelector(".edge");
      const health = [...(edge?.classList ?? [])].find((c) => c.startsWith("edge-"));
      edges[el.dataset.site] = health ? health.slice(5) : "none";
    }
    return {
      view: document.body?.dataset.view ?? "",
      connection: document.body?.dataset.connection ?? "",
      links: document.body?.dataset.links ?? "",
      known: document.querySelector("#alarm-list")?.dataset.known ?? "",
      edges,
    };
  };
  window.__faultTrace = [];
  window.__faultLook = look;
  const record = () => {
    const state = look();
    const key = JSON.stringify(state);
    const last = window.__faultTrace[window.__faultTrace.length - 1];
    if (last && last.key === key) return;
    window.__faultTrace.push({ at: Date.now(), key, state });
  };
  const watch = () => {
    record();
    const observer = new MutationObserver(record);
    observer.observe(document.body, { attributes: true });
    for (const id of ["status-strip", "alarm-list"]) {
      const el = document.getElementById(id);
      if (el) observer.observe(el, { attributes: true, childList: true, subtree: true });
    }
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", watch);
  } else {
    watch();
  }
})();
"""


class Console:
    """A duty console in headless Chromium, logged in, watched while faults happen."""

    def __init__(self, page: Page, hub_url: str, username: str, password: str) -> None:
        self.page = page
        self.hub_url = hub_url
        self.username = username
        self.password = password
        page.add_init_script(_CONSOLE_TRACE_JS)

    def log_in(self) -> None:
        page = self.page
        page.goto(f"{self.hub_url}/")
        page.fill("#login-username", self.username)
        page.fill("#login-password", self.password)
        page.click("#login-submit")
        # A locator, not wait_for_function: the console's CSP forbids eval in the page.
        page.locator("body[data-view='console']").wait_for(state="attached", timeout=30_000)

    def state(self) -> dict[str, Any]:
        """What the page shows now."""
        try:
            state: dict[str, Any] = self.page.evaluate("window.__faultLook()")
        except PlaywrightError as exc:  # the page navigating (a reload, the login page)
            return {"error": str(exc)}
        return state

    def trace(self, since: float) -> list[tuple[float, dict[str, Any]]]:
        """What the page showed from ``since`` (Unix time) on: (time, state) at each change,
        the first being what it showed at ``since``."""
        entries: list[dict[str, Any]] = self.page.evaluate(
            "window.__faultTrace.map((e) => ({at: e.at, state: e.state}))"
        )
        before = [e for e in entries if e["at"] / 1000 < since][-1:]
        after = [e for e in entries if e["at"] / 1000 >= since]
        return [(max(since, e["at"] / 1000), e["state"]) for e in before + after]

    def calm(self) -> bool:
        """Connected, every link up, every edge online: what it shows when all is well."""
        state = self.state()
        return bool(
            state.get("view") == "console"
            and state.get("connection") == "open"
            and state.get("links") == "ok"
            and all(health == "online" for health in state.get("edges", {}).values())
        )

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"fault-{name}.png")


def console_shows(target: str, site: str) -> Callable[[dict[str, Any]], bool]:
    """Whether a console state shows a fault of ``target`` (``site``: the edge's)."""
    return partial(_console_shows, target=target, site=site)


def _console_shows(state: dict[str, Any], target: str, site: str) -> bool:
    if state.get("view") != "console" or state.get("connection") != "open":
        return True  # the console says it lost the hub (or asks for a login)
    links = state.get("links")
    edge = state.get("edges", {}).get(site)
    if target == "influxd":
        return bool(links in ("degraded", "lost"))
    if target.startswith("edge-"):
        return bool(edge != "online")
    return bool(links == "lost")
