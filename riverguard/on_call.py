"""Who is called for a site's alarm at an escalation level, at a given instant.

Level 0 is the duty officer at the console: nobody is called. Level ``n`` is
the site's ``escalation[n - 1]``; its call list names responders (always
called) and rotas (whoever of the rota is on duty at that instant, in the
site's time zone; nobody while the rota has a gap). The answer keeps the
call list's order, each responder once.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from riverguard.config import Config
from riverguard.responders import Responder


def on_call(config: Config, site_id: str, level: int, at: datetime) -> tuple[Responder, ...]:
    """The responders to call for ``site_id`` at escalation ``level`` at instant ``at``
    (timezone-aware); empty at level 0, above the top level, or when every rota
    named is in a gap."""
    if at.tzinfo is None:
        raise ValueError("on_call needs a timezone-aware instant")
    site = config.site(site_id)
    if not 1 <= level <= len(site.escalation):
        return ()
    local = at.astimezone(ZoneInfo(site.timezone))
    called: dict[str, Responder] = {}
    for entry in site.escalation[level - 1].call:
        rota = config.rota_by_id.get(entry)
        responder_id = rota.on_duty(local) if rota is not None else entry
        if responder_id is not None and responder_id not in called:
            called[responder_id] = config.responder_by_id[responder_id]
    return tuple(called.values())
