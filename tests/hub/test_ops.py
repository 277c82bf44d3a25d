"""/metrics names every figure operations watch; /healthz its three dependencies."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from hub.desk import AlarmDesk
from riverguard.testing import wait_for
from riverguard.wire import topics
from tests.hub.conftest import (
    SITE,
    MakeSettings,
    RunningHub,
    event_payload,
    mqtt_inbox,
    run_hub,
    unique_seq,
)

pytestmark = pytest.mark.integration


async def test_metrics_count_events_duplicates_rejections_alarms_clients_and_latencies(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    event = json.dumps(event_payload(unique_seq())).encode()
    token = await running_hub.token("viewer")
    async with running_hub.socket(token), mqtt_inbox(edge, topics.committed(SITE)) as acks:
        for payload in (event, event, b"{not json"):
            await edge.publish(topics.events(SITE), payload, qos=1)
        await acks.wait_for(lambda _: len(acks.items) >= 2)
        await running_hub.wait_metric("riverguard_hub_influx_written_total", 1)
        await running_hub.wait_metric("riverguard_hub_rejected_total", 1, 'reason="malformed_json"')
        figures = {
            name: await running_hub.metric(name, labels)
            for name, labels in (
                ("riverguard_hub_events_total", ""),
                ("riverguard_hub_duplicates_total", ""),
                ("riverguard_hub_alarms", 'state="open"'),
                ("riverguard_hub_influx_backlog", ""),
                ("riverguard_hub_ws_clients", ""),
                ("riverguard_hub_ingest_commit_seconds_count", ""),
                ("riverguard_hub_push_seconds_count", ""),
                ("riverguard_hub_escalations_total", 'cause="timer"'),
                ("riverguard_hub_broker_connected", ""),
            )
        }
    write_count = await running_hub.metric("riverguard_hub_influx_write_seconds_count")

    assert {
        "riverguard_hub_events_total": 1.0,
        "riverguard_hub_duplicates_total": 1.0,
        "riverguard_hub_alarms": 1.0,
        "riverguard_hub_influx_backlog": 0.0,
        "riverguard_hub_ws_clients": 1.0,
        "riverguard_hub_ingest_commit_seconds_count": 1.0,
        "riverguard_hub_push_seconds_count": 1.0,
        "riverguard_hub_escalations_total": 0.0,
        "riverguard_hub_broker_connected": 1.0,
    } == figures
    assert write_count >= 1


async def test_healthz_names_broker_influx_and_store(running_hub: RunningHub) -> None:
    health = await running_hub.http.get("/healthz")
    assert (200, {"status": "ok", "broker": True, "influx": True, "store": True}) == (
        health.status_code,
        health.json(),
    )


async def test_a_dead_essential_task_stops_the_hub_with_a_failure(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that kills a background task must not leave a hub that serves half alive."""

    # Dies once the hub is up: dying at a fixed time could come before the hub had
    # subscribed on a busy machine, and the hub rightly stopped before it was ready.
    up = asyncio.Event()

    async def dies(self: AlarmDesk) -> None:
        await up.wait()
        raise RuntimeError("a bug")

    monkeypatch.setattr(AlarmDesk, "watch_risk", dies)
    async with run_hub(make_settings()) as running:
        up.set()
        await wait_for(lambda: running.server.should_exit, what="the hub to stop itself")
        assert "hub.site-risk" == running.server.failed
