"""People by name: who a username or an audited actor is, for ``hello``'s ``people``
(PROTOCOL 7.41) and for a printed timeline."""

from __future__ import annotations

from hub.dispatcher import responder_actor
from riverguard.config import Config


def people(config: Config) -> dict[str, str]:
    """Each user's display name by username, and each responder's name by the actor
    their own steps are audited as (``responder:<id>``)."""
    names = {responder_actor(responder.id): responder.name for responder in config.responders}
    names.update((user.username, user.name) for user in config.users)
    return names
