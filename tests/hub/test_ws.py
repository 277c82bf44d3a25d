"""The console WebSocket: hello, resume with since, 4008 for a slow client, 4401 for a bad token."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import aiomqtt
import pytest
import websockets

from riverguard.services import Influxd
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.socket_auth import subprotocols
from tests.conftest import Broker
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
from tests.notify.support import config_with_a_grid_officer

pytestmark = pytest.mark.integration


async def _publish_events(edge: aiomqtt.Client, events: list[dict[str, object]]) -> None:
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        for event in events:
            await edge.publish(topics.events(SITE), json.dumps(event).encode(), qos=1)
        wanted = {str(e["id"]) for e in events}
        await wait_for(
            lambda: wanted <= {i for _, body in acks.items for i in body["ids"]},
            timeout=30,
            what="acknowledgements",
        )


async def _read_until_closed(ws: websockets.ClientConnection) -> None:
    while True:
        await ws.recv()


async def test_hello_has_the_current_picture(running_hub: RunningHub) -> None:
    token = await running_hub.token("viewer")
    async with running_hub.socket(token) as ws:
        hello = json.loads(await ws.recv())
    assert "hello" == hello["type"]
    data = hello["data"]
    assert hello["seq"] == data["seq"]
    assert {"username": "viewer", "name": "观察员", "role": "viewer"} == data["user"]
    assert {
        "seq",
        "user",
        "alarms",
        "dispatches",
        "sites",
        "edges",
        "announcements",
        "links",
        "people",
    } == set(data)
    assert {
        "admin": "系统管理员",
        "officer-li": "李值班员",
        "supervisor-wang": "王值班长",
        "viewer": "观察员",
    } == data["people"]
    assert 2 == len(data["sites"])
    # Devices come on demand (GET /api/sites/{id}/devices); the sites carry their counts.
    assert 10 == sum(c["total"] for s in data["sites"] for c in s["devices"].values())


async def test_hello_names_responders_by_the_actor_their_steps_are_audited_as(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    config = config_with_a_grid_officer(tmp_path, "http://127.0.0.1:9/grid")
    async with run_hub(make_settings(config=config)) as running:
        token = await running.token("viewer")
        async with running.socket(token) as ws:
            hello = json.loads(await ws.recv())
    assert "陈网格员" == hello["data"]["people"]["responder:chen"]
    assert "李值班员" == hello["data"]["people"]["officer-li"]


async def test_bad_token_is_closed_with_4401(running_hub: RunningHub) -> None:
    async with running_hub.socket("nonsense") as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert 4401 == closed.value.rcvd.code


@pytest.mark.parametrize("message", ['{"op": "explode"}', "not json", b"\x00binary"])
async def test_a_malformed_client_message_is_closed_with_4400(
    running_hub: RunningHub, message: str | bytes
) -> None:
    token = await running_hub.token("viewer")
    async with running_hub.socket(token) as ws:
        await ws.recv()
        await ws.send(message)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await _read_until_closed(ws)
    assert closed.value.rcvd is not None
    assert 4400 == closed.value.rcvd.code


async def test_reconnect_with_since_gets_what_was_missed_and_old_since_gets_hello(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    token = await running_hub.token("viewer")
    async with running_hub.socket(token) as ws:
        since = json.loads(await ws.recv())["seq"]
    event = event_payload(unique_seq())
    await _publish_events(edge, [event])

    async with running_hub.socket(token, f"&since={since}&events=*") as ws, ws_inbox(ws) as inbox:
        await inbox.wait_for(lambda m: m["type"] == "event")
        first = inbox.items[0]
    assert since + 1 == first["seq"]
    # The edge's message may make it heard (a ``links`` change, PROTOCOL 7.13) first.
    assert "alarm" == next(m for m in inbox.items if m["type"] != "links")["type"]
    assert "hello" not in [m["type"] for m in inbox.items]
    seqs = [m["seq"] for m in inbox.items]
    assert sorted(set(seqs)) == seqs
    assert event == next(m for m in inbox.items if m["type"] == "event")["data"]

    async with running_hub.socket(token, "&since=1") as ws:
        assert "hello" == json.loads(await ws.recv())["type"]


async def test_subscribe_op_enables_event_messages(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    token = await running_hub.token("viewer")
    async with running_hub.socket(token) as ws, ws_inbox(ws) as inbox:
        await inbox.wait_for(lambda m: m["type"] == "hello")
        await ws.send(json.dumps({"op": "subscribe", "events": [SITE]}))
        await ws.send(json.dumps({"op": "ping"}))
        # The ping came after the subscription, so once it is through the hub has it.
        event = event_payload(unique_seq())
        await _publish_events(edge, [event])
        received = await inbox.wait_for(lambda m: m["type"] == "event")
    assert event["id"] == received["data"]["id"]


async def test_a_batch_client_gets_arrays_holding_the_same_messages_as_a_plain_one(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    token = await running_hub.token("viewer")
    events = [event_payload(unique_seq()) for _ in range(50)]
    wanted = {str(e["id"]) for e in events}
    frames: list[object] = []

    def got_all(inbox_items: list[dict[str, object]]) -> bool:
        got = {m["data"]["id"] for m in inbox_items if m["type"] == "event"}  # type: ignore[index]
        return wanted <= got

    async with (
        running_hub.socket(token, "&events=*") as plain,
        ws_inbox(plain) as plain_inbox,
        running_hub.socket(token, "&events=*&batch=1") as batched,
    ):
        hello = json.loads(await batched.recv())
        assert isinstance(hello, list)
        assert ["hello"] == [m["type"] for m in hello]
        await plain_inbox.wait_for(lambda m: m["type"] == "hello")
        await _publish_events(edge, events)
        received: list[dict[str, object]] = []
        while not got_all(received):
            frame = json.loads(await batched.recv())
            frames.append(frame)
            assert isinstance(frame, list)
            received.extend(frame)
        await plain_inbox.wait_for(lambda _: got_all(plain_inbox.items))
    # One frame carried several messages: the point of batching.
    assert any(len(frame) > 1 for frame in frames)  # type: ignore[arg-type]
    seqs = [m["seq"] for m in received]
    assert sorted(set(seqs)) == seqs  # type: ignore[type-var]
    first = seqs[0]
    plain_after = [m for m in plain_inbox.items if m["seq"] >= first]
    assert [m["seq"] for m in plain_after][: len(received)] == seqs
    assert plain_after[: len(received)] == received


async def test_a_batch_client_resuming_with_since_gets_the_missed_messages_in_arrays(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    token = await running_hub.token("viewer")
    async with running_hub.socket(token, "&batch=1") as ws:
        since = json.loads(await ws.recv())[0]["seq"]
    event = event_payload(unique_seq())
    await _publish_events(edge, [event])

    async with running_hub.socket(token, f"&since={since}&events=*&batch=1") as ws:
        replay = json.loads(await ws.recv())
    assert isinstance(replay, list)
    assert since + 1 == replay[0]["seq"]
    assert event in [m["data"] for m in replay if m["type"] == "event"]


async def test_slow_client_is_closed_with_4008_and_a_fast_one_is_not(
    tmp_path: Path, broker: Broker, influxd: Influxd, influx_database: str, edge: aiomqtt.Client
) -> None:
    settings = hub_settings(
        tmp_path,
        broker.settings("hub"),
        influxd.url,
        influx_database,
        ws_queue_size=50,
        # Small batches: pushes come in small bursts a reading client keeps up with.
        ingest_batch_max=5,
    )
    async with run_hub(settings) as running:
        token = await running.token("viewer")
        url = f"ws://127.0.0.1:{settings.http_port}/api/ws?events=*"
        # max_queue=1: the slow client's library stops reading the socket at once; a
        # fixed small receive buffer (no autotuning up to 32 MB) keeps the kernel from
        # absorbing it all, so the hub's queue for this client fills up. No compression:
        # the padding below would shrink to nothing.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.connect(("127.0.0.1", settings.http_port))
        sock.setblocking(False)
        async with (
            websockets.connect(
                url,
                sock=sock,
                max_queue=1,
                max_size=None,
                compression=None,
                subprotocols=subprotocols(token),
            ) as slow,
            running.socket(token, "&events=*") as fast,
            ws_inbox(fast) as fast_inbox,
        ):
            await fast_inbox.wait_for(lambda m: m["type"] == "hello")
            # ~60 KB events: enough of them to fill loopback socket buffers (a few MB).
            events = [
                event_payload(
                    unique_seq(), zone="z2", device="db-fence-02", attrs={"pad": "x" * 60_000}
                )
                for _ in range(200)
            ]
            await _publish_events(edge, events)
            await running.wait_metric("riverguard_hub_ws_slow_closed_total", 1)

            # Reading again, the slow client finds the hub's close frame after the backlog.
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await _read_until_closed(slow)
            await fast_inbox.wait_for(
                lambda m: m["type"] == "event" and m["data"]["id"] == events[-1]["id"]
            )
        assert closed.value.rcvd is not None
        assert 4008 == closed.value.rcvd.code
        assert 1.0 == await running.metric("riverguard_hub_ws_slow_closed_total")


async def test_a_batch_value_that_is_not_a_boolean_is_refused(running_hub: RunningHub) -> None:
    """Refused at the handshake (HTTP 403), before any message: not taken as false."""
    token = await running_hub.token("viewer")
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with running_hub.socket(token, "&batch=maybe"):
            pass
    assert 403 == refused.value.response.status_code


async def test_a_quiet_hub_sends_heartbeats_outside_the_seq_order(
    tmp_path: Path, broker: Broker, influxd: Influxd, influx_database: str
) -> None:
    """Nothing happens in the field, yet every socket hears from the hub each interval."""
    settings = hub_settings(
        tmp_path, broker.settings("hub"), influxd.url, influx_database, ws_heartbeat_s=0.2
    )
    async with run_hub(settings) as running:
        token = await running.token("viewer")
        async with running.socket(token) as single, running.socket(token, "&batch=1") as batch:
            hello = json.loads(await single.recv())
            assert "hello" == hello["type"]
            beats = [json.loads(await single.recv()) for _ in range(3)]
            assert [{"seq": 0, "type": "heartbeat", "data": {"interval_s": 0.2}}] * 3 == beats
            first = json.loads(await batch.recv())
            assert "hello" == first[0]["type"]
            assert [{"seq": 0, "type": "heartbeat", "data": {"interval_s": 0.2}}] == json.loads(
                await batch.recv()
            )
