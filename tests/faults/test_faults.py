"""Each process of the stack killed (SIGKILL) or hung (SIGSTOP, then SIGCONT) mid-stream.

For each of hub, edge, Mosquitto and influxd: a stream of sequenced fence
reports (``RATE`` a second) runs before, during and after the fault; then
every report is classified (``support.tally``) and the figures printed: how
long until the fault was shown, how long until the stack had recovered (every
report stored and in InfluxDB, ``/healthz`` ok). Run with ``-s`` to see them;
docs/reliability.md quotes them.

The hang lasts ``RIVERGUARD_FAULT_HANG_S`` (20 s by default): longer than the
MQTT keepalive (15 s) of the hub and the edges, so a hung broker is noticed
by its clients, as it would be in the field.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from riverguard.stack import Stack
from riverguard.wire.times import utcnow
from tests.faults.support import (
    Fault,
    FenceStream,
    Supervisor,
    Tally,
    alive,
    answers,
    influx_ids,
    signal_pid,
    stored_ids,
    tally,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

RATE = 300.0
HANG_S = float(os.environ.get("RIVERGUARD_FAULT_HANG_S", "20"))
# The stream goes on this long after the fault ended (the SIGKILL, or SIGCONT).
AFTER_S = 1.0
# A case is over when everything sent is stored and in InfluxDB, or when nothing
# more arrived for this long (then the tally says what is missing).
SETTLED_S = 8.0
RECOVERY_TIMEOUT_S = 90.0
EDGE = "edge-load-001"


@dataclass
class Case:
    target: str
    fault: Fault
    tally: Tally
    shown_s: float | None
    recovered_s: float

    def line(self) -> str:
        shown = f"shown after {self.shown_s:.1f} s" if self.shown_s is not None else "not shown"
        return (
            f"{self.fault} {self.target}: {shown}, recovered"
            f" {self.recovered_s:.1f} s after the fault ended; {self.tally.line()}"
        )


def _healthy(stack: Stack) -> bool:
    return answers(f"{stack.hub_url}/healthz", timeout=5) == 200


def _shows(stack: Stack, target: str) -> Callable[[], bool]:
    """Whether the fault of ``target`` is visible from outside the process."""
    health = f"{stack.hub_url}/healthz"
    if target == "hub":
        return lambda: answers(health, timeout=1) is None
    if target in ("mosquitto", "influxd"):
        return lambda: answers(health, timeout=5) != 200
    return lambda: False


def run_case(supervised: Supervisor, target: str, fault: Fault) -> Case:
    stack = supervised.stack
    since = utcnow()
    assert supervised.failure is None, supervised.failure
    wait_until(lambda: _healthy(stack), 60, "healthy before the fault")
    process = stack.components[target].process
    shows = _shows(stack, target)
    shown_s: float | None = None
    with FenceStream(stack, RATE) as stream:
        wait_until(lambda: stream.acked() >= RATE, 20, "a second of reports acknowledged")
        pid = supervised.pid(target)
        fault_at = time.monotonic()
        signal_pid(pid, signal.SIGKILL if fault == "SIGKILL" else signal.SIGSTOP)
        # A SIGKILL ends at once (the supervisor takes over), a hang after HANG_S.
        ended_at = fault_at + (HANG_S if fault == "SIGSTOP" else 0.0)
        hung = fault == "SIGSTOP"
        while time.monotonic() < ended_at + AFTER_S:
            if shown_s is None and shows():
                shown_s = time.monotonic() - fault_at
            if hung and time.monotonic() >= ended_at:
                assert pid == process.pid
                assert process.process is not None
                process.process.send_signal(signal.SIGCONT)  # only while ours and alive
                hung = False
            threading.Event().wait(0.1)
        stream.stop()
        sent = stream.ids()
        supervised.ever_sent |= sent
        wait_until(
            lambda: stream.acked() == len(sent), 60, "every report acknowledged by the broker"
        )
    devices = {i.split(":", 1)[0] for i in sent}
    progress = {"count": -1, "at": time.monotonic()}

    def recovered() -> bool:
        if not _healthy(stack):
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
    recovered_s = progress["at"] - ended_at
    if fault == "SIGSTOP":
        assert supervised.said(f"{target} (pid {pid}) not answering")
        assert supervised.said(f"{target} answers again after")
    if fault == "SIGKILL":
        assert not alive(pid), f"{target} pid {pid} left behind"
        assert pid != process.pid
        assert supervised.said(f"{target} exited (signal SIGKILL)")
    return Case(target, fault, tally(supervised, sent, since), shown_s, recovered_s)


TARGETS = ("hub", EDGE, "mosquitto", "influxd")


@pytest.mark.parametrize("fault", ["SIGKILL", "SIGSTOP"])
@pytest.mark.parametrize("target", TARGETS)
def test_a_fault_loses_no_report_stores_none_twice_and_invents_none(
    supervised: Supervisor, target: str, fault: Fault
) -> None:
    case = run_case(supervised, target, fault)
    print(f"\n{case.line()}")
    result = case.tally
    assert [] == result.twice
    assert [] == result.stray
    assert [] == result.missing
    assert [] == result.not_in_influx
    assert result.sent == result.delivered
