"""A device reporting for a zone of its site that it does not cover (edge/normalizer.py).

The attack: a fence's own broker login (or the fence itself, compromised) reports a
breach in another zone, raising that zone's alarm, or a ``clear`` there, marking the
person in that zone gone so that the next breach re-raises an acknowledged alarm
(PROTOCOL 7.36). A real broker, edge and hub; the fence publishes with its own login.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from riverguard.config import Config
from riverguard.services import Influxd
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from tests.conftest import Broker
from tests.edge.support import SITE, edge_settings, publisher, running_edge
from tests.hub.conftest import hub_settings, run_hub

pytestmark = pytest.mark.integration


async def test_a_fence_reporting_another_zone_with_its_own_login_is_refused_at_the_edge(
    own_broker: Broker,
    influxd: Influxd,
    influx_database: str,
    tmp_path: Path,
    example_config: Config,
) -> None:
    agent = EdgeAgent(
        edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path / "edge"), example_config
    )
    settings = hub_settings(tmp_path, own_broker.settings("hub"), influxd.url, influx_database)
    async with (
        run_hub(settings) as hub,
        running_edge(agent),
        publisher(own_broker.device("db-fence-01")) as fence_z1,
        publisher(own_broker.device("db-fence-02")) as fence_z2,
    ):
        z1 = topics.field_report(SITE, "fence", "db-fence-01")
        z2 = topics.field_report(SITE, "fence", "db-fence-02")
        await fence_z2.publish(z2, json.dumps(fence_report(1, "z2", "breach")), qos=1)
        await wait_for(lambda: (SITE, "z2") in hub.hub.picture.active, what="z2's alarm")

        for seq, state in ((1, "breach"), (2, "clear")):
            await fence_z1.publish(z1, json.dumps(fence_report(seq, "z2", state)), qos=1)
        await wait_for(lambda: 2.0 == _rejected(agent, "wrong_zone"), what="both refused")
        # The fence's own zone: heard, under the seq the refused breach did not take.
        await fence_z1.publish(z1, json.dumps(fence_report(1, "z1", "breach")), qos=1)
        await wait_for(lambda: (SITE, "z1") in hub.hub.picture.active, what="z1's alarm")

        z2_alarm = hub.hub.picture.active[(SITE, "z2")]
        z1_alarm = hub.hub.picture.active[(SITE, "z1")]
        hub_refused = await hub.metric("riverguard_hub_rejected_total", 'reason="wrong_zone"')
        stored = await hub.metric("riverguard_hub_events_total")

    assert [("db-fence-02", 1)] == [
        (intrusion.device, intrusion.count) for intrusion in z2_alarm.intrusions
    ]
    assert 1 == len(z2_alarm.event_ids)
    assert [event_id.startswith("db-fence-01:1:k") for event_id in z1_alarm.event_ids] == [True]
    # Never sent: the hub saw neither.
    assert (0.0, 2.0) == (hub_refused, stored)


def _rejected(agent: EdgeAgent, reason: str) -> float | None:
    return agent.metrics.registry.get_sample_value(
        "riverguard_edge_rejected_total", {"reason": reason}
    )
