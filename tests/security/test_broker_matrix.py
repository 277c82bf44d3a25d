"""Every broker identity against every action: publish, subscribe, receive and client-id
takeover, on a real Mosquitto with the production access lists. The expectations come
from the rules (tests/security/support.py), not from the access lists under test."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from riverguard.config import Config
from riverguard.mqtt_client import Client, MqttError, Subscription
from tests.conftest import Broker, broker_for
from tests.security.support import (
    CONTROL,
    concrete_topics,
    config_with_nvr,
    connected,
    may_publish,
    may_read,
    may_subscribe_wildcard,
    refused_publish,
    wildcard_filters,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def matrix_config(example_config: Config) -> Config:
    return config_with_nvr(example_config)


@pytest.fixture
def matrix_broker(tmp_path: Path, matrix_config: Config) -> Iterator[Broker]:
    with broker_for(tmp_path / "mosquitto", matrix_config) as broker:
        yield broker


def _refusal(exc: MqttError) -> bool:
    """A refusal for want of rights (0x87 not authorised, 0x86 bad login); else raise."""
    if "0x87" in str(exc) or "0x86" in str(exc):
        return True
    raise exc


async def _subscribe_refused(client: Client, topic_filter: str) -> bool:
    try:
        await client.subscribe([Subscription(topic_filter)])
    except MqttError as exc:
        return _refusal(exc)
    return False


async def _takeover_refused(broker: Broker, login: str, client_id: str) -> bool:
    try:
        async with connected(broker.settings(login), client_id):
            return False
    except MqttError as exc:
        return _refusal(exc)


async def test_every_identity_times_every_action(
    matrix_broker: Broker, matrix_config: Config
) -> None:
    config = matrix_config
    identities = matrix_broker.server.access.identities
    kinds = Counter(identity.kind for identity in identities)
    assert {"hub", "sim", "observer", "admin", "edge", "device", "nvr"} == set(kinds)
    assert len(config.devices) == kinds["device"]
    probes = concrete_topics(config)
    counts: Counter[str] = Counter()
    wrong: list[str] = []

    def check(name: str, action: str, allowed: bool, refused: bool) -> None:
        counts[f"{action} {'allowed' if allowed else 'denied'}"] += 1
        if allowed == refused:
            wrong.append(f"{name}: expected {'allowed' if allowed else 'denied'}")

    # Publish: one connection per identity, every topic at QoS 1, the PUBACK's reason.
    for identity in identities:
        async with connected(matrix_broker.settings(identity.username)) as client:
            results = await asyncio.gather(*(refused_publish(client, t) for t in probes))
        for topic, refused in zip(probes, results, strict=True):
            allowed = may_publish(config, identity, topic)
            check(f"{identity.username} publish {topic}", "publish", allowed, refused)

    # Subscribe: every concrete topic and the wildcard filters, the SUBACK's reason.
    for identity in identities:
        async with connected(matrix_broker.settings(identity.username)) as client:
            for topic_filter in probes:
                allowed = may_read(config, identity, topic_filter)
                refused = await _subscribe_refused(client, topic_filter)
                check(
                    f"{identity.username} subscribe {topic_filter}", "subscribe", allowed, refused
                )
            for topic_filter in wildcard_filters(config):
                allowed = may_subscribe_wildcard(config, identity, topic_filter)
                refused = await _subscribe_refused(client, topic_filter)
                check(
                    f"{identity.username} subscribe {topic_filter}", "subscribe", allowed, refused
                )

    # Client-id takeover: every bound client id, tried by every other identity.
    for owner in identities:
        if owner.client_id is None:
            continue
        refused = await _takeover_refused(matrix_broker, owner.username, owner.client_id)
        check(f"{owner.username} own client id", "client id", True, refused)
        for other in identities:
            if other is not owner:
                refused = await _takeover_refused(matrix_broker, other.username, owner.client_id)
                check(f"{other.username} takes {owner.client_id}", "client id", False, refused)

    print(f"\nbroker access matrix ({len(identities)} identities, {len(probes)} topics):")
    for key in sorted(counts):
        print(f"  {key}: {counts[key]}")
    print(f"  total allowed: {sum(v for k, v in counts.items() if 'allowed' in k)}")
    print(f"  total denied: {sum(v for k, v in counts.items() if 'denied' in k)}")
    assert [] == wrong
    assert counts["publish allowed"] > 0
    assert counts["subscribe allowed"] > 0


async def test_every_allowed_reader_receives_what_an_allowed_writer_publishes(
    matrix_broker: Broker, matrix_config: Config
) -> None:
    """Subscribing is not enough: the plugin also checks each delivery. Every topic an
    identity may read reaches it from an identity that may write it."""
    config = matrix_config
    identities = matrix_broker.server.access.identities
    probes = [t for t in concrete_topics(config) if t != CONTROL]
    pairs = 0
    for reader in identities:
        readable = [t for t in probes if may_read(config, reader, t)]
        if not readable:
            continue
        async with connected(matrix_broker.settings(reader.username)) as inbox:
            await inbox.subscribe([Subscription(t) for t in readable])
            for topic in readable:
                writer = next(i for i in identities if may_publish(config, i, topic))
                async with connected(matrix_broker.settings(writer.username)) as out:
                    await out.publish(topic, f"to {reader.username}".encode(), qos=1)
            await _wait_for_topics(inbox, set(readable), reader.username)
            pairs += len(readable)
    print(f"\ndelivered to allowed readers: {pairs} (reader, topic) pairs")
    assert pairs > 0


async def _wait_for_topics(inbox: Client, wanted: set[str], who: str) -> None:
    seen: set[str] = set()
    try:
        async with asyncio.timeout(10):
            while not wanted <= seen:
                seen.update(message.topic for message in await inbox.next_batch(100))
    except TimeoutError:
        raise AssertionError(f"{who} did not receive {sorted(wanted - seen)}") from None
