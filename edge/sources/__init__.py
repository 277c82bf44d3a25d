"""Vendor adapters ("sources") beyond the generic fence and camera of PROTOCOL 1.1/1.2.

Each is one module implementing ``edge.sources.base.Source`` and one line in
``SOURCES``; docs/adapters.md explains how to add one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from edge.sources.base import Raw, Source
from edge.sources.frigate import FrigateSource
from riverguard.config import Device, Site

__all__ = ["SOURCES", "Raw", "Source", "build_sources"]

# Device.source -> the adapter's constructor.
SOURCES: dict[str, Callable[[Site, Mapping[str, Device]], Source]] = {
    FrigateSource.source: FrigateSource,
}


def build_sources(site: Site, devices: Mapping[str, Device]) -> list[Source]:
    """One adapter per vendor source the site's devices use (the generic one is built in)."""
    used = sorted({device.source for device in devices.values()} - {"generic"})
    return [
        SOURCES[source](
            site, {key: device for key, device in devices.items() if device.source == source}
        )
        for source in used
    ]
