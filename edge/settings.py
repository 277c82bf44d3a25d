"""The edge agent's settings (``RIVERGUARD_*`` environment variables)."""

from __future__ import annotations

from riverguard.settings import ComponentSettings


class EdgeSettings(ComponentSettings):
    site: str
