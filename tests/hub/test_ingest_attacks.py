"""Events a hostile login could publish on an edge's topics, refused as other refusals are:
a reason, a counter, a dead letter and, once parsed, the commit acknowledgement (7.4a)."""

from __future__ import annotations

import json
from typing import Any

import aiomqtt

from hub.clock import ManualClock
from hub.intrusions import REARM_S
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.times import format_ts
from tests.hub.conftest import (
    SITE,
    MakeSettings,
    RunningHub,
    event_payload,
    mqtt_inbox,
    run_hub,
    unique_seq,
)


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


async def _committed(edge: aiomqtt.Client, topic: str, payload: Any, *ids: str) -> None:
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        await edge.publish(topic, json.dumps(payload).encode(), qos=1)
        await wait_for(
            lambda: set(ids) <= {i for _, body in acks.items for i in body["ids"]},
            what="events acknowledged",
        )


async def test_a_fence_can_neither_raise_nor_clear_another_zones_alarm(
    make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    """db-fence-01 covers z1. Its breach in z2 would raise z2's alarm; its clear in z2
    would mark the person there gone, so that z2's next breach re-raises the alarm
    acknowledged. Both are refused in a batch whose good event (its breach in z1) is kept."""
    clock = ManualClock()
    async with run_hub(make_settings(), clock) as running_hub:

        def dated(event: dict[str, Any]) -> dict[str, Any]:
            return {**event, "ts": format_ts(clock.now()), "edge_ts": format_ts(clock.now())}

        first = dated(event_payload(unique_seq(), device="db-fence-02", zone="z2"))
        await _committed(edge, topics.events(SITE), first, first["id"])
        alarm_id = running_hub.hub.picture.active[(SITE, "z2")].id
        officer = await running_hub.auth()
        acked = await running_hub.http.post(f"/api/alarms/{alarm_id}/ack", headers=officer)
        assert 200 == acked.status_code

        clock.advance(5)
        forged_breach = dated(event_payload(unique_seq(), zone="z2"))
        forged_clear = dated(
            event_payload(unique_seq(), zone="z2", kind="fence.clear", severity="info")
        )
        own = dated(event_payload(unique_seq(), zone="z1"))
        batch = [forged_breach, forged_clear, own]
        await _committed(edge, topics.event_batch(SITE), batch, *(e["id"] for e in batch))

        clock.advance(REARM_S)
        second = dated(event_payload(unique_seq(), device="db-fence-02", zone="z2"))
        await _committed(edge, topics.events(SITE), second, second["id"])

        alarm = running_hub.hub.picture.active[(SITE, "z2")]
        assert (alarm_id, "acknowledged", 1) == (alarm.id, alarm.state, alarm.intrusion_count)
        assert [first["id"], second["id"]] == alarm.event_ids
        assert [own["id"]] == running_hub.hub.picture.active[(SITE, "z1")].event_ids
        wrong_zone = 'reason="wrong_zone"'
        assert 2.0 == await running_hub.metric("riverguard_hub_rejected_total", wrong_zone)
        assert 2 == await running_hub.hub.store.events.count_rejected()
        assert 3.0 == await running_hub.metric("riverguard_hub_events_total")
