"""Scenarios as data: ``simulators/scenarios/*.toml``, played by ``riverguard sim run``.

A scenario names a site and zone (default: the stack's first site and its
first zone) and lists steps, run in order. A step with ``at`` waits until that
many seconds after the start (divided by ``--speed``); one without runs right
after the step before it. ``do`` says what the step is:

- devices (connected for the whole run through ``simulators.fleet``, each
  with its own MQTT connection and last will):
  ``fence`` (a report, ``state``), ``camera`` (a detection: ``rule``,
  ``object``, ``confidence``, ``snapshot``), both with ``count`` reports spread
  over ``over_s``; ``status`` (``online`` true/false; ``lost = true`` drops the
  connection without a word, so the broker publishes the will); ``pause``
  (``seconds``);
- the duty officer, over the hub's REST API: ``announce`` (on the scenario's
  alarm; with ``wait``, a speaker ending other than ``done`` fails the
  scenario), ``ack``, ``resolve`` (``outcome``);
- expectations, polled on the hub's REST API until they hold or ``within_s``
  passes: ``expect_alarm`` (of this scenario's events, in the zone:
  ``severity`` at least, ``state``, ``min_escalation_level``, ``min_events``,
  ``min_intrusions`` (PROTOCOL 7.36), ``outcome``, ``announced``),
  ``expect_site`` (``risk`` colour), ``expect_device`` (``online``),
  ``expect_events`` (``min`` of this
  scenario's events stored and readable from ``GET /api/events``),
  ``expect_dispatch`` (``responder``'s dispatch on the scenario's alarm is in
  ``state``, called at ``level``), ``expect_timeline`` (``entries`` appear in
  the alarm's timeline in this order, each ``type``, ``escalate:<level>`` or
  ``dispatch:<responder>:<state>``);
- a responder, as their phone would (PROTOCOL 7.35): ``respond`` (``action``
  accept, depart, arrive, finish or decline, with ``note``) with the token of
  the link in the hub's call to ``responder`` about the scenario's alarm (at
  ``level``), waiting up to ``within_s`` for the call. The calls are taken at
  the stack's demo webhook (``riverguard up --webhook URL``), signatures checked.

A step's ``device`` is a device id, or ``fence`` / ``camera`` for the first
generic device of that type covering the step's zone, or ``fence:all`` /
``camera:all`` for every generic one of the site in turn. Devices and zones
come from the hub (``GET /api/sites``, ``/api/devices``), so a scenario plays
against any stack whose ``stack.json`` it is given. A file that does not
validate is refused with the place and reason of each error.
"""

from __future__ import annotations

import asyncio
import sys
import time
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riverguard.config import Config, Device
from riverguard.hub_session import HubSession, HubSessionError
from riverguard.testing import camera_report, fence_report
from riverguard.wire.event_ids import device_seq_id
from riverguard.wire.models import AlarmState, CameraRule, Ident, Outcome, RiskColour, Severity
from simulators.errors import ScenarioError, SimulatorError
from simulators.fleet import FieldDevice, Fleet, FleetOptions, subset
from simulators.responder_calls import CallReceiver, Webhook, receiving, token_of
from simulators.snapshot import render_snapshot
from simulators.stack_info import StackInfo

log = structlog.get_logger()

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
RISKS: tuple[RiskColour, ...] = ("blue", "yellow", "orange", "red")
POLL_S = 0.5
HEARTBEAT_S = 30.0
# PROTOCOL 7.35's dispatch states (hub/dispatch.py), as a scenario names them.
DispatchState = Literal[
    "notified",
    "accepted",
    "on_the_way",
    "on_scene",
    "finished",
    "declined",
    "no_answer",
    "cancelled",
]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float | None = Field(default=None, ge=0, description="seconds after the start")
    zone: Ident | None = Field(default=None, description="default: the scenario's zone")


class _Burst(_Step):
    device: str = Field(min_length=1, max_length=80)
    count: int = Field(default=1, ge=1, le=100_000)
    over_s: float = Field(default=0.0, ge=0, le=3600)


class FenceStep(_Burst):
    do: Literal["fence"]
    device: str = "fence"
    state: Literal["breach", "clear", "tamper", "fault"] = "breach"


class CameraStep(_Burst):
    do: Literal["camera"]
    device: str = "camera"
    rule: CameraRule = "water_entry"
    object: str = Field(default="person", min_length=1, max_length=64)
    confidence: float = Field(default=0.91, ge=0, le=1)
    snapshot: bool = False


class StatusStep(_Step):
    do: Literal["status"]
    device: str = Field(min_length=1, max_length=80)
    online: bool
    # Offline by losing the connection (the broker publishes the will), not by saying so.
    lost: bool = False


class PauseStep(_Step):
    do: Literal["pause"]
    seconds: float = Field(gt=0, le=3600)


class AnnounceStep(_Step):
    do: Literal["announce"]
    text: str | None = Field(default=None, max_length=500)
    wait: bool = True
    within_s: float = Field(default=30.0, gt=0, le=3600)


class AckStep(_Step):
    do: Literal["ack"]


class ResolveStep(_Step):
    do: Literal["resolve"]
    outcome: Outcome
    note: str = Field(default="", max_length=500)


class RespondStep(_Step):
    do: Literal["respond"]
    responder: Ident
    action: Literal["accept", "depart", "arrive", "finish", "decline"]
    level: int | None = Field(default=None, ge=0)
    note: str = Field(default="", max_length=2000)
    within_s: float = Field(default=30.0, gt=0, le=3600)


class _Expectation(_Step):
    within_s: float = Field(default=15.0, gt=0, le=3600)


class ExpectAlarm(_Expectation):
    do: Literal["expect_alarm"]
    severity: Severity | None = None
    state: AlarmState | None = None
    min_escalation_level: int | None = Field(default=None, ge=0)
    min_events: int | None = Field(default=None, ge=1)
    min_intrusions: int | None = Field(default=None, ge=1)
    outcome: Outcome | None = None
    announced: bool | None = None


class ExpectSite(_Expectation):
    do: Literal["expect_site"]
    risk: RiskColour


class ExpectDevice(_Expectation):
    do: Literal["expect_device"]
    device: str = Field(min_length=1, max_length=80)
    online: bool


class ExpectEvents(_Expectation):
    do: Literal["expect_events"]
    min: int = Field(ge=1)


class ExpectDispatch(_Expectation):
    do: Literal["expect_dispatch"]
    responder: Ident
    state: DispatchState
    level: int | None = Field(default=None, ge=0)


class ExpectTimeline(_Expectation):
    do: Literal["expect_timeline"]
    entries: list[str] = Field(min_length=1)


Step = Annotated[
    FenceStep
    | CameraStep
    | StatusStep
    | PauseStep
    | AnnounceStep
    | AckStep
    | ResolveStep
    | ExpectAlarm
    | ExpectSite
    | ExpectDevice
    | ExpectEvents
    | RespondStep
    | ExpectDispatch
    | ExpectTimeline,
    Field(discriminator="do"),
]
Expectation = (
    ExpectAlarm | ExpectSite | ExpectDevice | ExpectEvents | ExpectDispatch | ExpectTimeline
)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    site: Ident | None = None
    zone: Ident | None = None
    steps: list[Step] = Field(min_length=1)


def scenario_path(name_or_path: str) -> Path:
    """A path as given, or a name of ``simulators/scenarios/`` (with or without ``.toml``)."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return path
    return SCENARIOS_DIR / f"{name_or_path}.toml"


def load_scenario(name_or_path: str) -> Scenario:
    """The validated scenario; ``ScenarioError`` saying where and why if it is not one."""
    path = scenario_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        known = ", ".join(sorted(p.stem for p in SCENARIOS_DIR.glob("*.toml")))
        raise ScenarioError(f"cannot read {path}: {exc.strerror} (known: {known})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ScenarioError(f"{path} is not a valid scenario:\n{problems}") from exc


# --- playing -------------------------------------------------------------------------


@dataclass
class Check:
    """One expectation's result."""

    step: int
    what: str
    passed: bool
    seconds: float
    detail: str = ""


@dataclass
class Result:
    scenario: str
    site: str
    zone: str
    checks: list[Check] = field(default_factory=list)
    sent: int = 0
    run_s: float = 0.0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "site": self.site,
            "zone": self.zone,
            "passed": self.passed,
            "sent": self.sent,
            "run_s": round(self.run_s, 1),
            "checks": [check.__dict__ for check in self.checks],
        }


class HubClient:
    """The duty officer's view: the hub's REST API with an acting login."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    @classmethod
    async def login(cls, http: httpx.AsyncClient, info: StackInfo) -> HubClient:
        login = info.acting_login()
        try:
            session = await HubSession.login_async(http, login.username, login.password)
        except HubSessionError as exc:
            raise SimulatorError(str(exc)) from None
        # Renews the minutes-long access token on a 401: scenarios may run longer.
        http.auth = session
        return cls(http)

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.http.post(path, json=body)
        if response.status_code >= 400:
            raise SimulatorError(f"POST {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    async def config(self) -> Config:
        """Sites, zones and devices as the hub knows them, in the configuration's shape."""
        sites = [
            {
                "id": s["id"],
                "name": s["name"],
                "grid": s["grid"],
                "zones": [{"id": z["id"], "name": z["name"]} for z in s["zones"]],
            }
            for s in await self.get("/api/sites")
        ]
        devices = []
        for d in await self.get("/api/devices"):
            device = {"id": d["id"], "site": d["site"], "type": d["type"], "zones": d["zones"]}
            device["source"] = d.get("source") or "generic"
            if d["type"] == "speaker":
                device["driver"] = "mqtt"  # not ours to drive; the model wants one
            devices.append(device)
        return Config.model_validate({"sites": sites, "devices": devices})


def resolve(candidates: list[Device], site: str, name: str, zone: str) -> list[Device]:
    """The devices a step's ``device`` names: an id, ``fence``/``camera`` (the first
    covering ``zone``) or ``fence:all``/``camera:all``."""
    kind, _, every = name.partition(":")
    if kind in ("fence", "camera"):
        of_kind = [d for d in candidates if d.type == kind]
        found = of_kind if every == "all" else [d for d in of_kind if zone in d.zones][:1]
        if not found:
            raise ScenarioError(f"no generic {kind} covers {site}/{zone}")
        return found
    found = [d for d in candidates if d.id == name]
    if not found:
        raise ScenarioError(f"{name} is not a generic fence or camera of {site}")
    return found


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Player:
    """Plays one scenario against a running stack."""

    def __init__(
        self,
        scenario: Scenario,
        info: StackInfo,
        speed: float = 1.0,
        say: Callable[[str], None] = _stderr,
    ) -> None:
        self.scenario = scenario
        self.info = info
        self.speed = speed
        self.say = say
        self.sent_ids: dict[str, list[str]] = {}  # zone -> event ids "<device>:<seq>"

    async def play(self) -> Result:
        if not any(isinstance(step, RespondStep) for step in self.scenario.steps):
            return await self._play(None)
        if self.info.data_dir is None:
            raise ScenarioError("the stack info names no data directory: no demo webhook")
        async with receiving(Webhook.of_stack(Path(self.info.data_dir))) as calls:
            return await self._play(calls)

    async def _play(self, calls: CallReceiver | None) -> Result:
        async with httpx.AsyncClient(base_url=self.info.hub_url, timeout=30) as http:
            hub = await HubClient.login(http, self.info)
            config = await hub.config()
            site = config.site(self.scenario.site) if self.scenario.site else config.sites[0]
            zone = self.scenario.zone or site.zones[0].id
            if zone not in site.zone_ids:
                raise ScenarioError(f"site {site.id} has no zone {zone}")
            await self._say_unresolved(hub, site.id, zone)
            candidates = [
                d
                for d in config.devices_of(site.id)
                if d.type in ("fence", "camera") and d.source == "generic"
            ]
            # Only the devices the steps name get a connection, under client ids of
            # their own: a fleet running on the same stack keeps its connections.
            named = {
                device.id: device
                for step in self.scenario.steps
                if isinstance(step, FenceStep | CameraStep | StatusStep | ExpectDevice)
                for device in resolve(candidates, site.id, step.device, step.zone or zone)
            }
            fleet = Fleet(
                self.info.broker,
                subset(config, [site], list(named.values())),
                FleetOptions(
                    heartbeat_s=HEARTBEAT_S, progress=lambda line: None, client_prefix="scenario"
                ),
            )
            result = Result(self.scenario.name, site.id, zone)
            started = time.monotonic()
            await fleet.connect()
            heartbeats = asyncio.create_task(fleet.heartbeats(), name="sim.run.heartbeats")
            try:
                run = _Run(self, hub, fleet, site.id, zone, result, started, candidates, calls)
                for index, step in enumerate(self.scenario.steps, 1):
                    try:
                        await run.step(index, step)
                    except SimulatorError as exc:
                        # A step that cannot act (no alarm to announce on, a refused
                        # request) fails the scenario; the steps after it would not mean much.
                        elapsed = time.monotonic() - started
                        result.checks.append(Check(index, step.do, False, elapsed, str(exc)))
                        self.say(f"FAIL step {index}: {step.do}: {exc}; scenario stopped")
                        break
            finally:
                heartbeats.cancel()
                await fleet.close()
            # Device reports; the statuses of connecting and leaving are not the scenario's.
            result.sent = sum(n for k, n in fleet.stats.sent.items() if not k.startswith("status"))
            result.run_s = time.monotonic() - started
            return result

    async def _say_unresolved(self, hub: HubClient, site: str, zone: str) -> None:
        """Warn of an alarm already raised in the zone: this scenario's events would join it
        (PROTOCOL 5) and its expectations judge that alarm (the demo swimmer's, say)."""
        for state in ("open", "acknowledged"):
            for alarm in await hub.get("/api/alarms", site=site, state=state, limit=200):
                if alarm.get("zone") == zone:
                    self.say(
                        f"note: {site}/{zone} already has alarm {alarm.get('id')} ({state}); "
                        "this scenario's events will join it and its expectations may not "
                        "hold: resolve it in the console first"
                    )


@dataclass
class _Run:
    player: Player
    hub: HubClient
    fleet: Fleet
    site: str
    zone: str
    result: Result
    started: float
    # The site's generic fences and cameras, in configuration order.
    candidates: list[Device]
    # The hub's calls to responders, where a step acts as one.
    calls: CallReceiver | None = None
    snapshot: bytes | None = None

    async def step(self, index: int, step: Step) -> None:
        if step.at is not None:
            await asyncio.sleep(
                max(0.0, self.started + step.at / self.player.speed - time.monotonic())
            )
        zone = step.zone or self.zone
        match step:
            case FenceStep() | CameraStep():
                await self._burst(step, zone)
            case StatusStep():
                self._status(step, zone)
            case PauseStep():
                await asyncio.sleep(step.seconds / self.player.speed)
            case AnnounceStep():
                await self._announce(step, zone)
            case AckStep():
                alarm = await self._alarm_or_fail(zone)
                await self.hub.post(f"/api/alarms/{alarm['id']}/ack")
            case ResolveStep():
                alarm = await self._alarm_or_fail(zone)
                body = {"outcome": step.outcome, "note": step.note or self.player.scenario.name}
                await self.hub.post(f"/api/alarms/{alarm['id']}/resolve", body)
            case RespondStep():
                await self._respond(step, zone)
            case (
                ExpectAlarm()
                | ExpectSite()
                | ExpectDevice()
                | ExpectEvents()
                | ExpectDispatch()
                | ExpectTimeline()
            ):
                check = await self._expect(index, step, zone)
                self.result.checks.append(check)
                mark = "PASS" if check.passed else "FAIL"
                self.player.say(
                    f"{mark} step {index}: {check.what} ({check.seconds:.1f}s) {check.detail}"
                )
        log.debug("scenario step done", step=index, do=step.do)

    # --- devices -----------------------------------------------------------------------

    def _devices(self, name: str, zone: str) -> list[FieldDevice]:
        return [self.fleet.by_id[d.id] for d in resolve(self.candidates, self.site, name, zone)]

    async def _burst(self, step: FenceStep | CameraStep, zone: str) -> None:
        devices = self._devices(step.device, zone)
        gap = step.over_s / self.player.speed / step.count
        first = time.monotonic()
        for n in range(step.count):
            device = devices[n % len(devices)]
            in_zone = zone if zone in device.device.zones else device.zone
            seq = device.next_seq()
            if isinstance(step, FenceStep):
                payload = fence_report(seq, in_zone, step.state)
            else:
                payload = camera_report(
                    seq,
                    in_zone,
                    rule=step.rule,
                    confidence=step.confidence,
                    snapshot=await self._snapshot() if step.snapshot else None,
                )
                payload["object"] = step.object
            device.report(payload, step.do)
            self.player.sent_ids.setdefault(in_zone, []).append(f"{device.device.id}:{seq}")
            if gap:
                await asyncio.sleep(max(0.0, first + (n + 1) * gap - time.monotonic()))
            elif n % 100 == 99:
                await asyncio.sleep(0)  # let the connections write

    async def _snapshot(self) -> bytes:
        if self.snapshot is None:
            # ffmpeg renders a night riverbank once per run; blocking, so in a thread.
            self.snapshot = await asyncio.to_thread(render_snapshot, "scenario")
        return self.snapshot

    def _status(self, step: StatusStep, zone: str) -> None:
        [device] = self._devices(step.device, zone)[:1]
        assert device.link is not None
        if step.online:
            if device.link.up:
                device.send_status("status_online")
            else:
                device.link.come_back()
        elif step.lost:
            device.link.drop(back_after_s=None)
        else:
            device.link.publish(
                device.status_topic, device.status(online=False), "status_offline", retain=True
            )

    # --- the officer ----------------------------------------------------------------------

    async def _alarm(self, zone: str) -> dict[str, Any] | None:
        """The newest alarm of the site and zone holding one of this scenario's events there."""
        ours = self.player.sent_ids.get(zone, [])
        if not ours:
            return None
        prefixes = tuple(ours)
        alarms = await self.hub.get("/api/alarms", site=self.site, limit=200)
        for alarm in alarms:
            if alarm["zone"] == zone and any(
                event_id == p or event_id.startswith(p + ":")
                for event_id in alarm["event_ids"]
                for p in prefixes
            ):
                found: dict[str, Any] = alarm
                return found
        return None

    async def _alarm_or_fail(self, zone: str, within_s: float = 15.0) -> dict[str, Any]:
        if not self.player.sent_ids.get(zone):
            raise ScenarioError(f"nothing sent in {self.site}/{zone} yet: no alarm to act on")
        deadline = time.monotonic() + within_s
        while True:
            alarm = await self._alarm(zone)
            if alarm is not None:
                return alarm
            if time.monotonic() > deadline:
                raise ScenarioError(f"no alarm of this scenario in {self.site}/{zone}")
            await asyncio.sleep(POLL_S)

    async def _announce(self, step: AnnounceStep, zone: str) -> None:
        alarm = await self._alarm_or_fail(zone)
        body: dict[str, Any] = {"alarm_id": alarm["id"], "reason": self.player.scenario.name}
        if step.text:
            body.update(text=step.text, voice="cmn")
        announcement = await self.hub.post("/api/announcements", body)
        if not step.wait:
            return
        deadline = time.monotonic() + step.within_s
        while time.monotonic() < deadline:
            current = await self.hub.get(f"/api/announcements/{announcement['id']}")
            states = set(current["speakers"].values())
            if states and states <= {"done", "failed", "expired"}:
                self.player.say(f"announcement {announcement['id']}: {current['speakers']}")
                if states != {"done"}:
                    raise ScenarioError(
                        f"announcement {announcement['id']} not played: {current['speakers']}"
                    )
                return
            await asyncio.sleep(POLL_S)
        raise ScenarioError(f"announcement {announcement['id']} not played within {step.within_s}s")

    # --- a responder ---------------------------------------------------------------------

    async def _respond(self, step: RespondStep, zone: str) -> None:
        if self.calls is None:
            raise ScenarioError("no demo webhook receives the hub's calls")
        alarm = await self._alarm_or_fail(zone)
        call = await self.calls.call_for(step.responder, alarm["id"], step.within_s, step.level)
        token = token_of(call)
        # The phone has no login: the link's token is all it holds (PROTOCOL 7.35).
        async with httpx.AsyncClient(base_url=self.player.info.hub_url, timeout=30) as phone:
            answer = await phone.post(
                f"/api/respond/{token}/{step.action}", json={"note": step.note}
            )
        if answer.status_code != 200:
            raise ScenarioError(
                f"{step.responder} {step.action}: {answer.status_code} {answer.text[:300]}"
            )
        self.player.say(f"{step.responder} {step.action}: {answer.json().get('state')}")

    # --- expectations ---------------------------------------------------------------------

    async def _expect(self, index: int, step: Expectation, zone: str) -> Check:
        what, probe = self._probe(step, zone)
        began = time.monotonic()
        deadline = began + step.within_s
        detail = ""
        while True:
            passed, detail = await probe()
            if passed or time.monotonic() >= deadline:
                return Check(index, what, passed, time.monotonic() - began, detail)
            await asyncio.sleep(POLL_S)

    def _probe(
        self, step: Expectation, zone: str
    ) -> tuple[str, Callable[[], Awaitable[tuple[bool, str]]]]:
        match step:
            case ExpectAlarm():
                return f"alarm in {self.site}/{zone}", lambda: self._alarm_matches(step, zone)
            case ExpectSite():
                return f"site {self.site} risk {step.risk}", lambda: self._site_matches(step)
            case ExpectDevice():
                [device] = self._devices(step.device, zone)[:1]
                return (
                    f"device {device.device.id} online={step.online}",
                    lambda: self._device_matches(device.device.id, step.online),
                )
            case ExpectEvents():
                return f"at least {step.min} events stored", lambda: self._events_stored(step.min)
            case ExpectDispatch():
                return (
                    f"dispatch of {step.responder} {step.state}",
                    lambda: self._dispatch_matches(step, zone),
                )
            case ExpectTimeline():
                return "timeline " + " > ".join(step.entries), lambda: self._timeline_has(
                    step.entries, zone
                )

    async def _alarm_matches(self, step: ExpectAlarm, zone: str) -> tuple[bool, str]:
        alarm = await self._alarm(zone)
        if alarm is None:
            return False, "no alarm holds this scenario's events"
        wrong = []
        if step.severity and SEVERITIES.index(alarm["severity"]) < SEVERITIES.index(step.severity):
            wrong.append(f"severity {alarm['severity']} < {step.severity}")
        if step.state and alarm["state"] != step.state:
            wrong.append(f"state {alarm['state']}")
        level = alarm.get("escalation_level", 0)
        if step.min_escalation_level is not None and level < step.min_escalation_level:
            wrong.append(f"escalation level {level}")
        if step.min_events and alarm["event_count"] < step.min_events:
            wrong.append(f"{alarm['event_count']} events")
        intrusions = alarm.get("intrusion_count", 0)
        if step.min_intrusions and intrusions < step.min_intrusions:
            wrong.append(f"{intrusions} intrusions")
        if step.outcome and alarm.get("outcome") != step.outcome:
            wrong.append(f"outcome {alarm.get('outcome')}")
        if step.announced is not None and bool(alarm["announcements"]) != step.announced:
            wrong.append(f"announcements {alarm['announcements']}")
        summary = (
            f"{alarm['id']} {alarm['state']} {alarm['severity']} level {level} "
            f"{alarm['event_count']} events, {alarm.get('intrusion_count', 0)} intrusions"
        )
        return not wrong, summary + ("; " + ", ".join(wrong) if wrong else "")

    async def _dispatch_matches(self, step: ExpectDispatch, zone: str) -> tuple[bool, str]:
        alarm = await self._alarm(zone)
        if alarm is None:
            return False, "no alarm holds this scenario's events"
        dispatches = await self.hub.get(f"/api/alarms/{alarm['id']}/dispatches")
        seen = [f"{d['responder']} {d['state']} at level {d['level']}" for d in dispatches]
        passed = any(
            d["responder"] == step.responder
            and d["state"] == step.state
            and (step.level is None or d["level"] == step.level)
            for d in dispatches
        )
        return passed, f"{alarm['id']}: " + (", ".join(seen) or "no dispatches")

    async def _timeline_has(self, wanted: list[str], zone: str) -> tuple[bool, str]:
        alarm = await self._alarm(zone)
        if alarm is None:
            return False, "no alarm holds this scenario's events"
        timeline = await self.hub.get(f"/api/alarms/{alarm['id']}/timeline")
        entries = [_entry_name(entry) for entry in timeline["entries"]]
        # In order, others between them allowed: a subsequence of the timeline.
        remaining = iter(entries)
        missing = [name for name in wanted if name not in remaining]
        shown = [name for name in entries if name != "event"]
        return not missing, f"{alarm['id']}: {' > '.join(shown)}" + (
            f"; missing from {missing[0]} on" if missing else ""
        )

    async def _site_matches(self, step: ExpectSite) -> tuple[bool, str]:
        site = next(s for s in await self.hub.get("/api/sites") if s["id"] == self.site)
        return site["risk"] == step.risk, f"risk {site['risk']}"

    async def _device_matches(self, device_id: str, online: bool) -> tuple[bool, str]:
        devices = await self.hub.get("/api/devices")
        device = next(d for d in devices if d["id"] == device_id)
        return device["online"] is online, f"online {device['online']}"

    async def _events_stored(self, minimum: int) -> tuple[bool, str]:
        ours = {event_id for ids in self.player.sent_ids.values() for event_id in ids}
        stored = 0
        offset = 0
        while True:
            page = await self.hub.get("/api/events", site=self.site, limit=10_000, offset=offset)
            # The edge's key tag and a restarted device's boot suffix set aside (7.10).
            stored += sum(1 for e in page if device_seq_id(e["id"]) in ours)
            if len(page) < 10_000 or stored >= minimum:
                break
            offset += len(page)
        return stored >= minimum, f"{stored} of {len(ours)} stored"


def _entry_name(entry: dict[str, Any]) -> str:
    """A timeline entry as an ``expect_timeline`` names it."""
    data = entry.get("data") or {}
    if entry["type"] == "escalate":
        return f"escalate:{data.get('escalation_level')}"
    if entry["type"] == "dispatch":
        return f"dispatch:{data.get('responder')}:{data.get('state')}"
    return str(entry["type"])
