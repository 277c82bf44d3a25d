"""Settings shared by every long-running component, read from ``RIVERGUARD_*``.

Nested fields use ``__``: ``RIVERGUARD_BROKER__PORT=1883``. Each component
extends ``ComponentSettings`` with its own fields; settings are built once at
the entry point and passed down.
"""

from __future__ import annotations

from pathlib import Path

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

    def load_config(self) -> Config:
        return load_config(self.config)
