"""The size of the console's ``hello`` at city scale, before and after devices on demand.

Builds the hub's picture of a fleet configuration (``riverguard sim fleet-config``),
every edge offline (each zone unguarded, the largest site items), no alarms, and
encodes the ``hello`` fields that grow with the fleet as the hub does
(``hub.broadcaster.encode``): the sites, the edges, and, as a hello carried them
before PROTOCOL 7.37, every device. Not a test: run it by hand and put the figures
in docs/performance.md::

    .venv/bin/python bench/hello_size.py --sites 200 --devices-per-site 100
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from hub.broadcaster import encode
from hub.picture import Picture
from riverguard.config import load_config
from simulators.fleet_config import fleet_config


def measure(sites: int, devices_per_site: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="riverguard-hello-") as tmp:
        path = Path(tmp) / "fleet.toml"
        path.write_text(fleet_config(sites, devices_per_site), encoding="utf-8")
        config = load_config(path)
    picture = Picture(config)
    hello = {"seq": 1, "user": {"username": "officer", "name": "", "role": "officer"},
             "alarms": [], "sites": picture.site_items(), "edges": picture.edge_items(),
             "announcements": [], "links": {}}  # fmt: skip
    before = {**hello, "devices": picture.device_items()}
    return {
        "sites": sites,
        "devices": len(config.devices),
        "hello_bytes": len(encode(1, "hello", hello).encode()),
        "hello_with_devices_bytes": len(encode(1, "hello", before).encode()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--devices-per-site", type=int, default=100)
    args = parser.parse_args()
    print(json.dumps(measure(args.sites, args.devices_per_site), indent=2))


if __name__ == "__main__":
    main()
