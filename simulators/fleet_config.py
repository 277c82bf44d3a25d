"""A site configuration for a city-scale fleet: N sites of M devices each.

Each site gets zones along its bank (one per 50 devices, at least 2) and a
mix of devices like a real stretch of river: mostly fence controllers, AI
cameras on about a third of the posts, a few Frigate-managed cameras (one
Frigate NVR per site, ``source = "frigate"``, publishing under the site's own
``frigate_topic_prefix``, ``frigate-<site>``, so that no edge reads another
site's NVR), and one loudspeaker per 100
devices (at least one), a fifth of them network speakers with an HTTP
audio-transmit endpoint (``driver = "http"``) on a free local port, which
``riverguard sim fleet`` serves. Device ids are unique across sites
(``s003-f0042``), as event ids are derived from them.

The same file drives ``riverguard up --config`` and ``riverguard sim fleet
--config``, so the stack and the simulator agree on every device.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from riverguard.services import port_is_free

DEVICES_PER_ZONE = 50
DEVICES_PER_SPEAKER = 100
FRIGATE_SHARE = 0.05
CAMERA_SHARE = 0.30
HTTP_SPEAKER_SHARE = 0.2
# HTTP speakers listen below Linux's ephemeral range (32768-60999): a port
# picked there can be taken by one of the fleet's own outgoing connections
# before the speaker binds it.
SPEAKER_PORTS = range(20000, 32000)


@dataclass(frozen=True)
class SiteMix:
    """How many of each kind of device one site of ``devices`` gets."""

    zones: int
    speakers: int
    http_speakers: int
    frigate_cameras: int
    cameras: int
    fences: int

    @classmethod
    def of(cls, devices: int) -> SiteMix:
        if devices < 3:
            raise ValueError("a fleet site needs at least 3 devices (a fence, a camera, a speaker)")
        speakers = max(1, devices // DEVICES_PER_SPEAKER)
        frigate = int(devices * FRIGATE_SHARE)
        cameras = max(1, int(devices * CAMERA_SHARE))
        return cls(
            zones=max(2, devices // DEVICES_PER_ZONE),
            speakers=speakers,
            http_speakers=int(speakers * HTTP_SPEAKER_SHARE),
            frigate_cameras=frigate,
            cameras=cameras,
            fences=devices - speakers - frigate - cameras,
        )


def site_id(index: int) -> str:
    return f"s{index:03d}"


def frigate_name(site: str, index: int) -> str:
    """The camera's name in its site's Frigate."""
    return f"{site}_bank_{index:03d}"


def frigate_prefix(site: str) -> str:
    """The ``mqtt.topic_prefix`` of the site's Frigate NVR: one per site on the shared broker."""
    return f"frigate-{site}"


def speaker_port() -> int:
    """A free port for an HTTP speaker, outside the ephemeral range."""
    for _ in range(100):
        port = random.choice(SPEAKER_PORTS)
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port in {SPEAKER_PORTS} after 100 tries")


def fleet_config(
    sites: int, devices_per_site: int, *, port: Callable[[], int] = speaker_port
) -> str:
    """The TOML text of a fleet of ``sites`` x ``devices_per_site`` devices.

    ``port`` picks the listening port of each HTTP speaker (a free one by default).
    """
    if sites < 1:
        raise ValueError("a fleet needs at least one site")
    mix = SiteMix.of(devices_per_site)
    lines: list[str] = [
        f"# A generated fleet: {sites} sites x {devices_per_site} devices "
        "(riverguard sim fleet-config).",
        "",
    ]
    for s in range(1, sites + 1):
        lines += _site(site_id(s), s, mix)
    given: set[int] = set()

    def distinct_port() -> int:
        # Free ports picked at random can repeat: each speaker gets its own.
        while (chosen := port()) in given:
            pass
        given.add(chosen)
        return chosen

    for s in range(1, sites + 1):
        lines += _devices(site_id(s), mix, distinct_port)
    for username, name, role in (
        ("admin", "Fleet admin", "admin"),
        ("officer", "Fleet duty officer", "officer"),
        ("supervisor", "Fleet supervisor", "supervisor"),
        ("viewer", "Fleet viewer", "viewer"),
    ):
        lines += ["[[users]]", f'username = "{username}"', f'name = "{name}"', f'role = "{role}"']
    return "\n".join(lines) + "\n"


def _site(site: str, index: int, mix: SiteMix) -> list[str]:
    lines = [
        "[[sites]]",
        f'id = "{site}"',
        f'name = "模拟河段 {index}"',
        f'name_en = "Simulated stretch {index}"',
        f'grid = "fleet/grid-{index:03d}"',
        f'frigate_topic_prefix = "{frigate_prefix(site)}"',
    ]
    for z in range(1, mix.zones + 1):
        lines += ["  [[sites.zones]]", f'  id = "z{z}"', f'  name = "区域 {z}"']
    return [*lines, ""]


def _devices(site: str, mix: SiteMix, port: Callable[[], int]) -> list[str]:
    lines: list[str] = []

    def zone(i: int) -> str:
        return f"z{(i - 1) % mix.zones + 1}"

    for i in range(1, mix.fences + 1):
        lines += _device(f"{site}-f{i:04d}", site, "fence", [zone(i)])
    for i in range(1, mix.cameras + 1):
        lines += _device(f"{site}-c{i:04d}", site, "camera", [zone(i)])
    for i in range(1, mix.frigate_cameras + 1):
        z = zone(i)
        lines += _device(f"{site}-fr{i:03d}", site, "camera", [z])
        lines += [
            'source = "frigate"',
            f'source_ref = "{frigate_name(site, i)}"',
            f'frigate_zones = {{ bank_{z} = "{z}" }}',
            f'frigate_rules = {{ {z} = "water_entry" }}',
        ]
    per_speaker = max(1, mix.zones // mix.speakers)
    for i in range(1, mix.speakers + 1):
        first = (i - 1) * per_speaker
        covered = [f"z{(first + k) % mix.zones + 1}" for k in range(per_speaker)]
        lines += _device(f"{site}-spk{i:02d}", site, "speaker", covered)
        if i <= mix.http_speakers:
            lines += ['driver = "http"', f'url = "http://127.0.0.1:{port()}/audio"']
        else:
            lines += ['driver = "mqtt"']
    return lines


def _device(device: str, site: str, kind: str, zones: list[str]) -> list[str]:
    quoted = ", ".join(f'"{z}"' for z in zones)
    return [
        "[[devices]]",
        f'id = "{device}"',
        f'site = "{site}"',
        f'type = "{kind}"',
        f"zones = [{quoted}]",
    ]
