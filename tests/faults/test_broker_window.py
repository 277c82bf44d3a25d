"""The broker's own window: reports it acknowledged and had not yet saved or delivered.

Mosquitto acknowledges a device's QoS 1 report (PUBACK) when it has the report
in memory; the device then forgets it. The report reaches disk only with the
next save of the persistent database (``autosave_interval``,
``autosave_on_changes`` in mosquitto.conf). Killed (SIGKILL) in between, the
broker forgets it too. While the site's edge takes reports as they come, a
report spends milliseconds in the broker; this case makes the window wide
open: the edge is hung (SIGSTOP) so that its reports wait in the broker's
queue for it, the broker is killed five seconds later and restarted by the
supervisor, then the edge goes on (SIGCONT). What the edge never gets is the
broker's window, counted and printed (docs/reliability.md).
"""

from __future__ import annotations

import signal
import threading

import pytest

from tests.faults.support import (
    RATE,
    Injection,
    Supervisor,
    answers,
    run_fault,
    signal_pid,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

EDGE = "edge-load-001"
# How long the edge's reports queue in the broker before the broker is killed.
QUEUED_S = 5.0
# How long the edge stays hung after the kill (the broker is back after ~1 s).
HUNG_AFTER_S = 3.0
# What mosquitto.conf leaves open (docs/reliability.md): reports acknowledged in the
# last pass of the broker's loop before the kill, not yet saved. A pass takes well
# under this at these rates.
WINDOW_S = 0.2


def test_broker_killed_with_reports_queued_loses_at_most_its_window(
    supervised: Supervisor,
) -> None:
    stack = supervised.stack
    edge = stack.components[EDGE].process
    edge_pid = supervised.pid(EDGE)
    broker_pid = supervised.pid("mosquitto")
    lines = len(supervised.lines())

    def begin() -> None:
        signal_pid(edge_pid, signal.SIGSTOP)
        threading.Event().wait(QUEUED_S)
        signal_pid(broker_pid, signal.SIGKILL)

    def end() -> None:
        assert edge_pid == edge.pid
        assert edge.process is not None
        edge.process.send_signal(signal.SIGCONT)

    case = run_fault(
        supervised,
        Injection(
            f"SIGKILL mosquitto with {QUEUED_S:.0f} s of reports queued for a hung edge",
            begin,
            end,
            lasts_s=HUNG_AFTER_S,
            shows=lambda: answers(f"{stack.hub_url}/healthz", timeout=5) != 200,
        ),
    )
    print(f"\n{case.line()}")
    site = EDGE.removeprefix("edge-")
    lost_of_site = [i for i in case.tally.missing if i.startswith(f"{site}-")]
    # Half the fences are the hung edge's: that many reports were queued for it.
    print(
        f"broker window: {len(case.tally.missing)} reports lost"
        f" ({len(lost_of_site)} of the hung edge's site) of ~{RATE / 2 * QUEUED_S:.0f}"
        f" queued in the broker for {QUEUED_S:.0f} s"
    )
    wait_until(lambda: supervised.said("mosquitto restarted", after=lines), 30, "restarted")
    assert [] == case.tally.twice
    assert [] == case.tally.stray
    assert lost_of_site == case.tally.missing  # only reports that waited in the broker
    assert len(case.tally.missing) <= RATE * WINDOW_S
