"""Event ids nobody outside the edge can pre-empt (edge/event_ids.py, edge/dedup.py).

The attack: seqs are readable on ``field/#``; a ``fence.clear`` published on
the hub's event topic as ``db-fence-01:50001`` made the fence's real breach
with seq 50001 a "duplicate", and no alarm opened. A real edge and a real
hub; the attacker's messages go where a login that reaches them would put
them.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.event_ids import KEY_FILE, EventIds
from riverguard.config import Config
from riverguard.services import Influxd
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.times import format_ts, utcnow
from tests.conftest import Broker
from tests.edge.support import SITE, edge_settings, publisher, recording, running_edge
from tests.hub.conftest import hub_settings, run_hub

pytestmark = pytest.mark.integration

FENCE = topics.field_report(SITE, "fence", "db-fence-01")


def _forged_clear(event_id: str) -> bytes:
    now = format_ts(utcnow())
    return json.dumps(
        {
            "id": event_id,
            "site": SITE,
            "device": "db-fence-01",
            "kind": "fence.clear",
            "zone": "z1",
            "ts": now,
            "edge_ts": now,
            "severity": "info",
        }
    ).encode()


async def test_a_forged_event_under_a_guessed_id_does_not_silence_the_real_breach(
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
        publisher(own_broker.settings(f"edge-{SITE}")) as attacker,
        publisher(own_broker.settings("sim")) as fence,
    ):

        async def stored(count: float) -> bool:
            return count == await hub.metric("riverguard_hub_events_total")

        # Every id the attacker can derive from what it reads, published first.
        guesses = ["db-fence-01:50001", "db-fence-01:50001:kaaaaaaaaaaaaaaaa"]
        for guess in guesses:
            await attacker.publish(topics.events(SITE), _forged_clear(guess), qos=1)
        await wait_for(lambda: stored(2.0), what="the forgeries stored")
        await fence.publish(FENCE, json.dumps(fence_report(50001, "z1", "breach")), qos=1)
        await wait_for(lambda: (SITE, "z1") in hub.hub.picture.active, what="the alarm")
        alarm = hub.hub.picture.active[(SITE, "z1")]
        duplicates = await hub.metric("riverguard_hub_duplicates_total")

    [real_id] = [event_id for event_id in alarm.event_ids if event_id not in guesses]
    assert re.fullmatch(r"db-fence-01:50001:k[a-z2-7]{16}", real_id)
    assert 0.0 == duplicates
    # The key is the edge's own: 32 bytes, readable by it alone.
    key = tmp_path / "edge" / KEY_FILE
    assert (32, 0o600) == (len(key.read_bytes()), key.stat().st_mode & 0o777)
    assert real_id == EventIds.load_or_create(tmp_path / "edge").mint("db-fence-01:50001")


async def test_a_forged_report_ahead_of_the_real_one_does_not_make_it_a_duplicate(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    """The same seq and device time as the breach to come, but a ``clear``: on the field
    side, a duplicate is the same report again, not the same seq."""
    events = topics.events(SITE)
    fence = topics.field_report(SITE, "fence", "db-fence-02")
    at = utcnow().replace(microsecond=0) - timedelta(seconds=1)
    forged = json.dumps(fence_report(7001, "z2", "clear", ts=at))
    real = json.dumps(fence_report(7001, "z2", "breach", ts=at))
    agent = EdgeAgent(edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path), example_config)
    async with (
        recording(own_broker.settings("hub"), events) as view,
        running_edge(agent),
        publisher(own_broker.settings("sim")) as attacker,
    ):
        for payload in (forged, real, real):  # the real one delivered twice
            await attacker.publish(fence, payload, qos=1)
        seen = [json.loads(p) for p in await view.wait_count(events, 2)]
        await wait_for(lambda: 1.0 == _rejected(agent, "duplicate"), what="the redelivery")

    assert ["fence.clear", "fence.breach"] == [event["kind"] for event in seen]
    assert seen[0]["id"] != seen[1]["id"]


def _rejected(agent: EdgeAgent, reason: str) -> float | None:
    return agent.metrics.registry.get_sample_value(
        "riverguard_edge_rejected_total", {"reason": reason}
    )
