"""The broker's own window: reports it acknowledged and had not yet saved or delivered.

Mosquitto acknowledges a device's QoS 1 report (PUBACK) once it holds the
report in memory; the device then forgets it. The report reaches disk with
the broker's next save of its persistent database (``autosave_interval``,
``autosave_on_changes`` in mosquitto.conf); killed (SIGKILL) before that, the
broker forgets it too. While the site's edge takes reports as they come, a
report spends milliseconds in the broker (the other cases of the suite lose
none). This case opens the window wide: the edge is away (killed, and the
supervisor held back) so that its site's reports wait in the broker's queue
for its session, then the broker is killed, and the supervisor resumes and
restarts both. The reports the edge never gets are the broker's window,
counted and printed (docs/reliability.md).

Kept out of the window on purpose: an edge that is hung (SIGSTOP) but still
connected. The broker has already written up to ``max_inflight_messages``
of its reports into the connection, and whether the edge can read them
after the broker's death depends on how the kernel closes that connection.
"""

from __future__ import annotations

import signal
import threading

import pytest

from tests.faults.support import (
    Injection,
    Supervisor,
    console_shows,
    run_fault,
    signal_pid,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

EDGE = "edge-load-001"
# Reports a second: the console does not watch this case (it would fall behind, see
# support.RATE), so the window can be measured at a rate that fills it.
WINDOW_RATE = 300.0
# How long the edge's reports queue in the broker before the broker is killed.
QUEUED_S = 5.0
# At most this many seconds of reports queued for an absent session may be lost:
# those since the broker's last save. mosquitto.conf says autosave_interval 1, and
# Mosquitto saves when the last save is more than that many whole seconds old:
# every 2 s.
WINDOW_S = 2.0


def test_broker_killed_with_reports_queued_loses_at_most_its_window(
    supervised: Supervisor,
) -> None:
    edge_pid = supervised.pid(EDGE)
    broker_pid = supervised.pid("mosquitto")
    lines = len(supervised.lines())

    def begin() -> None:
        supervised.pause()
        try:
            signal_pid(edge_pid, signal.SIGKILL)
            threading.Event().wait(QUEUED_S)
            signal_pid(broker_pid, signal.SIGKILL)
        finally:
            supervised.resume()

    case = run_fault(
        supervised,
        Injection(
            f"SIGKILL mosquitto with {QUEUED_S:.0f} s of reports queued for an absent edge",
            begin,
            end=lambda: None,
            lasts_s=0.0,
            shows=console_shows("mosquitto", "load-001"),
        ),
        rate=WINDOW_RATE,
    )
    print(f"\n{case.line()}")
    site = EDGE.removeprefix("edge-")
    lost_of_site = [i for i in case.tally.missing if i.startswith(f"{site}-")]
    # Half the fences are the absent edge's: that many reports a second queued for it.
    per_s = WINDOW_RATE / 2
    print(
        f"broker window: {len(case.tally.missing)} reports lost"
        f" ({len(lost_of_site)} of the absent edge's site), {per_s * QUEUED_S:.0f}"
        f" queued for it in {QUEUED_S:.0f} s"
    )
    wait_until(lambda: supervised.said("mosquitto restarted", after=lines), 30, "restarted")
    wait_until(lambda: supervised.said(f"{EDGE} restarted", after=lines), 30, "edge restarted")
    assert [] == case.tally.twice
    assert [] == case.tally.stray
    assert lost_of_site == case.tally.missing  # only reports that waited in the broker
    # A little slack: the save and the kill are not on the same clock tick.
    assert len(case.tally.missing) <= per_s * WINDOW_S * 1.2
