"""The load tool counts what it sends and what reaches the console, one by one."""

from __future__ import annotations

import tomllib

import pytest

from riverguard.config import Config
from riverguard.stack import Stack
from simulators.load import broker_target, fences_config, riverguard_target, run_load

pytestmark = pytest.mark.integration


def test_every_published_event_reaches_the_console_once(stack: Stack) -> None:
    result = run_load(riverguard_target(stack), rate=100, duration=1.0)
    assert 100 == result.sent
    assert (100, 0, 0) == (result.delivered, result.lost, result.duplicated)
    assert result.latency_ms["p50"] <= result.latency_ms["p99"] <= result.latency_ms["max"]
    assert {"broker", "influxd", "hub", "edges", "load_tool"} == set(result.resources)
    assert result.resources["hub"]["peak_rss_mb"] > 0


def test_the_bare_broker_hop_hears_every_report_once_on_the_raw_topics(
    stack: Stack,
) -> None:
    result = run_load(broker_target(stack), rate=200, duration=1.0)
    assert (200, 200, 0, 0) == (result.sent, result.delivered, result.lost, result.duplicated)
    assert 200 == result.frames  # one MQTT message per report
    assert {"broker", "load_tool"} == set(result.resources)


def test_fleet_config_is_a_valid_site_configuration() -> None:
    config = Config.model_validate(tomllib.loads(fences_config(sites=3, devices_per_site=7)))
    assert 3 == len(config.sites)
    assert 21 == len([d for d in config.devices if d.type == "fence"])
