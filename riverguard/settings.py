"""Settings shared by every long-running component, read from ``RIVERGUARD_*``.

Nested fields use ``__``: ``RIVERGUARD_BROKER__PORT=1883``. Each component
extends ``ComponentSettings`` with its own fields; settings are built once at
the entry point and passed down.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from riverguard.config import Config, load_config
from riverguard.mqtt import BrokerSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "examples" / "danshui.toml"


class ComponentSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RIVERGUARD_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    config: Path = DEFAULT_CONFIG
    broker: BrokerSettings
    data_dir: Path = Path(".riverguard")
    log_level: str = "INFO"
    log_json: bool | None = None
    # How long a thread may hold the GIL while another waits for it (Python's default
    # is 5 ms). The SQLite threads of the hub and the edge wait for it on every
    # statement while the event loop is busy: shorter turns shorten commits under load.
    gil_switch_s: float = Field(default=0.001, gt=0, le=0.1)

    def load_config(self) -> Config:
        return load_config(self.config)
