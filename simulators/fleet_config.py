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

Each site also gets a schematic map like the demo's (``[sites.map]``, 1000 x
600, the river along the bottom): a bank that wanders a little, differently per
site, the zones side by side along it, fences at the water's edge, cameras
behind them and the speakers above the zones they cover, so the console's map
page works for every generated site.

The same file drives ``riverguard up --config`` and ``riverguard sim fleet
--config``, so the stack and the simulator agree on every device.
"""

from __future__ import annotations

import itertools
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
# The schematic map, in the demo's units: land above, water below the bank.
MAP_WIDTH, MAP_HEIGHT = 1000, 600
BANK_Y = 390  # where the bank runs on average; each site's wanders by up to BANK_WANDER
BANK_WANDER = 25
BANK_POINTS = 6
ZONE_TOP = 120  # the zones' landward edge
SPEAKER_Y = 60
ZONE_GAP = 20  # between two zones, so their outlines read as two
# Rows of devices in a zone, from the water's edge (0) to its landward edge (1):
# fences at the water, cameras behind them looking over it.
FENCE_ROWS = (0.05, 0.3)
CAMERA_ROWS = (0.55, 0.8)
FRIGATE_ROWS = (0.92,)
# A quarter into their share of the zone: not over the generic camera in its middle.
FRIGATE_OFFSET = 0.25


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


@dataclass(frozen=True)
class SiteLayout:
    """Where a generated site's bank, zones and devices are on its schematic map."""

    index: int
    zones: int

    @property
    def bank(self) -> list[tuple[int, int]]:
        # Seeded by the site, so a configuration written again draws the same maps.
        wander = random.Random(self.index)
        step = MAP_WIDTH / (BANK_POINTS - 1)
        return [
            (round(i * step), BANK_Y + wander.randint(-BANK_WANDER, BANK_WANDER))
            for i in range(BANK_POINTS)
        ]

    @property
    def water(self) -> list[tuple[int, int]]:
        return [*self.bank, (MAP_WIDTH, MAP_HEIGHT), (0, MAP_HEIGHT)]

    def bank_y(self, x: float) -> int:
        """The bank's height at ``x`` (between its points, on the straight line)."""
        points = self.bank
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            if x0 <= x <= x1:
                return round(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
        raise ValueError(f"x = {x} is off the map")

    def zone_span(self, zone: int) -> tuple[int, int]:
        """The left and right edge of zone ``zone`` (1-based)."""
        width = MAP_WIDTH / self.zones
        return round((zone - 1) * width + ZONE_GAP / 2), round(zone * width - ZONE_GAP / 2)

    def zone_area(self, zone: int) -> list[tuple[int, int]]:
        """The zone's outline: from its landward edge down to the bank, following it."""
        left, right = self.zone_span(zone)
        along = [(x, y) for x, y in reversed(self.bank) if left < x < right]
        return [
            (left, ZONE_TOP),
            (right, ZONE_TOP),
            (right, self.bank_y(right)),
            *along,
            (left, self.bank_y(left)),
        ]

    def device_position(
        self, zone: int, nth: int, of: int, row: float, offset: float = 0.5
    ) -> tuple[int, int]:
        """The ``nth`` of ``of`` devices spread across zone ``zone``, each ``offset`` into
        its share of the width; ``row`` 0 puts them at the water's edge, 1 at the zone's
        landward edge."""
        left, right = self.zone_span(zone)
        inset = min(5.0, (right - left) / 4)  # off the zone's outline, inside it
        x = left + inset + (right - left - 2 * inset) * (nth + offset) / of
        edge = self.bank_y(x) - 15  # on land, just above the water
        return round(x), round(edge + (ZONE_TOP - edge) * row)

    def speaker_position(self, zones: list[int]) -> tuple[int, int]:
        """Above the middle of the zones it covers."""
        spans = [self.zone_span(zone) for zone in zones]
        return round((min(s[0] for s in spans) + max(s[1] for s in spans)) / 2), SPEAKER_Y


# The grid path city/district/street/community/grid: five sites to a grid, two grids
# to a community, four communities to a street, so a city overview has levels to group.
SITES_PER_GRID, GRIDS_PER_COMMUNITY, COMMUNITIES_PER_STREET = 5, 2, 4


def grid_path(index: int) -> str:
    grid = (index - 1) // SITES_PER_GRID + 1
    community = (grid - 1) // GRIDS_PER_COMMUNITY + 1
    street = (community - 1) // COMMUNITIES_PER_STREET + 1
    return f"fleet/district/street-{street:02d}/community-{community:02d}/grid-{grid:03d}"


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
        lines += _devices(site_id(s), s, mix, distinct_port)
    for username, name, role in (
        ("admin", "Fleet admin", "admin"),
        ("officer", "Fleet duty officer", "officer"),
        ("supervisor", "Fleet supervisor", "supervisor"),
        ("viewer", "Fleet viewer", "viewer"),
    ):
        lines += ["[[users]]", f'username = "{username}"', f'name = "{name}"', f'role = "{role}"']
    return "\n".join(lines) + "\n"


def _site(site: str, index: int, mix: SiteMix) -> list[str]:
    layout = SiteLayout(index, mix.zones)
    lines = [
        "[[sites]]",
        f'id = "{site}"',
        f'name = "模拟河段 {index}"',
        f'name_en = "Simulated stretch {index}"',
        f'grid = "{grid_path(index)}"',
        f'frigate_topic_prefix = "{frigate_prefix(site)}"',
        "  [sites.map]",
        f"  width = {MAP_WIDTH}",
        f"  height = {MAP_HEIGHT}",
        f"  bank = {_points(layout.bank)}",
        f"  water = {_points(layout.water)}",
    ]
    for z in range(1, mix.zones + 1):
        lines += [
            "  [[sites.zones]]",
            f'  id = "z{z}"',
            f'  name = "区域 {z}"',
            f'  name_en = "Zone {z}"',
            f"  area = {_points(layout.zone_area(z))}",
        ]
    return [*lines, ""]


def _devices(site: str, index: int, mix: SiteMix, port: Callable[[], int]) -> list[str]:
    layout = SiteLayout(index, mix.zones)
    lines: list[str] = []

    def zone(i: int) -> int:
        return (i - 1) % mix.zones + 1

    def position(
        i: int, total: int, rows: tuple[float, ...], offset: float = 0.5
    ) -> tuple[int, int]:
        # Devices go round the zones: the i-th is the ((i - 1) // zones)-th of its zone.
        # Neighbours alternate between rows, so that their labels do not run together.
        nth = (i - 1) // mix.zones
        row = rows[nth % len(rows)]
        return layout.device_position(zone(i), nth, -(-total // mix.zones), row, offset)

    for i in range(1, mix.fences + 1):
        where = position(i, mix.fences, FENCE_ROWS)
        lines += _device(f"{site}-f{i:04d}", site, "fence", [zone(i)], where)
    for i in range(1, mix.cameras + 1):
        where = position(i, mix.cameras, CAMERA_ROWS)
        lines += _device(f"{site}-c{i:04d}", site, "camera", [zone(i)], where)
    for i in range(1, mix.frigate_cameras + 1):
        z = f"z{zone(i)}"
        where = position(i, mix.frigate_cameras, FRIGATE_ROWS, offset=FRIGATE_OFFSET)
        lines += _device(f"{site}-fr{i:03d}", site, "camera", [zone(i)], where)
        lines += [
            'source = "frigate"',
            f'source_ref = "{frigate_name(site, i)}"',
            f'frigate_zones = {{ bank_{z} = "{z}" }}',
            f'frigate_rules = {{ {z} = "water_entry" }}',
        ]
    per_speaker = max(1, mix.zones // mix.speakers)
    for i in range(1, mix.speakers + 1):
        first = (i - 1) * per_speaker
        covered = [(first + k) % mix.zones + 1 for k in range(per_speaker)]
        where = layout.speaker_position(covered)
        lines += _device(f"{site}-spk{i:02d}", site, "speaker", covered, where)
        if i <= mix.http_speakers:
            lines += ['driver = "http"', f'url = "http://127.0.0.1:{port()}/audio"']
        else:
            lines += ['driver = "mqtt"']
    return lines


def _device(
    device: str, site: str, kind: str, zones: list[int], position: tuple[int, int]
) -> list[str]:
    quoted = ", ".join(f'"z{z}"' for z in zones)
    return [
        "[[devices]]",
        f'id = "{device}"',
        f'site = "{site}"',
        f'type = "{kind}"',
        f"zones = [{quoted}]",
        f"position = [{position[0]}, {position[1]}]",
    ]


def _points(points: list[tuple[int, int]]) -> str:
    return "[" + ", ".join(f"[{x}, {y}]" for x, y in points) + "]"
