"""The running hub's resources: built once by the FastAPI lifespan (hub/app.py),
given to each route one by one (hub/deps.py)."""

from __future__ import annotations

from dataclasses import dataclass

from hub.announcer import Announcer
from hub.audio_desk import AudioDesk
from hub.auth import Auth
from hub.broadcaster import Broadcaster
from hub.clock import Clock
from hub.desk import AlarmDesk
from hub.dispatcher import Dispatcher
from hub.influx import Influx
from hub.influx_writer import InfluxWriter
from hub.ingest import Ingest
from hub.link import BrokerLink
from hub.links import Links
from hub.metrics import HubMetrics
from hub.notify.outbox import Outbox
from hub.people import people
from hub.picture import Picture
from hub.responder_tokens import ResponderTokens
from hub.schedules import Schedules
from hub.settings import HubSettings
from hub.store import Store
from riverguard.config import Config

# The key of the lifespan's state (Starlette's ``request.state``) that holds them.
RESOURCES = "resources"


@dataclass(frozen=True)
class HubResources:
    settings: HubSettings
    config: Config
    clock: Clock
    store: Store
    metrics: HubMetrics
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
    schedules: Schedules
    outbox: Outbox
    dispatcher: Dispatcher
    # The keys of the links sent to responders.
    tokens: ResponderTokens

    def use_config(self, config: Config) -> None:
        """Responders, rotas or call lists changed through the admin API
        (hub/responder_layer.py); everything else in ``config`` is the file's, as at
        start-up. Set all at once, with no await between, so no reader sees half of a
        change."""
        named_before = people(self.config)
        # The one field that changes after start-up; the others stay frozen.
        object.__setattr__(self, "config", config)
        self.desk.use_config(config)
        self.dispatcher.use_config(config)
        self.outbox.use_config(config)
        named = people(config)
        if named != named_before:
            # A renamed, added or removed responder: consoles name people from this
            # map (PROTOCOL 7.43), not only from their next hello.
            self.broadcaster.publish("people", named)
