"""Event batches at the real hub (PROTOCOL 7.12): its status, and each element judged alone.

Real broker, hub, SQLite and influxd; the edge is an MQTT client publishing
what an edge would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from hub.ingest import Received
from riverguard.services import Influxd
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.models import EVENT_BATCH, MAX_BATCH_PAYLOAD_BYTES, HubStatus
from tests.aiomqtt_client import aiomqtt_client
from tests.conftest import Broker
from tests.edge.support import recording
from tests.hub.conftest import (
    SITE,
    event_payload,
    hub_settings,
    mqtt_inbox,
    run_hub,
    unique_seq,
    ws_inbox,
)

pytestmark = pytest.mark.integration

BATCH = topics.event_batch(SITE)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


async def test_the_hub_announces_batches_on_connect_and_stopped_on_a_clean_shutdown(
    tmp_path: Path, own_broker: Broker, influxd: Influxd, influx_database: str
) -> None:
    settings = hub_settings(tmp_path, own_broker.settings("hub"), influxd.url, influx_database)
    async with recording(own_broker.settings("observer"), topics.hub_status()) as view:
        async with run_hub(settings):
            [online] = await view.wait_count(topics.hub_status(), 1)
        [_, stopped] = await view.wait_count(topics.hub_status(), 2)
    status = HubStatus.model_validate_json(online)
    assert (True, "online", [EVENT_BATCH]) == (status.online, status.state, status.accepts)
    assert status.takes_event_batches
    status = HubStatus.model_validate_json(stopped)
    assert (False, "stopped") == (status.online, status.state)
    assert not status.takes_event_batches
    # Retained: an edge connecting now is told at once.
    async with recording(own_broker.settings("observer"), topics.hub_status()) as later:
        [retained] = await later.wait_count(topics.hub_status(), 1)
    assert stopped == retained


async def test_a_batch_keeps_its_good_events_and_refuses_each_bad_one_alone(
    tmp_path: Path, own_broker: Broker, influxd: Influxd, influx_database: str
) -> None:
    """Good events stored, pushed and acknowledged; bad elements counted and dead-lettered
    under their own reasons, those that parse acknowledged too (7.4a); the duplicate of a
    stored event acknowledged again, not stored twice."""
    settings = hub_settings(tmp_path, own_broker.settings("hub"), influxd.url, influx_database)
    stored_before = event_payload(unique_seq())
    good = [
        event_payload(unique_seq()),
        event_payload(unique_seq(), device="db-cam-01", kind="camera.intrusion"),
    ]
    ghost = event_payload(unique_seq(), device="ghost-01")
    other_site = event_payload(unique_seq(), site="xiyong-wharf", device="xy-fence-01")
    batch = [
        good[0],
        {"id": "db-fence-01:1", "site": SITE},  # malformed: most fields missing
        event_payload(unique_seq(), confidence="high"),  # a field of the wrong type
        ghost,
        stored_before,
        other_site,
        good[1],
    ]
    async with (
        run_hub(settings) as hub,
        aiomqtt_client(own_broker.settings(f"edge-{SITE}")) as edge,
        hub.socket(await hub.token(), f"&events={SITE}") as ws,
        ws_inbox(ws) as console,
        mqtt_inbox(edge, topics.committed(SITE)) as acks,
    ):
        await edge.publish(topics.events(SITE), _json(stored_before), qos=1)
        await acks.wait_for(lambda m: stored_before["id"] in m[1]["ids"])
        await edge.publish(BATCH, _json(batch), qos=1)
        acked = {good[0]["id"], good[1]["id"], ghost["id"], stored_before["id"], other_site["id"]}
        await acks.wait_for(lambda m: acked <= set(m[1]["ids"]))
        pushed = {e["id"] for e in good}
        await wait_for(
            lambda: pushed <= {m["data"]["id"] for m in console.items if m["type"] == "event"},
            what="the good events pushed",
        )

        store = hub.hub.store
        assert {e["id"] for e in good} | {stored_before["id"]} == await store.events.existing_ids(
            [e["id"] for e in batch if "id" in e]
        )
        assert 3.0 == await hub.metric("riverguard_hub_events_total")
        assert 1.0 == await hub.metric("riverguard_hub_duplicates_total")
        for reason, count in (("invalid", 2), ("unknown_device", 1), ("site_mismatch", 1)):
            assert count == await hub.metric("riverguard_hub_rejected_total", f'reason="{reason}"')
            assert count == await store.events.count_rejected(reason)
        assert 1.0 == await hub.metric("riverguard_hub_messages_total", 'kind="EventBatchIn"')


async def test_a_batch_that_is_not_an_array_or_too_big_is_dead_lettered_and_counted(
    tmp_path: Path, own_broker: Broker, influxd: Influxd, influx_database: str
) -> None:
    settings = hub_settings(tmp_path, own_broker.settings("hub"), influxd.url, influx_database)
    good = event_payload(unique_seq())
    oversize = [event_payload(unique_seq(), attrs={"pad": "x" * 60_000}) for _ in range(9)]
    assert len(_json(oversize)) > MAX_BATCH_PAYLOAD_BYTES
    async with (
        run_hub(settings) as hub,
        aiomqtt_client(own_broker.settings(f"edge-{SITE}")) as edge,
        mqtt_inbox(edge, topics.committed(SITE)) as acks,
    ):
        await edge.publish(BATCH, _json(good), qos=1)  # an object, not an array of one
        await edge.publish(BATCH, _json(oversize), qos=1)
        await edge.publish(BATCH, b"[{", qos=1)
        await edge.publish(BATCH, _json([good]), qos=1)  # same topic: handled after those
        await acks.wait_for(lambda m: good["id"] in m[1]["ids"])

        store = hub.hub.store
        for reason in ("not_array", "oversize", "malformed_json"):
            assert 1.0 == await hub.metric("riverguard_hub_rejected_total", f'reason="{reason}"')
            assert 1 == await store.events.count_rejected(reason)
        assert 1.0 == await hub.metric("riverguard_hub_events_total")
        assert [good["id"]] == [i for _, m in acks.items for i in m["ids"]]


async def test_batches_beyond_the_ingest_batch_size_are_committed_in_several_transactions(
    tmp_path: Path, own_broker: Broker, influxd: Influxd, influx_database: str
) -> None:
    """A group of received messages holding more than ``ingest_batch_max`` events (a backlog
    resent in batches) is committed in pieces, each message's events together."""
    settings = hub_settings(
        tmp_path, own_broker.settings("hub"), influxd.url, influx_database, ingest_batch_max=4
    )
    batches = [[event_payload(unique_seq()) for _ in range(3)] for _ in range(3)]
    async with (
        run_hub(settings) as hub,
        aiomqtt_client(own_broker.settings(f"edge-{SITE}")) as edge,
        mqtt_inbox(edge, topics.committed(SITE)) as acks,
    ):
        # Handed to ingest as one received group, as the broker connection would.
        arrived = time.monotonic()
        await hub.hub.ingest.process([Received(BATCH, _json(b), arrived) for b in batches])
        await wait_for(lambda: 2 == len(acks.items), what="two commit acknowledgements")
        assert 9.0 == await hub.metric("riverguard_hub_events_total")
    expected = {frozenset(e["id"] for e in batches[0] + batches[1])}
    expected.add(frozenset(e["id"] for e in batches[2]))
    assert expected == {frozenset(payload["ids"]) for _, payload in acks.items}
