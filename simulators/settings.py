"""The simulators' settings (``RIVERGUARD_*`` environment variables)."""

from __future__ import annotations

from riverguard.settings import ComponentSettings


class SimSettings(ComponentSettings):
    # Playback speed of simulated speakers: 1.0 is real time; tests use more.
    speaker_speed: float = 1.0
