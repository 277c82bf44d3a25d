"""Responders, rotas and call lists changed through the admin API, laid over the
configuration file's.

A stored change replaces a whole entry: ``responder/<id>`` a responder and
``rota/<id>`` a rota (or adds one the file lacks; ``null`` removes it),
``call/<site>/<level>`` that level's call list. The configuration with the
changes in is validated as a whole by the configuration's own validator
(``riverguard.config.Config``), so the API accepts exactly what the file would.
A stored change that no longer fits the file (its site or level gone, a
responder it names removed) is skipped at start-up with a warning, never a hub
that does not start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from pydantic import ValidationError

from hub.notify.notifier import channel_label
from riverguard.config import Config, ConfigError
from riverguard.responders import Responder
from riverguard.rotas import Rota

log = structlog.get_logger(__name__)


def responder_key(responder_id: str) -> str:
    return f"responder/{responder_id}"


def rota_key(rota_id: str) -> str:
    return f"rota/{rota_id}"


def call_key(site_id: str, level: int) -> str:
    return f"call/{site_id}/{level}"


def laid_over(config: Config, changes: Mapping[str, Any]) -> Config:
    """``config`` with ``changes`` in; ConfigError naming what is wrong."""
    data = config.model_dump()
    responders = {r["id"]: r for r in data["responders"]}
    rotas = {rota["id"]: rota for rota in data["rotas"]}
    sites = {site["id"]: site for site in data["sites"]}
    for key, value in changes.items():
        kind, _, rest = key.partition("/")
        if kind in ("responder", "rota"):
            entries = responders if kind == "responder" else rotas
            if value is None:
                entries.pop(rest, None)
            else:
                entries[rest] = value
        elif kind == "call":
            site_id, _, level = rest.rpartition("/")
            site = sites.get(site_id)
            if site is None:
                raise ConfigError(f"no site {site_id!r}")
            number = int(level)
            if not 1 <= number <= len(site["escalation"]):
                raise ConfigError(
                    f"site {site_id} has escalation levels 1 to {len(site['escalation'])}, "
                    f"not {number}"
                )
            site["escalation"][number - 1]["call"] = value
        else:
            raise ConfigError(f"unknown change {key!r}")
    data["responders"] = list(responders.values())
    data["rotas"] = list(rotas.values())
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_reasons(exc)) from None


def stored_laid_over(config: Config, changes: Mapping[str, Any]) -> Config:
    """``config`` with each stored change that still fits it.

    All at once first: over an unchanged file that is the configuration the hub
    last ran with. Otherwise one by one, again and again while one more fits: a
    change may lean on a later one (a rota saved before the responder it names
    was edited again, which moved that responder's change after it)."""
    try:
        return laid_over(config, changes)
    except ConfigError:
        pass
    pending = dict(changes)
    reasons: dict[str, str] = {}
    fitted = True
    while fitted:
        fitted = False
        for key, value in list(pending.items()):
            try:
                config = laid_over(config, {key: value})
            except ConfigError as exc:
                reasons[key] = str(exc)
                continue
            del pending[key]
            fitted = True
    for key in pending:
        log.warning("stored responder change skipped", key=key, reason=reasons[key])
    return config


def callers_of(config: Config, called_id: str) -> list[str]:
    """Where ``config`` names a responder or a rota: each call list and rota, as a
    person would look for it ("danshui-bridge level 1", "rota grid-07"). Responder
    and rota ids never meet (the configuration refuses it), so one search serves both."""
    found = [
        f"{site.id} level {number}"
        for site in config.sites
        for number, level in enumerate(site.escalation, start=1)
        if called_id in level.call
    ]
    found += [
        f"rota {rota.id}"
        for rota in config.rotas
        if any(shift.responder == called_id for shift in rota.shifts)
    ]
    return found


def audit_view(responder: Responder | None) -> dict[str, Any] | None:
    """A responder as the audit trail keeps it: channels by kind, never an Apprise
    URL (it holds the service's token)."""
    if responder is None:
        return None
    return {
        "id": responder.id,
        "name": responder.name,
        "phone": responder.phone,
        "email": responder.email,
        "language": responder.language,
        "channels": [channel_label(channel) for channel in responder.channels],
    }


def rota_view(rota: Rota | None) -> dict[str, Any] | None:
    """A rota as the API answers it and the audit trail keeps it (nothing secret in it)."""
    return None if rota is None else rota.model_dump(mode="json")


def _reasons(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts)
