"""Who may say what on the broker: every login, its client id and its access list.

Generated from the site configuration with the topic builders of
``riverguard.wire.topics``, so that the rules and the topics the components use
cannot drift apart. The broker enforces them with Mosquitto's dynamic security
plugin (``dynsec_config`` writes its file; ``role_json`` and
``create_client_command`` are the same for its control topic) and our client id guard
(``bound_client_ids``): access is denied unless an access list here allows it.
docs/security.md lists the identities and what each may do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from riverguard.config import Config, ConfigError, Device
from riverguard.credentials import write_private
from riverguard.wire import topics

IdentityKind = Literal["hub", "edge", "device", "nvr", "sim", "observer", "admin"]

HUB = "hub"
SIM = "sim"
OBSERVER = "observer"
ADMIN = "broker-admin"
HUB_CLIENT_ID = "riverguard-hub"
# The dynamic security plugin's control topic (and ``…/response``).
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
_CONTROL_TREE = "$CONTROL/dynamic-security/#"
# Mosquitto's own PBKDF2-SHA512 parameters for the plugin's password hashes.
_HASH_ITERATIONS = 101
_SALT_BYTES = 12


def edge_username(site: str) -> str:
    return f"edge-{site}"


def edge_field_client_id(site: str) -> str:
    """The client id of an edge's session with its site broker (its field side)."""
    return f"edge-{site}-field"


def device_username(device: str) -> str:
    """A device's login (and its client id): ``device-{device id}``."""
    return f"device-{device}"


def nvr_username(site: str) -> str:
    return f"nvr-{site}"


@dataclass(frozen=True)
class Identity:
    """One broker login. ``publish`` and ``read`` are MQTT topic filters;
    ``read`` allows subscribing to a filter inside them and receiving from them.
    ``client_id``, when set, is bound to the login: no other login may use it (the
    login may still open other connections under ids nobody holds)."""

    username: str
    kind: IdentityKind
    publish: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    client_id: str | None = None
    # More client ids bound to the login the same way (an edge's field side).
    more_client_ids: tuple[str, ...] = ()
    description: str = ""
    # Filters inside ``publish`` the identity may still not publish on (checked first).
    deny_publish: tuple[str, ...] = ()


def hub_identity(client_id: str = HUB_CLIENT_ID) -> Identity:
    every = "+"
    return Identity(
        HUB,
        "hub",
        publish=(
            topics.announce(every, every),
            topics.stop(every, every),
            topics.committed(every),
            topics.hub_status(),
        ),
        read=(*topics.HUB_SUBSCRIPTIONS, topics.hub_status()),
        client_id=client_id,
        description="the hub: reads what edges report, commits, announces, stops",
    )


def edge_identity(config: Config, site_id: str) -> Identity:
    site = config.site(site_id)
    prefix = site.frigate_topic_prefix
    return Identity(
        edge_username(site.id),
        "edge",
        publish=(
            topics.events(site.id),
            topics.event_batch(site.id),
            topics.snapshot(site.id, "+"),
            topics.device_status(site.id, "+"),
            topics.edge_status(site.id),
            topics.speaker_ack(site.id, "+"),
            topics.speaker_play(site.id, "+"),
            topics.speaker_stop(site.id, "+"),
        ),
        read=(
            topics.field_site_filter(site.id),
            topics.frigate_events(prefix),
            topics.frigate_snapshot("+", "+", prefix),
            *topics.edge_subscriptions(site.id),
        ),
        client_id=edge_username(site.id),
        more_client_ids=(edge_field_client_id(site.id),),
        description=f"the edge of site {site.id}: its own site only",
    )


def device_identity(device: Device) -> Identity:
    """A fence or camera reports and sets its status; a speaker also takes its own
    play and stop and answers on its own state."""
    kind = device.type
    publish = [
        topics.field_report(device.site, kind, device.id),
        topics.field_status(device.site, kind, device.id),
    ]
    read: list[str] = []
    if kind == "speaker":
        publish = [
            topics.speaker_state(device.site, device.id),
            topics.field_status(device.site, kind, device.id),
        ]
        read = [
            topics.speaker_play(device.site, device.id),
            topics.speaker_stop(device.site, device.id),
        ]
    username = device_username(device.id)
    return Identity(
        username,
        "device",
        publish=tuple(publish),
        read=tuple(read),
        client_id=username,
        description=f"{kind} {device.id} of site {device.site}",
    )


def nvr_identity(config: Config, site_id: str) -> Identity:
    """A site's Frigate NVR publishes under its own topic prefix only."""
    prefix = config.site(site_id).frigate_topic_prefix
    username = nvr_username(site_id)
    return Identity(
        username,
        "nvr",
        publish=(f"{prefix}/#",),
        client_id=username,
        description=f"the Frigate NVR of site {site_id} (topic prefix {prefix})",
    )


def _nvr_prefixes(config: Config) -> list[str]:
    return sorted({site.frigate_topic_prefix for site in config.sites})


def sim_identity(config: Config, sandboxes: Iterable[str] = ()) -> Identity:
    """Simulators and integrators: the field side only, never Riverguard's own tree.
    ``sandboxes``: extra top-level trees of their own (the benchmark's)."""
    trees = [
        "field/#",
        *(f"{prefix}/#" for prefix in _nvr_prefixes(config)),
        *(f"{tree}/#" for tree in sandboxes),
    ]
    every = "+"
    return Identity(
        SIM,
        "sim",
        publish=tuple(trees),
        read=tuple(trees),
        # Only an edge tells a speaker what to play or to stop.
        deny_publish=(topics.speaker_play(every, every), topics.speaker_stop(every, every)),
        description="simulators and integrators: the field side (field/# and NVR topics)",
    )


def observer_identity() -> Identity:
    """Read-only: statuses, events and acknowledgements; writes nothing."""
    every = "+"
    return Identity(
        OBSERVER,
        "observer",
        read=(
            topics.events(every),
            topics.event_batch(every),
            topics.device_status(every, every),
            topics.edge_status(every),
            topics.speaker_ack(every, every),
            topics.hub_status(),
            topics.field_status(every, every, every),
        ),
        description="read-only integrators and dashboards: statuses, events, acks",
    )


def admin_identity() -> Identity:
    return Identity(
        ADMIN,
        "admin",
        publish=(_CONTROL_TREE,),
        read=(_CONTROL_TREE,),
        description="provisioning: the dynamic security control topic only",
    )


def identities(
    config: Config,
    *,
    hub_client_id: str = HUB_CLIENT_ID,
    devices: Iterable[str] | None = None,
    sandboxes: Iterable[str] = (),
) -> list[Identity]:
    """Every login of a broker serving ``config``. ``devices``: the device ids that
    have a login (default: every configured device; a revoked one has none)."""
    wanted = None if devices is None else set(devices)
    unknown = (wanted or set()) - set(config.device_by_id)
    if unknown:
        raise ConfigError(f"no such devices in the configuration: {sorted(unknown)}")
    found = [
        hub_identity(hub_client_id),
        sim_identity(config, sandboxes),
        observer_identity(),
        admin_identity(),
        *(edge_identity(config, site.id) for site in config.sites),
        *(
            nvr_identity(config, site.id)
            for site in config.sites
            if any(d.source == "frigate" for d in config.devices_of(site.id))
        ),
        *(
            device_identity(device)
            for device in config.devices
            if wanted is None or device.id in wanted
        ),
    ]
    _check_unique(found)
    return found


def _check_unique(found: list[Identity]) -> None:
    seen: set[str] = set()
    for identity in found:
        for name in {identity.username, identity.client_id, *identity.more_client_ids} - {None}:
            assert name is not None
            if name in seen:
                raise ConfigError(f"broker login or client id {name!r} would be used twice")
            seen.add(name)


# --- the dynamic security plugin's objects ------------------------------------------


def _acl(acltype: str, topic: str, allow: bool = True) -> dict[str, Any]:
    # A deny is looked at before the allows (higher priority first).
    return {"acltype": acltype, "topic": topic, "allow": allow, "priority": 0 if allow else 10}


def role_json(identity: Identity) -> dict[str, Any]:
    """The identity's role: its access list (default deny); its few denials carve
    topics out of a broader allow."""
    acls = [_acl("publishClientSend", topic, allow=False) for topic in identity.deny_publish]
    acls += [_acl("publishClientSend", topic) for topic in identity.publish]
    for topic in identity.read:
        acls.append(_acl("subscribePattern", topic))
        acls.append(_acl("publishClientReceive", topic))
    return {"rolename": identity.username, "textname": identity.description, "acls": acls}


def password_hash(password: str) -> dict[str, Any]:
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _HASH_ITERATIONS, dklen=64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": _HASH_ITERATIONS,
    }


def client_json(identity: Identity, password: str) -> dict[str, Any]:
    """The identity's client for the plugin's configuration file (password hashed)."""
    client: dict[str, Any] = {
        "username": identity.username,
        "textname": identity.description,
        **password_hash(password),
        "roles": [{"rolename": identity.username}],
    }
    return client


def create_client_command(identity: Identity, password: str) -> dict[str, Any]:
    """``createClient`` for the control topic (the plugin hashes the password)."""
    command: dict[str, Any] = {
        "command": "createClient",
        "username": identity.username,
        "password": password,
        "textname": identity.description,
        "roles": [{"rolename": identity.username}],
    }
    return command


# Every access the plugin checks is denied unless a role allows it; unsubscribing
# from what one may not read anyway is harmless and never blocked.
DEFAULT_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}


def dynsec_config(found: Iterable[Identity], passwords: Mapping[str, str]) -> dict[str, Any]:
    """The plugin's configuration file. Every identity needs its password."""
    found = list(found)
    missing = [i.username for i in found if not passwords.get(i.username)]
    if missing:
        raise ConfigError(f"broker logins without a password: {missing}")
    return {
        "defaultACLAccess": dict(DEFAULT_ACCESS),
        "clients": [client_json(i, passwords[i.username]) for i in found],
        "groups": [],
        "roles": [role_json(i) for i in found],
    }


def bound_client_ids(found: Iterable[Identity]) -> str:
    """The client id guard's file: ``client-id username`` a line."""
    lines = [
        f"{client_id} {i.username}"
        for i in found
        for client_id in (i.client_id, *i.more_client_ids)
        if client_id is not None
    ]
    return "".join(line + "\n" for line in lines)


@dataclass
class BrokerAccess:
    """What a broker is started with: its logins, their passwords, and the client ids
    bound to a login (every configured device's too, with a login or not)."""

    identities: list[Identity]
    passwords: dict[str, str]
    bound: list[Identity]

    def write(self, dynsec_path: Path, bound_ids_path: Path) -> None:
        """The plugin's configuration and the guard's file, 0600, replaced whole."""
        write_private(dynsec_path, json.dumps(dynsec_config(self.identities, self.passwords)))
        write_private(bound_ids_path, bound_client_ids(self.bound))

    def identity(self, username: str) -> Identity:
        for identity in self.identities:
            if identity.username == username:
                return identity
        raise KeyError(username)


def broker_access(
    config: Config,
    passwords: Mapping[str, str],
    *,
    hub_client_id: str = HUB_CLIENT_ID,
    devices: Iterable[str] | None = None,
    sandboxes: Iterable[str] = (),
) -> BrokerAccess:
    """The access of a broker serving ``config``; ``passwords`` for every login."""
    found = identities(config, hub_client_id=hub_client_id, devices=devices, sandboxes=sandboxes)
    every = identities(config, hub_client_id=hub_client_id, sandboxes=sandboxes)
    return BrokerAccess(
        identities=found,
        passwords={i.username: passwords[i.username] for i in found if i.username in passwords},
        bound=every,
    )
