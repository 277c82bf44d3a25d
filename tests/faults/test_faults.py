"""Each process of the stack killed (SIGKILL) or hung (SIGSTOP, then SIGCONT) mid-stream.

For each of hub, edge, Mosquitto and influxd: a stream of sequenced fence
reports (``RATE`` a second) runs before, during and after the fault; then
every report is classified (``support.tally``) and the figures printed: how
long until the fault was shown, how long until the stack had recovered (every
report stored and in InfluxDB, ``/healthz`` ok). Run with ``-s`` to see them;
docs/reliability.md quotes them.

The hang lasts ``RIVERGUARD_FAULT_HANG_S`` (20 s by default): longer than the
MQTT keepalive of the hub (5 s: lost after 7.5 s) and of the edges (15 s), so a
hung broker is noticed by its clients, and longer than three of the console
socket's heartbeats (5 s), so a hung hub is noticed by the console.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.faults.support import (
    Console,
    Fault,
    Injection,
    Supervisor,
    alive,
    console_shows,
    run_fault,
    signal_pid,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(180)]

HANG_S = float(os.environ.get("RIVERGUARD_FAULT_HANG_S", "20"))
SITE = "load-001"
EDGE = f"edge-{SITE}"


def _signal(supervised: Supervisor, console: Console, target: str, fault: Fault) -> Injection:
    component = supervised.stack.components[target]
    process = component.process
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
        shows=console_shows(target, SITE),
        # Killed, it is away until the supervisor has started it again.
        over=(lambda: component.started_at) if fault == "SIGKILL" else None,
    )


# The faults the console shows while they last (at RATE, on this machine's share of CPU).
SHOWN = {
    ("hub", "SIGKILL"),
    ("hub", "SIGSTOP"),
    ("edge-load-001", "SIGKILL"),
    ("mosquitto", "SIGKILL"),
    ("mosquitto", "SIGSTOP"),
    ("influxd", "SIGSTOP"),
}
TARGETS = ("hub", EDGE, "mosquitto", "influxd")


@pytest.mark.parametrize("fault", ["SIGKILL", "SIGSTOP"])
@pytest.mark.parametrize("target", TARGETS)
def test_a_fault_loses_no_report_stores_none_twice_and_invents_none(
    supervised: Supervisor, console: Console, target: str, fault: Fault
) -> None:
    # The supervisor counts silence only from a child that answered since its start.
    component = supervised.stack.components[target]
    wait_until(lambda: component.answered, 60, f"{target} answering the supervisor")
    pid = supervised.pid(target)
    case = run_fault(supervised, _signal(supervised, console, target, fault), console)
    print(f"\n{case.line()}")
    # Where the console must show the fault (docs/reliability.md says where it does not).
    if (target, fault) in SHOWN:
        assert case.shown_s is not None, f"{case.name}: the console stayed calm"
        assert not case.lapsed, f"{case.name}: the console went calm before it was over"
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
