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
from collections.abc import Callable

import pytest

from riverguard.stack import Stack
from tests.faults.support import (
    Fault,
    Injection,
    Supervisor,
    alive,
    answers,
    run_fault,
    signal_pid,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

HANG_S = float(os.environ.get("RIVERGUARD_FAULT_HANG_S", "20"))
EDGE = "edge-load-001"


def _shows(stack: Stack, target: str) -> Callable[[], bool]:
    """Whether the fault of ``target`` is visible from outside the process."""
    health = f"{stack.hub_url}/healthz"
    if target == "hub":
        return lambda: answers(health, timeout=1) is None
    if target in ("mosquitto", "influxd"):
        return lambda: answers(health, timeout=5) != 200
    return lambda: False


def _signal(supervised: Supervisor, target: str, fault: Fault) -> Injection:
    process = supervised.stack.components[target].process
    pid = supervised.pid(target)

    def begin() -> None:
        signal_pid(pid, signal.SIGKILL if fault == "SIGKILL" else signal.SIGSTOP)

    def end() -> None:
        if fault == "SIGSTOP":
            assert pid == process.pid
            assert process.process is not None
            process.process.send_signal(signal.SIGCONT)  # only while ours and alive

    return Injection(
        f"{fault} {target}",
        begin,
        end,
        lasts_s=HANG_S if fault == "SIGSTOP" else 0.0,
        shows=_shows(supervised.stack, target),
    )


TARGETS = ("hub", EDGE, "mosquitto", "influxd")


@pytest.mark.parametrize("fault", ["SIGKILL", "SIGSTOP"])
@pytest.mark.parametrize("target", TARGETS)
def test_a_fault_loses_no_report_stores_none_twice_and_invents_none(
    supervised: Supervisor, target: str, fault: Fault
) -> None:
    # The supervisor counts silence only from a child that answered since its start.
    component = supervised.stack.components[target]
    wait_until(lambda: component.answered, 60, f"{target} answering the supervisor")
    pid = supervised.pid(target)
    case = run_fault(supervised, _signal(supervised, target, fault))
    print(f"\n{case.line()}")
    if fault == "SIGSTOP":
        assert supervised.said(f"{target} (pid {pid}) not answering")
        assert supervised.said(f"{target} answers again after")
    if fault == "SIGKILL":
        assert not alive(pid), f"{target} pid {pid} left behind"
        assert pid != supervised.pid(target)
        assert supervised.said(f"{target} exited (signal SIGKILL)")
    result = case.tally
    assert [] == result.twice
    assert [] == result.stray
    assert [] == result.missing
    assert [] == result.not_in_influx
    assert result.sent == result.delivered
