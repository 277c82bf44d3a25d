"""The running hub's resources, built and owned by the FastAPI lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from hub.announcer import Announcer
from hub.audio_desk import AudioDesk
from hub.auth import Auth
from hub.broadcaster import Broadcaster
from hub.desk import AlarmDesk
from hub.influx import Influx, InfluxWriter
from hub.ingest import Ingest
from hub.link import BrokerLink
from hub.links import Links
from hub.metrics import HubMetrics
from hub.picture import Picture
from hub.settings import HubSettings
from hub.store import Store
from riverguard.config import Config


@dataclass(frozen=True)
class Hub:
    settings: HubSettings
    config: Config
    store: Store
    metrics: HubMetrics
    http: httpx.AsyncClient
    influx: Influx
    writer: InfluxWriter
    broadcaster: Broadcaster
    picture: Picture
    desk: AlarmDesk
    announcer: Announcer
    auth: Auth
    link: BrokerLink
    links: Links
    ingest: Ingest
    audio: AudioDesk
