"""Stored admin changes laid over the configuration file at start: each that still
fits is kept, whatever order the store gives them in; one that no longer fits is
skipped, never a hub that does not start."""

from __future__ import annotations

from typing import Any

from hub.responder_layer import call_key, responder_key, rota_key, stored_laid_over
from riverguard.config import Config, load_config
from tests.conftest import EXAMPLE_CONFIG

SITE = "danshui-bridge"
WANG = {
    "id": "wang",
    "name": "王网格员",
    "channels": [{"kind": "apprise", "url": "ntfy://ntfy.example.cn/wang"}],
}
WANG_ROTA = {
    "id": "grid08-team",
    "shifts": [{"responder": "wang", "days": ["mon"], "start": "08:00", "end": "20:00"}],
}


def _file() -> Config:
    return load_config(EXAMPLE_CONFIG)


def test_a_change_leaning_on_a_later_one_is_kept() -> None:
    """A rota and a call list saved before the responder they lean on was edited again."""
    stored: dict[str, Any] = {
        rota_key("grid08-team"): WANG_ROTA,
        call_key(SITE, 1): ["grid08-team"],
        responder_key("wang"): WANG | {"phone": "+8613800000003"},
    }
    config = stored_laid_over(_file(), stored)
    assert ["grid08-team"] == config.site(SITE).escalation[0].call
    assert "+8613800000003" == config.responder_by_id["wang"].phone


def test_a_change_that_no_longer_fits_the_file_is_skipped_and_the_rest_kept() -> None:
    stored: dict[str, Any] = {
        responder_key("wang"): WANG,
        call_key("gone-site", 1): ["wang"],
        rota_key("grid08-team"): WANG_ROTA,
        rota_key("grid09-team"): WANG_ROTA | {"id": "grid09-team", "shifts": []},
    }
    config = stored_laid_over(_file(), stored)
    assert ["grid08-team"] == [rota.id for rota in config.rotas]
    assert ["wang"] == [responder.id for responder in config.responders]
