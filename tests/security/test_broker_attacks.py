"""Each broker-side attack on the alerting path, tried on a real Mosquitto with the
production access lists: every one is refused with reason 0x87 (MQTT 5 "not
authorised") and reaches nobody."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from riverguard.broker_acl import HUB_CLIENT_ID, device_username, edge_field_client_id
from riverguard.mqtt import make_client
from riverguard.mqtt_client import Client, MqttError, Subscription
from riverguard.testing import fence_report
from riverguard.wire import topics
from tests.conftest import Broker
from tests.security.support import refused_publish

pytestmark = pytest.mark.integration

SITE = "danshui-bridge"
OTHER_SITE = "xiyong-wharf"
FENCE = "db-fence-01"
OTHER_FENCE = "db-fence-02"
CAMERA = "db-cam-01"
SPEAKER = "db-spk-01"


def forged_event(event_id: str = f"{CAMERA}:9001", site: str = SITE) -> dict[str, object]:
    return {
        "id": event_id,
        "site": site,
        "device": CAMERA,
        "kind": "camera.water_entry",
        "zone": "z1",
        "ts": "2026-07-27T21:21:05.123Z",
        "edge_ts": "2026-07-27T21:21:05.131Z",
        "severity": "critical",
        "confidence": 0.99,
        "object": "person",
        "snapshot": False,
        "attrs": {},
    }


@asynccontextmanager
async def inbox(broker: Broker, login: str, *filters: str) -> AsyncIterator[Client]:
    async with make_client(broker.settings(login)) as client:
        await client.subscribe([Subscription(f) for f in filters])
        yield client


async def topics_until_marker(client: Client, marker_topic: str) -> list[str]:
    """Every topic received up to the marker a legitimate publisher sent last."""
    seen: list[str] = []
    async with asyncio.timeout(10):
        while marker_topic not in seen:
            seen += [m.topic for m in await client.next_batch(100)]
    return seen


async def attempts(broker: Broker, login: str, *messages: tuple[str, bytes]) -> list[bool]:
    """Publish each message at QoS 1 with ``login``; True for each the broker refused."""
    async with make_client(broker.settings(login)) as client:
        return [await refused_publish(client, topic, payload) for topic, payload in messages]


async def test_forged_alarm_on_the_events_topic_by_a_sim_or_device_login(
    own_broker: Broker,
) -> None:
    """A critical camera.water_entry straight on riverguard/v1/…/events, alone and as a
    one-element batch, by the sim login and by a device's own login: refused; the hub's
    subscription gets only the edge's real event sent afterwards."""
    events, batch = topics.events(SITE), topics.event_batch(SITE)
    alone = json.dumps(forged_event()).encode()
    in_batch = json.dumps([forged_event(f"{CAMERA}:9002")]).encode()
    async with inbox(own_broker, "hub", events, batch) as hub:
        for login in ("sim", device_username(CAMERA), device_username(FENCE), "observer"):
            assert [True, True] == await attempts(
                own_broker, login, (events, alone), (batch, in_batch)
            ), login
        real = json.dumps(forged_event(f"{FENCE}:1")).encode()
        assert [False] == await attempts(own_broker, f"edge-{SITE}", (events, real))
        assert [events] == await topics_until_marker(hub, events)


async def test_an_edge_login_cannot_publish_for_another_site(own_broker: Broker) -> None:
    other = OTHER_SITE
    forged = json.dumps(forged_event(site=other)).encode()
    refused = await attempts(
        own_broker,
        f"edge-{SITE}",
        (topics.events(other), forged),
        (topics.event_batch(other), b"[" + forged + b"]"),
        (topics.edge_status(other), b'{"online": false, "state": "stopped"}'),
        (topics.device_status(other, "xy-fence-01"), b'{"online": false}'),
        (topics.speaker_ack(other, "xy-spk-01"), b'{"id": "ann-1", "state": "done"}'),
        (topics.speaker_play(other, "xy-spk-01"), b'{"id": "x", "url": "http://evil/"}'),
        (topics.committed(SITE), b'{"ids": []}'),
        (topics.announce(SITE, SPEAKER), b"{}"),
    )
    assert [True] * 8 == refused
    # Its own site's topics are its to write.
    assert [False] == await attempts(
        own_broker, f"edge-{SITE}", (topics.edge_status(SITE), b'{"online": true}')
    )


async def test_forged_fence_clear_on_another_devices_field_topic(own_broker: Broker) -> None:
    """The fence's seq is no secret; its topic is: another device's login (or a camera's)
    cannot publish a `clear` on it, and the edge's subscription never sees one."""
    target = topics.field_report(SITE, "fence", FENCE)
    clear = json.dumps(fence_report(50001, "z1", "clear")).encode()
    async with inbox(own_broker, f"edge-{SITE}", topics.field_site_filter(SITE)) as edge:
        for login in (OTHER_FENCE, CAMERA, SPEAKER, "xy-fence-01"):
            assert [True] == await attempts(own_broker, device_username(login), (target, clear))
        # The fence itself may.
        breach = json.dumps(fence_report(50001, "z1")).encode()
        assert [False] == await attempts(own_broker, device_username(FENCE), (target, breach))
        assert [target] == await topics_until_marker(edge, target)


async def test_announce_play_stop_and_done_forged_by_device_logins(own_broker: Broker) -> None:
    """An attacker's URL on …/announce or field/…/play, a stop, a `done` over a real
    `failed`: refused for every device login, the speaker's own included; the sim login
    cannot drive a speaker either."""
    announce = json.dumps(
        {
            "id": "ann-evil",
            "audio": {"url": "http://evil.example/x.wav", "sha256": "0" * 64, "format": "wav"},
            "repeat": 10,
            "volume": 100,
            "priority": 10,
        }
    ).encode()
    play = json.dumps({"id": "ann-evil", "url": "http://evil.example/x.wav"}).encode()
    forged: list[tuple[str, bytes]] = [
        (topics.announce(SITE, SPEAKER), announce),
        (topics.stop(SITE, SPEAKER), b'{"id": "ann-real"}'),
        (topics.speaker_play(SITE, SPEAKER), play),
        (topics.speaker_stop(SITE, SPEAKER), b'{"id": "ann-real"}'),
        (topics.speaker_ack(SITE, SPEAKER), b'{"id": "ann-real", "state": "done"}'),
    ]
    for login in (FENCE, CAMERA, SPEAKER, "xy-spk-01"):
        assert [True] * 5 == await attempts(own_broker, device_username(login), *forged), login
    other_speaker_state = (topics.speaker_state(SITE, SPEAKER), b'{"id": "a", "state": "done"}')
    assert [True] == await attempts(own_broker, device_username("xy-spk-01"), other_speaker_state)
    assert [True] * 5 == await attempts(own_broker, "sim", *forged)
    # The speaker answers on its own state topic, and reads only its own play and stop.
    assert [False] == await attempts(own_broker, device_username(SPEAKER), other_speaker_state)
    async with make_client(own_broker.device(SPEAKER)) as speaker:
        with pytest.raises(MqttError, match="0x87"):
            await speaker.subscribe([Subscription(topics.speaker_play(OTHER_SITE, "xy-spk-01"))])


async def test_the_hubs_session_cannot_be_taken_over(own_broker: Broker) -> None:
    """`riverguard-hub` is the hub's: any other login using that client id is refused at
    CONNECT, the hub stays connected and still receives the next breach."""
    events = topics.events(SITE)
    async with make_client(own_broker.settings("hub"), HUB_CLIENT_ID, persistent=True) as hub:
        await hub.subscribe([Subscription(events)])
        for login in ("sim", "observer", f"edge-{SITE}", device_username(FENCE)):
            with pytest.raises(MqttError, match="0x87"):
                async with make_client(own_broker.settings(login), HUB_CLIENT_ID):
                    pass
        # An edge's (both its sessions) and a device's client ids are bound the same way.
        for edge_session in (f"edge-{SITE}", edge_field_client_id(SITE)):
            with pytest.raises(MqttError, match="0x87"):
                async with make_client(own_broker.settings("sim"), edge_session):
                    pass
        with pytest.raises(MqttError, match="0x87"):
            async with make_client(own_broker.settings("sim"), device_username(FENCE)):
                pass
        breach = json.dumps(forged_event(f"{FENCE}:7")).encode()
        assert [False] == await attempts(own_broker, f"edge-{SITE}", (events, breach))
        assert [events] == await topics_until_marker(hub, events)
        assert hub.connected


async def test_forged_committed_cannot_empty_an_edges_outbox(own_broker: Broker) -> None:
    committed = topics.committed(SITE)
    forged = json.dumps({"ids": [f"{FENCE}:50001"]}).encode()
    async with inbox(own_broker, f"edge-{SITE}", committed) as edge:
        for login in ("sim", "observer", f"edge-{SITE}", f"edge-{OTHER_SITE}"):
            assert [True] == await attempts(own_broker, login, (committed, forged)), login
        assert [True] == await attempts(own_broker, device_username(FENCE), (committed, forged))
        real = json.dumps({"ids": []}).encode()
        assert [False] == await attempts(own_broker, "hub", (committed, real))
        assert [committed] == await topics_until_marker(edge, committed)


async def test_spoofed_retained_statuses_of_devices_edges_and_the_hub(own_broker: Broker) -> None:
    offline = b'{"online": false}'
    stopped = b'{"online": false, "state": "stopped"}'
    spoofs = {
        device_username(FENCE): [
            (topics.field_status(SITE, "camera", CAMERA), offline),
            (topics.device_status(SITE, CAMERA), offline),
            (topics.edge_status(SITE), stopped),
            (topics.hub_status(), stopped),
        ],
        "sim": [
            (topics.device_status(SITE, CAMERA), offline),
            (topics.edge_status(SITE), stopped),
            (topics.hub_status(), stopped),
        ],
        f"edge-{OTHER_SITE}": [
            (topics.device_status(SITE, CAMERA), offline),
            (topics.edge_status(SITE), stopped),
            (topics.hub_status(), stopped),
        ],
        "observer": [(topics.edge_status(SITE), stopped)],
    }
    for login, messages in spoofs.items():
        async with make_client(own_broker.settings(login)) as client:
            for topic, payload in messages:
                with pytest.raises(MqttError, match="0x87"):
                    await client.publish(topic, payload, qos=1, retain=True)
    # Nothing was retained: a reader coming later finds only the real statuses.
    real = (topics.edge_status(SITE), b'{"online": true, "state": "online"}')
    async with make_client(own_broker.settings(f"edge-{SITE}")) as edge:
        await edge.publish(*real, qos=1, retain=True)
    watched = {t for messages in spoofs.values() for t, _ in messages} - {real[0]}
    # Retained messages come in the order of the filters: the real one last.
    async with inbox(own_broker, "observer", *sorted(watched), real[0]) as view:
        received = await topics_until_marker(view, real[0])
    assert [real[0]] == received


async def test_no_login_reads_everything_or_the_brokers_internals(own_broker: Broker) -> None:
    logins = [name for name in own_broker.server.logins if name != "broker-admin"]
    for login in logins:
        async with make_client(own_broker.settings(login)) as client:
            for topic_filter in ("#", "$SYS/#", "riverguard/#", "+/+/+/+/+", "$CONTROL/#"):
                with pytest.raises(MqttError, match="0x87"):
                    await client.subscribe([Subscription(topic_filter)])
    async with make_client(own_broker.settings("broker-admin")) as admin:
        for topic_filter in ("#", "$SYS/#", "riverguard/#"):
            with pytest.raises(MqttError, match="0x87"):
                await admin.subscribe([Subscription(topic_filter)])
