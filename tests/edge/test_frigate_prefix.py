"""Sites sharing a broker each read their own Frigate NVR through its topic prefix."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.normalizer import Normalizer
from edge.sources import build_sources
from edge.sources.frigate import FrigateSource
from riverguard.config import Config, ConfigError, load_config
from riverguard.wire import topics
from riverguard.wire.models import Event
from tests.conftest import Broker, broker_for
from tests.edge.support import (
    EXAMPLE_CONFIG,
    edge_settings,
    frigate_message,
    keyed,
    publisher,
    recording,
    running_edge,
)

# Both NVRs name their camera alike: only the topic prefix tells the sites apart.
CAMERA = "bridge_cam"
PREFIXES = {"danshui-bridge": "frigate-db", "xiyong-wharf": "frigate-xy"}
DEVICES = {"danshui-bridge": "db-frigate-01", "xiyong-wharf": "xy-frigate-01"}


def _config(example_config: Config, prefixes: dict[str, str]) -> Config:
    """The example sites, each with a Frigate camera ``bridge_cam`` watching z2."""
    data = example_config.model_dump()
    for site in data["sites"]:
        if site["id"] in prefixes:
            site["frigate_topic_prefix"] = prefixes[site["id"]]
    data["devices"] += [
        {
            "id": device,
            "site": site,
            "type": "camera",
            "source": "frigate",
            "source_ref": CAMERA,
            "zones": ["z2"],
        }
        for site, device in DEVICES.items()
    ]
    return Config.model_validate(data)


def _source(config: Config, site: str) -> FrigateSource:
    normalizer = Normalizer.for_site(config, site)
    [frigate] = build_sources(normalizer.site, normalizer.devices)
    assert isinstance(frigate, FrigateSource)
    return frigate


def test_a_frigate_source_subscribes_and_matches_under_its_sites_prefix(
    example_config: Config,
) -> None:
    source = _source(_config(example_config, PREFIXES), "xiyong-wharf")
    assert ["frigate-xy/events", "frigate-xy/+/person/snapshot"] == source.subscriptions()
    assert source.matches("frigate-xy/events")
    assert not source.matches("frigate/events")
    assert not source.matches("frigate-db/events")
    assert not source.matches("frigate-xy-2/events")


def test_a_site_without_a_prefix_reads_frigates_default_topics(example_config: Config) -> None:
    source = _source(_config(example_config, {"xiyong-wharf": "frigate-xy"}), "danshui-bridge")
    assert ["frigate/events", "frigate/+/person/snapshot"] == source.subscriptions()


def _in_zone(frigate_id: str) -> str:
    return json.dumps(frigate_message("update", frigate_id, camera=CAMERA, current_zones=["z2"]))


def _counted(agent: EdgeAgent, metric: str, labels: dict[str, str]) -> float:
    return agent.metrics.registry.get_sample_value(metric, labels) or 0.0


@pytest.mark.integration
async def test_two_sites_nvrs_with_one_camera_name_each_alarm_only_their_own_site(
    tmp_path: Path, example_config: Config
) -> None:
    """Two NVRs on one broker, each with a camera ``bridge_cam``, under their sites' own
    prefixes (and a third on Frigate's default one): each edge makes events of its own
    site's NVR only, and counts nobody else's camera as an ``unknown_device``."""
    config = _config(example_config, PREFIXES)
    sites = list(PREFIXES)
    async with contextlib.AsyncExitStack() as stack:
        # The broker's access lists follow the sites' own prefixes.
        own_broker = stack.enter_context(broker_for(tmp_path / "mosquitto", config))
        await _each_site_reads_its_own_nvr(own_broker, tmp_path, config, sites)


async def _each_site_reads_its_own_nvr(
    own_broker: Broker, tmp_path: Path, config: Config, sites: list[str]
) -> None:
    agents = {
        site: EdgeAgent(
            edge_settings(own_broker.settings(f"edge-{site}"), tmp_path / site, site=site), config
        )
        for site in sites
    }
    filters = [topics.events(site) for site in sites]
    async with contextlib.AsyncExitStack() as stack:
        hub_view = await stack.enter_async_context(recording(own_broker.settings("hub"), *filters))
        for agent in agents.values():
            await stack.enter_async_context(running_edge(agent))
        # One client publishes for every NVR: its messages reach a subscriber in order,
        # so each site's marker comes after everything published before it.
        nvrs = await stack.enter_async_context(publisher(own_broker.settings("sim")))
        await nvrs.publish(topics.frigate_events(), _in_zone("from-default"), qos=1)
        for site in sites:
            await nvrs.publish(topics.frigate_events(PREFIXES[site]), _in_zone(site), qos=1)
        for site in sites:
            marker = _in_zone(f"{site}-marker")
            await nvrs.publish(topics.frigate_events(PREFIXES[site]), marker, qos=1)
        for site in sites:
            payloads = await hub_view.wait_count(topics.events(site), 2)
            made = [Event.model_validate_json(p) for p in payloads]
            device = DEVICES[site]
            expected = [f"{device}:frigate-{site}", f"{device}:frigate-{site}-marker"]
            assert keyed(agents[site], *expected) == [event.id for event in made]
            assert {site} == {event.site for event in made}
        for site, agent in agents.items():
            rejected = _counted(
                agent, "riverguard_edge_rejected_total", {"reason": "unknown_device"}
            )
            assert (site, 0.0) == (site, rejected)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "riverguard.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        ("", "cannot be empty"),
        ("frigate/+", "MQTT wildcards"),
        ("frigate/#", "MQTT wildcards"),
        ("frigate/", "cannot start or end with '/'"),
        ("/frigate", "cannot start or end with '/'"),
    ],
)
def test_a_bad_frigate_prefix_in_the_configuration_is_refused_with_the_reason(
    tmp_path: Path, prefix: str, reason: str
) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'id = "xiyong-wharf"', f'id = "xiyong-wharf"\nfrigate_topic_prefix = "{prefix}"', 1
    )
    with pytest.raises(ConfigError, match="frigate_topic_prefix") as caught:
        load_config(_write(tmp_path, text))
    assert reason in str(caught.value)


def test_two_sites_with_one_frigate_camera_name_under_one_prefix_are_refused(
    example_config: Config,
) -> None:
    """Each site's edge would raise the other site's person as its own alarm."""
    with pytest.raises(ValueError, match="both have Frigate camera 'bridge_cam'"):
        _config(example_config, {})
    assert _config(example_config, {"xiyong-wharf": "frigate-xy"}).sites
