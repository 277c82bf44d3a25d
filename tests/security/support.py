"""What each broker identity may do, written from the rules of docs/security.md, apart
from riverguard/broker_acl.py which the broker enforces: the tests compare the two."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from riverguard.broker_acl import Identity
from riverguard.config import Config
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.mqtt_client import Client, MqttError
from riverguard.wire import topics
from riverguard.wire.topics import FieldTopic, HubTopic, SiteTopic, TopicError

CONTROL = "$CONTROL/dynamic-security/v1"
PROBE = b'{"probe": "access matrix"}'


def config_with_nvr(example: Config) -> Config:
    """The example configuration with one Frigate camera behind its site's own NVR prefix,
    so that NVR logins and prefixes are in the matrix too."""
    raw = example.model_dump()
    for site in raw["sites"]:
        if site["id"] == "danshui-bridge":
            site["frigate_topic_prefix"] = "frigate-db"
    for device in raw["devices"]:
        if device["id"] == "db-cam-02":
            device["source"] = "frigate"
            device["source_ref"] = "bridge_cam"
    return Config.model_validate(raw)


def concrete_topics(config: Config) -> list[str]:
    """One topic of every kind the protocol has, for every site and device."""
    found: list[str] = []
    for device in config.devices:
        found.append(topics.field_report(device.site, device.type, device.id))
        found.append(topics.field_status(device.site, device.type, device.id))
        if device.type == "speaker":
            found.append(topics.speaker_play(device.site, device.id))
            found.append(topics.speaker_stop(device.site, device.id))
            found.append(topics.speaker_state(device.site, device.id))
    for site in config.sites:
        speaker = next(d.id for d in config.devices_of(site.id, "speaker"))
        first = config.devices_of(site.id)[0].id
        found += [
            topics.events(site.id),
            topics.event_batch(site.id),
            topics.snapshot(site.id, f"{first}:1"),
            topics.device_status(site.id, first),
            topics.edge_status(site.id),
            topics.speaker_ack(site.id, speaker),
            topics.announce(site.id, speaker),
            topics.stop(site.id, speaker),
            topics.committed(site.id),
        ]
    found.append(topics.hub_status())
    for prefix in sorted({site.frigate_topic_prefix for site in config.sites}):
        found.append(topics.frigate_events(prefix))
        found.append(topics.frigate_snapshot("bridge_cam", prefix=prefix))
    found += [CONTROL, "$SYS/broker/uptime", "other/tree"]
    return found


def wildcard_filters(config: Config) -> list[str]:
    found = ["#", "+/#", "$SYS/#", "$CONTROL/#", "riverguard/#", "field/#", "field/+/+/+"]
    for site in config.sites:
        found += [f"field/{site.id}/#", f"{topics.ROOT}/{site.id}/#"]
    found.append(topics.events("+"))
    return found


def _prefix_of(config: Config, topic: str) -> str | None:
    for site in config.sites:
        if topic.startswith(site.frigate_topic_prefix + "/"):
            return site.frigate_topic_prefix
    return None


def _parsed(topic: str) -> FieldTopic | SiteTopic | HubTopic | None:
    try:
        parsed = topics.parse(topic)
    except TopicError:
        return None
    return None if not isinstance(parsed, FieldTopic | SiteTopic | HubTopic) else parsed


def _subject(identity: Identity) -> str:
    """The site of an edge or NVR, the device of a device login ("" for the others)."""
    if identity.kind in ("edge", "nvr", "device"):
        return identity.username.split("-", 1)[1]
    return ""


_EDGE_WRITES = ("events", "event_batch", "snapshot", "device_status", "edge_status", "ack")
_HUB_READS = _EDGE_WRITES
_OBSERVER_READS = ("events", "event_batch", "device_status", "edge_status", "ack")


def _device_writes(config: Config, who: str, topic: str) -> bool:
    device = config.device_by_id[who]
    parsed = _parsed(topic)
    if not (
        isinstance(parsed, FieldTopic)
        and (parsed.site, parsed.device_type, parsed.device)
        == (device.site, device.type, device.id)
    ):
        return False
    return parsed.kind in (
        ("state", "status") if device.type == "speaker" else ("report", "status")
    )


def _edge_writes(config: Config, site: str, topic: str) -> bool:
    parsed = _parsed(topic)
    if isinstance(parsed, SiteTopic):
        return parsed.site == site and parsed.kind in _EDGE_WRITES
    return (
        isinstance(parsed, FieldTopic) and parsed.site == site and parsed.kind in ("play", "stop")
    )


def _hub_writes(config: Config, who: str, topic: str) -> bool:
    parsed = _parsed(topic)
    if isinstance(parsed, SiteTopic):
        return parsed.kind in ("announce", "stop", "committed")
    return isinstance(parsed, HubTopic)


def _nvr_writes(config: Config, site: str, topic: str) -> bool:
    return _prefix_of(config, topic) == config.site(site).frigate_topic_prefix


def _sim_uses(config: Config, who: str, topic: str) -> bool:
    return topic.startswith("field/") or _prefix_of(config, topic) is not None


def _sim_writes(config: Config, who: str, topic: str) -> bool:
    parsed = _parsed(topic)
    if isinstance(parsed, FieldTopic) and parsed.kind in ("play", "stop"):
        return False  # only an edge drives a speaker
    return _sim_uses(config, who, topic)


def _admin_uses(config: Config, who: str, topic: str) -> bool:
    return topic == CONTROL


def _nothing(config: Config, who: str, topic: str) -> bool:
    return False


def _device_reads(config: Config, who: str, topic: str) -> bool:
    device = config.device_by_id[who]
    parsed = _parsed(topic)
    return (
        device.type == "speaker"
        and isinstance(parsed, FieldTopic)
        and (parsed.site, parsed.device) == (device.site, device.id)
        and parsed.kind in ("play", "stop")
    )


def _edge_reads(config: Config, site: str, topic: str) -> bool:
    parsed = _parsed(topic)
    if isinstance(parsed, FieldTopic):
        return parsed.site == site
    if isinstance(parsed, SiteTopic):
        return parsed.site == site and parsed.kind in ("announce", "stop", "committed")
    frigate = _prefix_of(config, topic) == config.site(site).frigate_topic_prefix
    return isinstance(parsed, HubTopic) or (
        frigate and (topic.endswith("/events") or topic.endswith("/snapshot"))
    )


def _hub_reads(config: Config, who: str, topic: str) -> bool:
    parsed = _parsed(topic)
    if isinstance(parsed, SiteTopic):
        return parsed.kind in _HUB_READS
    return isinstance(parsed, HubTopic)


def _observer_reads(config: Config, who: str, topic: str) -> bool:
    parsed = _parsed(topic)
    if isinstance(parsed, SiteTopic):
        return parsed.kind in _OBSERVER_READS
    if isinstance(parsed, FieldTopic):
        return parsed.kind == "status"
    return isinstance(parsed, HubTopic)


Rule = Callable[[Config, str, str], bool]
_WRITES: dict[str, Rule] = {
    "device": _device_writes,
    "edge": _edge_writes,
    "hub": _hub_writes,
    "nvr": _nvr_writes,
    "sim": _sim_writes,
    "admin": _admin_uses,
    "observer": _nothing,
}
_READS: dict[str, Rule] = {
    "device": _device_reads,
    "edge": _edge_reads,
    "hub": _hub_reads,
    "nvr": _nothing,
    "sim": _sim_uses,
    "admin": _admin_uses,
    "observer": _observer_reads,
}


def may_publish(config: Config, identity: Identity, topic: str) -> bool:
    return _WRITES[identity.kind](config, _subject(identity), topic)


def may_read(config: Config, identity: Identity, topic: str) -> bool:
    return _READS[identity.kind](config, _subject(identity), topic)


def may_subscribe_wildcard(config: Config, identity: Identity, topic_filter: str) -> bool:
    if identity.kind == "sim":
        return topic_filter.startswith("field/")
    if identity.kind == "edge":
        return topic_filter == f"field/{_subject(identity)}/#"
    if identity.kind in ("hub", "observer"):
        return topic_filter == topics.events("+")
    return False


@asynccontextmanager
async def connected(
    settings: BrokerSettings, identifier: str | None = None
) -> AsyncIterator[Client]:
    async with make_client(settings, identifier) as client:
        yield client


async def refused_publish(client: Client, topic: str, payload: bytes = PROBE) -> bool:
    """True when the broker answers the QoS 1 publish with a failure reason (0x87)."""
    try:
        await client.publish(topic, payload, qos=1)
    except MqttError as exc:
        if "0x87" not in str(exc):
            raise
        return True
    return False
