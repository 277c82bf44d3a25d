"""The simulators' settings (``RIVERGUARD_*`` environment variables)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from riverguard.settings import ComponentSettings


class DemoHub(BaseModel):
    """The hub the demo's swimmer watches for someone at the console, and a login to it."""

    model_config = ConfigDict(frozen=True)

    url: str
    username: str
    password: SecretStr


class SimSettings(ComponentSettings):
    # Playback speed of simulated speakers: 1.0 is real time; tests use more.
    speaker_speed: float = Field(default=1.0, gt=0)
    # Speed of the swimmer scenario's pauses and waits: 1.0 is the demo's pace.
    swimmer_speed: float = Field(default=1.0, gt=0)
    # How often simulated fences, cameras and speakers repeat their retained online status.
    device_heartbeat_s: float = Field(default=30.0, gt=0)
    # `sim swimmer --wait-for-console` (riverguard up): RIVERGUARD_DEMO_HUB__URL, __USERNAME,
    # __PASSWORD.
    demo_hub: DemoHub | None = None
