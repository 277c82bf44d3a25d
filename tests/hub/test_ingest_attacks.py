"""Events a hostile login could publish on an edge's topics, refused as other refusals are:
a reason, a counter, a dead letter and, once parsed, the commit acknowledgement (7.4a)."""

from __future__ import annotations

import json

import aiomqtt

from riverguard.wire import topics
from tests.hub.conftest import SITE, RunningHub, event_payload, mqtt_inbox, unique_seq


async def test_events_a_device_cannot_report_are_refused_and_cannot_take_its_ids(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    """A speaker's breach, a fence's water entry, another device's id, a year-9999 time."""
    seq = unique_seq()
    real_id = f"db-fence-01:{seq}"
    wrong_device = [
        event_payload(unique_seq(), device="db-spk-01"),
        event_payload(unique_seq(), kind="camera.water_entry", severity="critical"),
        # The forged clear that would make the fence's own breach a "duplicate".
        {
            **event_payload(seq, device="db-fence-02", kind="fence.clear", severity="info"),
            "id": real_id,
        },
    ]
    far_future = event_payload(unique_seq(), ts="9999-12-31T23:59:59.999Z")
    real = event_payload(seq)
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        for event in [*wrong_device, far_future]:
            await edge.publish(topics.events(SITE), json.dumps(event).encode(), qos=1)
        # A fence's "picture", to stand in for a camera's.
        await edge.publish(topics.snapshot(SITE, real_id), b"\xff\xd8\xff\xe0forged", qos=1)
        await running_hub.wait_metric("riverguard_hub_rejected_total", 1, 'reason="unknown_device"')
        await edge.publish(topics.events(SITE), json.dumps(real).encode(), qos=1)
        await acks.wait_for(lambda m: real_id in m[1]["ids"])
        acked = {event_id for _, body in acks.items for event_id in body["ids"]}

    assert 3.0 == await running_hub.metric("riverguard_hub_rejected_total", 'reason="wrong_device"')
    assert 1.0 == await running_hub.metric("riverguard_hub_rejected_total", 'reason="invalid"')
    assert 5 == await running_hub.hub.store.events.count_rejected()
    # Dead-lettered, so acknowledged (7.4a), but only under their own devices' ids: the
    # forged clear's acknowledgement would have ended the real breach's resends. The
    # unparsable one has no id to acknowledge.
    assert {e["id"] for e in wrong_device[:2]} <= acked
    assert 1 == sum(1 for _, body in acks.items for event_id in body["ids"] if event_id == real_id)
    assert far_future["id"] not in acked
    # The real breach is new, not a duplicate of the forged clear: it opens an alarm.
    assert 1.0 == await running_hub.metric("riverguard_hub_events_total")
    assert real_id == running_hub.hub.picture.active[(SITE, "z1")].last_event_id
    assert None is await running_hub.hub.store.events.snapshot(real_id)
