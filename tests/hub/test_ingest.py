"""Ingest against the real broker, SQLite and influxd: commit, acknowledge, alarm, forward."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import aiomqtt
import httpx
import pytest

from riverguard.config import Config
from riverguard.services import Influxd, free_port
from riverguard.testing import TINY_JPEG, wait_for
from riverguard.wire import topics
from riverguard.wire.models import MAX_EVENT_PAYLOAD_BYTES
from riverguard.wire.times import format_ts, utcnow
from tests.aiomqtt_client import aiomqtt_client
from tests.conftest import Broker, broker_for
from tests.hub.conftest import (
    SITE,
    MakeSettings,
    RunningHub,
    event_payload,
    hub_settings,
    mqtt_inbox,
    run_hub,
    unique_seq,
    ws_inbox,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(both_stores: str | None) -> str | None:
    """These tests run on SQLite and on PostgreSQL."""
    return both_stores


def _ack_ids(items: list[tuple[str, dict[str, list[str]]]]) -> list[tuple[str, list[str]]]:
    return [(topic, payload["ids"]) for topic, payload in items]


async def _influx_ids(running: RunningHub) -> list[str]:
    settings = running.settings
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{settings.influx_url}/query",
            params={"db": settings.influx_database, "q": 'SELECT "id" FROM "events"'},
        )
    series = response.json()["results"][0].get("series", [])
    return [row[1] for row in series[0]["values"]] if series else []


async def test_event_is_committed_acknowledged_alarmed_and_forwarded_once(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    """A published event is acked on `committed`, raises an alarm on the console and is
    in InfluxDB exactly once although the edge published it twice."""
    token = await running_hub.token()
    event = event_payload(unique_seq())
    async with (
        running_hub.socket(token) as ws,
        ws_inbox(ws) as console,
        mqtt_inbox(edge, topics.committed(SITE)) as acks,
    ):
        hello = await console.wait_for(lambda m: m["type"] == "hello")
        assert [] == hello["data"]["alarms"]

        body = json.dumps(event).encode()
        await edge.publish(topics.events(SITE), body, qos=1)
        await acks.wait_for(lambda m: event["id"] in m[1]["ids"])
        alarm = await console.wait_for(lambda m: m["type"] == "alarm")

        await edge.publish(topics.events(SITE), body, qos=1)
        await wait_for(
            lambda: 2 == sum(event["id"] in ids for _, ids in _ack_ids(acks.items)),
            what="second acknowledgement",
        )

    assert "open" == alarm["data"]["state"]
    assert [event["id"]] == alarm["data"]["event_ids"]
    assert alarm["seq"] > hello["seq"]
    await running_hub.wait_metric("riverguard_hub_duplicates_total", 1)
    await running_hub.wait_metric("riverguard_hub_influx_written_total", 1)
    assert [event["id"]] == await _influx_ids(running_hub)
    assert 1.0 == await running_hub.metric("riverguard_hub_events_total")


async def test_bad_messages_are_counted_kept_and_do_not_stop_ingest(
    tmp_path: Path, influxd: Influxd, influx_database: str, example_config: Config
) -> None:
    """Each refusal is counted under its reason and kept as a dead letter; the good event
    published after them is committed. (Own broker: no retained messages of other tests.)
    The broker knows a site the hub does not (a hub behind on its configuration), so that
    an event of an unknown site reaches it."""
    raw = example_config.model_dump()
    raw["sites"].append({**raw["sites"][0], "id": "atlantis"})
    with broker_for(tmp_path / "mosquitto", Config.model_validate(raw)) as broker:
        settings = hub_settings(tmp_path, broker.settings("hub"), influxd.url, influx_database)
        async with (
            run_hub(settings) as running_hub,
            aiomqtt_client(broker.settings(f"edge-{SITE}")) as edge,
            aiomqtt_client(broker.settings("edge-atlantis")) as stranger,
        ):
            await _publish_bad_then_good(running_hub, edge, stranger)


async def _publish_bad_then_good(
    running_hub: RunningHub, edge: aiomqtt.Client, stranger: aiomqtt.Client
) -> None:
    bad = [
        (topics.events(SITE), b"{oops", "malformed_json"),
        (topics.events(SITE), json.dumps(event_payload(1, confidence="high")).encode(), "invalid"),
        (topics.events(SITE), b" " * (MAX_EVENT_PAYLOAD_BYTES + 1), "oversize"),
        (
            topics.events(SITE),
            json.dumps(event_payload(unique_seq(), device="ghost")).encode(),
            "unknown_device",
        ),
        (
            topics.events("atlantis"),
            json.dumps(event_payload(1, site="atlantis")).encode(),
            "unknown_site",
        ),
        (topics.snapshot(SITE, "db-cam-01:1"), b"not a jpeg", "not_jpeg"),
    ]
    good = event_payload(unique_seq())
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        for topic, payload, _ in bad:
            sender = stranger if topic == topics.events("atlantis") else edge
            await sender.publish(topic, payload, qos=1)
        await edge.publish(topics.events(SITE), json.dumps(good).encode(), qos=1)
        await acks.wait_for(lambda m: good["id"] in m[1]["ids"])

    for _, _, reason in bad:
        assert 1.0 == await running_hub.metric(
            "riverguard_hub_rejected_total", f'reason="{reason}"'
        )
    assert 1.0 == await running_hub.metric("riverguard_hub_events_total")
    assert len(bad) == await running_hub.hub.store.events.count_rejected()


async def test_snapshot_is_stored_and_served(running_hub: RunningHub, edge: aiomqtt.Client) -> None:
    event = event_payload(
        unique_seq(), device="db-cam-01", kind="camera.water_entry", snapshot=True
    )
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        await edge.publish(topics.events(SITE), json.dumps(event).encode(), qos=1)
        await edge.publish(topics.snapshot(SITE, event["id"]), TINY_JPEG, qos=1)
        await acks.wait_for(lambda m: event["id"] in m[1]["ids"])
    headers = await running_hub.auth("viewer")

    async def stored() -> bool:
        response = await running_hub.http.get(
            f"/api/events/{event['id']}/snapshot", headers=headers
        )
        return response.status_code == 200

    await wait_for(stored, what="snapshot")
    response = await running_hub.http.get(f"/api/events/{event['id']}/snapshot", headers=headers)
    assert ("image/jpeg", TINY_JPEG) == (response.headers["content-type"], response.content)
    # For an <img> or a link: a signed link, never the token in the URL.
    token = await running_hub.token("viewer")
    by_query = await running_hub.http.get(f"/api/events/{event['id']}/snapshot?token={token}")
    assert 401 == by_query.status_code
    link = await running_hub.http.post(
        "/api/links", headers=headers, json={"path": f"/api/events/{event['id']}/snapshot"}
    )
    by_link = await running_hub.http.get(link.json()["url"])
    assert (200, TINY_JPEG) == (by_link.status_code, by_link.content)
    missing = await running_hub.http.get("/api/events/nope:1/snapshot", headers=headers)
    assert (404, "not_found") == (missing.status_code, missing.json()["error"])


async def test_an_edges_clean_stop_is_kept_apart_from_a_lost_edge_across_a_hub_restart(
    make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    """PROTOCOL 7.10: ``stopped`` (a clean shutdown) is stored as such, not as ``offline``."""
    now = format_ts(utcnow())
    stopped = {"online": False, "state": "stopped", "ts": now, "version": "0.1.0", "outbox": 0}
    async with run_hub(make_settings()) as first:
        token = await first.token("viewer")
        async with first.socket(token) as ws, ws_inbox(ws) as console:
            await console.wait_for(lambda m: m["type"] == "hello")
            await edge.publish(topics.edge_status(SITE), json.dumps(stopped).encode(), qos=1)
            pushed = await console.wait_for(
                lambda m: m["type"] == "edge" and m["data"]["ts"] == now
            )
    # Restarted on the same store; the status was not retained, so only the store has it.
    async with run_hub(make_settings()) as second:
        token = await second.token("viewer")
        async with second.socket(token) as ws, ws_inbox(ws) as console:
            hello = await console.wait_for(lambda m: m["type"] == "hello")

    assert (False, "stopped") == (pushed["data"]["online"], pushed["data"]["state"])
    [kept] = [e for e in hello["data"]["edges"] if e["site"] == SITE]
    assert (False, "stopped", now) == (kept["online"], kept["state"], kept["ts"])


async def test_an_edges_last_will_shows_it_offline_though_composed_before_its_last_status(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    """The will is made when the edge connects and sent when its link dies: older than the
    online statuses the edge sent meanwhile, it still says what is true now."""
    token = await running_hub.token("viewer")
    connected = utcnow() - timedelta(minutes=5)
    now = format_ts(utcnow())
    online = {"online": True, "state": "online", "ts": now, "version": "0.1.0", "outbox": 0}
    will = dict(online, online=False, state="offline", ts=format_ts(connected))
    async with running_hub.socket(token) as ws, ws_inbox(ws) as console:
        await console.wait_for(lambda m: m["type"] == "hello")
        await edge.publish(topics.edge_status(SITE), json.dumps(online).encode(), qos=1)
        await console.wait_for(lambda m: m["type"] == "edge" and m["data"]["ts"] == now)
        await edge.publish(topics.edge_status(SITE), json.dumps(will).encode(), qos=1)
        lost = await console.wait_for(
            lambda m: m["type"] == "edge" and m["data"]["state"] == "offline"
        )
        # Every zone of the site unguarded, the site's risk up a step.
        site = await console.wait_for(
            lambda m: m["type"] == "site" and m["data"]["id"] == SITE and m["data"]["unguarded"]
        )
    assert lost["data"]["online"] is False
    assert lost["data"]["ts"] >= now
    assert ["z1", "z2"] == site["data"]["unguarded"]
    assert "unguarded" in site["data"]["risk_reasons"]


async def test_device_and_edge_statuses_reach_the_console_and_the_device_list(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    token = await running_hub.token("viewer")
    now = format_ts(utcnow())
    async with running_hub.socket(token) as ws, ws_inbox(ws) as console:
        await console.wait_for(lambda m: m["type"] == "hello")
        await edge.publish(
            topics.device_status(SITE, "db-fence-01"),
            json.dumps({"online": True, "ts": now, "battery": 0.5, "rssi": -70}).encode(),
            qos=1,
        )
        await edge.publish(
            topics.edge_status(SITE),
            json.dumps({"online": True, "ts": now, "version": "0.1.0", "outbox": 3}).encode(),
            qos=1,
        )
        # Matched on our timestamp: the shared broker may hold other tests' retained statuses.
        device = await console.wait_for(
            lambda m: m["type"] == "device" and m["data"]["last_seen"] == now
        )
        edge_message = await console.wait_for(
            lambda m: m["type"] == "edge" and m["data"]["ts"] == now
        )
    assert {
        "id": "db-fence-01",
        "site": SITE,
        "type": "fence",
        "source": "generic",
        "source_ref": None,
        "zones": ["z1"],
        "position": [260.0, 330.0],
        "online": True,
        "last_seen": now,
        "battery": 0.5,
        "rssi": -70,
    } == device["data"]
    assert {
        "site": SITE,
        "online": True,
        "state": "online",
        "version": "0.1.0",
        "outbox": 3,
        "ts": now,
    } == edge_message["data"]
    devices = (
        await running_hub.http.get("/api/devices", headers={"Authorization": f"Bearer {token}"})
    ).json()
    assert device["data"] in devices


async def test_influx_outage_leaves_a_backlog_that_drains_when_it_returns(
    tmp_path: Path, broker: Broker, edge: aiomqtt.Client, database_url: str | None
) -> None:
    influx = Influxd(tmp_path / "influxd", free_port())
    influx.start()
    try:
        settings = hub_settings(
            tmp_path, broker.settings("hub"), influx.url, influx.database, database_url=database_url
        )
        async with run_hub(settings) as running:
            influx.stop()
            events = [
                event_payload(unique_seq(), zone="z2", device="db-fence-02") for _ in range(20)
            ]
            async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
                for event in events:
                    await edge.publish(topics.events(SITE), json.dumps(event).encode(), qos=1)
                await wait_for(
                    lambda: (
                        {e["id"] for e in events}
                        <= {i for _, ids in _ack_ids(acks.items) for i in ids}
                    ),
                    what="all acknowledged",
                )
            await running.wait_metric("riverguard_hub_influx_errors_total", 1)
            assert 20.0 == await running.metric("riverguard_hub_influx_backlog")
            health = await running.http.get("/healthz")
            assert (503, False, True) == (
                health.status_code,
                health.json()["influx"],
                health.json()["store"],
            )

            # Started again on the same port and data: the writer's retry finds it.
            await asyncio.to_thread(influx.start)
            await running.wait_metric("riverguard_hub_influx_written_total", 20)
            assert 0.0 == await running.metric("riverguard_hub_influx_backlog")
            assert sorted(e["id"] for e in events) == sorted(await _influx_ids(running))
    finally:
        influx.stop()


async def test_events_sent_while_the_hub_is_down_are_committed_after_restart(
    tmp_path: Path, make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    """The broker keeps the hub's persistent session; the state store keeps the alarms."""
    settings = make_settings()
    first, second = event_payload(unique_seq()), event_payload(unique_seq())
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        async with run_hub(settings) as running:
            await edge.publish(topics.events(SITE), json.dumps(first).encode(), qos=1)
            await acks.wait_for(lambda m: first["id"] in m[1]["ids"])
            alarm_id = next(iter(running.hub.picture.active.values())).id
        await edge.publish(topics.events(SITE), json.dumps(second).encode(), qos=1)
        async with run_hub(settings) as running:
            await acks.wait_for(lambda m: second["id"] in m[1]["ids"])
            alarm = await running.hub.desk.get(alarm_id)
    assert [first["id"], second["id"]] == alarm.event_ids


async def test_messages_arriving_within_the_batch_interval_are_committed_together(
    make_settings: MakeSettings, edge: aiomqtt.Client
) -> None:
    """A batch's fixed cost is paid at most once per ``ingest_min_interval_s``."""
    async with (
        run_hub(make_settings(ingest_min_interval_s=0.5)),
        mqtt_inbox(edge, topics.committed(SITE)) as acks,
    ):
        first = event_payload(unique_seq())
        await edge.publish(topics.events(SITE), json.dumps(first).encode(), qos=1)
        await acks.wait_for(lambda m: first["id"] in m[1]["ids"])
        # Within half a second of the first batch: they wait for, and share, the next.
        trickle = [event_payload(unique_seq()) for _ in range(10)]
        for event in trickle:
            await edge.publish(topics.events(SITE), json.dumps(event).encode(), qos=1)
        await acks.wait_for(lambda m: trickle[-1]["id"] in m[1]["ids"])

    assert [[first["id"]], [e["id"] for e in trickle]] == [ids for _, ids in _ack_ids(acks.items)]
