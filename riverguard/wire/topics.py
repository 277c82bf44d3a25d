"""Every MQTT topic of docs/protocol.md is built and parsed here, and only here.

Builders return strings; ``parse`` turns a topic back into a typed value or
raises ``TopicError`` with the reason.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from riverguard.errors import RiverguardError

ROOT = "riverguard/v1/sites"
# Topics of the hub itself, not of a site (7.12).
HUB_ROOT = "riverguard/v1/hub"
# Frigate's default ``mqtt.topic_prefix``; a site may set its own (``Site.frigate_topic_prefix``).
FRIGATE_PREFIX = "frigate"
# First topic levels of our own trees: a Frigate prefix there would be read as both.
_OWN_TREES = ("field", ROOT.split("/", maxsplit=1)[0])

_IDENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")


class TopicError(RiverguardError):
    """A topic that is not part of the protocol, or names an invalid identifier."""


# --- 1. Field devices ----------------------------------------------------------


def field_report(site: str, device_type: str, device: str) -> str:
    """1.1 / 1.2: a fence's or camera's raw report."""
    return f"field/{site}/{device_type}/{device}"


def field_status(site: str, device_type: str, device: str) -> str:
    """1.4: a device's retained status."""
    return f"field/{site}/{device_type}/{device}/status"


def speaker_play(site: str, speaker: str) -> str:
    return f"field/{site}/speaker/{speaker}/play"


def speaker_state(site: str, speaker: str) -> str:
    return f"field/{site}/speaker/{speaker}/state"


def speaker_stop(site: str, speaker: str) -> str:
    """Edge -> ``mqtt`` speaker: stop the announcement ``{"id": ...}`` if it plays it."""
    return f"field/{site}/speaker/{speaker}/stop"


def field_site_filter(site: str) -> str:
    """What an edge subscribes to for its site's devices."""
    return f"field/{site}/#"


def frigate_events(prefix: str = FRIGATE_PREFIX) -> str:
    """1.3: the event stream of a Frigate NVR publishing under ``prefix``."""
    return f"{prefix}/events"


def frigate_snapshot(camera: str, label: str = "person", prefix: str = FRIGATE_PREFIX) -> str:
    return f"{prefix}/{camera}/{label}/snapshot"


def check_frigate_prefix(prefix: str) -> str:
    """``prefix`` if it can be a Frigate ``mqtt.topic_prefix`` next to our topics."""
    if not prefix:
        raise TopicError("a Frigate topic prefix cannot be empty")
    if "+" in prefix or "#" in prefix:
        raise TopicError(f"a Frigate topic prefix cannot hold MQTT wildcards: {prefix[:70]!r}")
    if prefix.startswith("/") or prefix.endswith("/"):
        raise TopicError(f"a Frigate topic prefix cannot start or end with '/': {prefix[:70]!r}")
    if "" in prefix.split("/"):
        raise TopicError(f"a Frigate topic prefix cannot hold an empty level: {prefix[:70]!r}")
    if prefix.startswith("$"):
        raise TopicError(f"a Frigate NVR cannot publish under {prefix[:70]!r} ($ is the broker's)")
    if prefix.split("/", maxsplit=1)[0] in _OWN_TREES:
        raise TopicError(f"Frigate topic prefix {prefix[:70]!r} is inside Riverguard's own topics")
    return prefix


# --- 2. Edge -> hub ------------------------------------------------------------


def events(site: str) -> str:
    return f"{ROOT}/{site}/events"


def event_batch(site: str) -> str:
    """7.12: several 2.1 events in one message, for a hub that says it takes them."""
    return f"{ROOT}/{site}/events/batch"


def snapshot(site: str, event_id: str) -> str:
    return f"{ROOT}/{site}/snapshots/{event_id}"


def device_status(site: str, device: str) -> str:
    return f"{ROOT}/{site}/devices/{device}/status"


def edge_status(site: str) -> str:
    return f"{ROOT}/{site}/edge/status"


def speaker_ack(site: str, speaker: str) -> str:
    return f"{ROOT}/{site}/speakers/{speaker}/ack"


# --- 3. Hub -> edge ------------------------------------------------------------


def announce(site: str, speaker: str) -> str:
    return f"{ROOT}/{site}/speakers/{speaker}/announce"


def stop(site: str, speaker: str) -> str:
    return f"{ROOT}/{site}/speakers/{speaker}/stop"


def committed(site: str) -> str:
    return f"{ROOT}/{site}/committed"


def hub_status() -> str:
    """7.12: the hub's retained availability and what it accepts."""
    return f"{HUB_ROOT}/status"


# Subscriptions: the hub's (all sites) and an edge's (its own site).
HUB_SUBSCRIPTIONS = (
    f"{ROOT}/+/events",
    f"{ROOT}/+/events/batch",
    f"{ROOT}/+/snapshots/+",
    f"{ROOT}/+/devices/+/status",
    f"{ROOT}/+/edge/status",
    f"{ROOT}/+/speakers/+/ack",
)


def edge_subscriptions(site: str) -> tuple[str, ...]:
    return (
        f"{ROOT}/{site}/speakers/+/announce",
        f"{ROOT}/{site}/speakers/+/stop",
        f"{ROOT}/{site}/committed",
        hub_status(),
    )


# --- parsing -------------------------------------------------------------------

FieldKind = Literal["report", "status", "play", "state", "stop"]
SiteKind = Literal[
    "events",
    "event_batch",
    "snapshot",
    "device_status",
    "edge_status",
    "ack",
    "announce",
    "stop",
    "committed",
]


@dataclass(frozen=True, slots=True)
class FieldTopic:
    """``field/{site}/{type}/{device}[/status|/play|/state|/stop]``."""

    site: str
    device_type: Literal["fence", "camera", "speaker"]
    device: str
    kind: FieldKind


@dataclass(frozen=True, slots=True)
class SiteTopic:
    """``riverguard/v1/sites/{site}/...``; ``name`` is the device, speaker or event id."""

    site: str
    kind: SiteKind
    name: str | None = None


@dataclass(frozen=True, slots=True)
class HubTopic:
    """``riverguard/v1/hub/status``: the one topic of the hub itself so far."""

    kind: Literal["status"] = "status"


@dataclass(frozen=True, slots=True)
class FrigateTopic:
    """``{prefix}/events`` (camera None) or ``{prefix}/{camera}/{label}/snapshot``."""

    camera: str | None = None
    label: str | None = None


_FIELD_SUFFIX: dict[str | None, FieldKind] = {
    None: "report",
    "status": "status",
    "play": "play",
    "state": "state",
    "stop": "stop",
}
_SITE_SHAPES: dict[tuple[int, str, str | None], SiteKind] = {
    # (number of parts after the site, first part, last part) -> kind
    (1, "events", None): "events",
    (2, "events", "batch"): "event_batch",
    (1, "committed", None): "committed",
    (2, "snapshots", None): "snapshot",
    (2, "edge", "status"): "edge_status",
    (3, "devices", "status"): "device_status",
    (3, "speakers", "ack"): "ack",
    (3, "speakers", "announce"): "announce",
    (3, "speakers", "stop"): "stop",
}


def _ident(value: str, what: str) -> str:
    if not _IDENT.match(value):
        raise TopicError(f"invalid {what} identifier {value[:70]!r}")
    return value


# Every message is parsed by topic, and a site's topics are few: cached (results are
# immutable; a refused topic raises each time and is not kept).
@functools.lru_cache(maxsize=8192)
def parse(
    topic: str, frigate_prefix: str = FRIGATE_PREFIX
) -> FieldTopic | SiteTopic | HubTopic | FrigateTopic:
    """``frigate_prefix``: the ``mqtt.topic_prefix`` of the Frigate NVR this reader follows."""
    parts = topic.split("/")
    if parts[0] == "field":
        return _parse_field(topic, parts)
    if topic.startswith(ROOT + "/"):
        return _parse_site(topic, parts[3:])
    if topic == hub_status():
        return HubTopic()
    if topic.startswith(frigate_prefix + "/"):
        rest = topic[len(frigate_prefix) + 1 :].split("/")
        if rest == ["events"]:
            return FrigateTopic()
        if len(rest) == 3 and rest[2] == "snapshot":
            return FrigateTopic(camera=rest[0], label=rest[1])
    raise TopicError(f"not a protocol topic: {topic[:120]!r}")


def _parse_field(topic: str, parts: list[str]) -> FieldTopic:
    if len(parts) not in (4, 5):
        raise TopicError(f"not a field topic: {topic[:120]!r}")
    device_type = parts[2]
    if device_type not in ("fence", "camera", "speaker"):
        raise TopicError(f"unknown device type {device_type[:30]!r}")
    suffix = parts[4] if len(parts) == 5 else None
    kind = _FIELD_SUFFIX.get(suffix)
    if kind is None:
        raise TopicError(f"unknown field topic suffix {suffix!r}")
    return FieldTopic(
        site=_ident(parts[1], "site"),
        device_type=device_type,  # type: ignore[arg-type]  # checked just above
        device=_ident(parts[3], "device"),
        kind=kind,
    )


def _parse_site(topic: str, parts: list[str]) -> SiteTopic:
    if len(parts) < 2:
        raise TopicError(f"not a site topic: {topic[:120]!r}")
    site = _ident(parts[0], "site")
    rest = parts[1:]
    last = rest[-1] if len(rest) > 1 and rest[0] != "snapshots" else None
    kind = _SITE_SHAPES.get((len(rest), rest[0], last))
    if kind is None:
        raise TopicError(f"not a site topic: {topic[:120]!r}")
    if kind == "snapshot":
        if not _EVENT_ID.match(rest[1]):
            raise TopicError(f"invalid event id in snapshot topic {rest[1][:70]!r}")
        return SiteTopic(site, kind, rest[1])
    if len(rest) == 3:
        return SiteTopic(site, kind, _ident(rest[1], "device"))
    return SiteTopic(site, kind)
