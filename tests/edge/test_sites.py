"""One edge process serving several sites: each keeps its own login, client ids, data and
metrics; a site that fails or is fed garbage does not stop the others."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from edge.errors import SitesRefused
from edge.health import HealthServer
from edge.settings import settings_for_sites
from edge.sites import ServedSite
from riverguard.config import Config
from riverguard.services import ManagedProcess, free_port
from riverguard.testing import fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.models import EdgeStatus, Event
from tests.conftest import Broker
from tests.edge.support import EXAMPLE_CONFIG, background, publisher, recording, riverguard_process

pytestmark = pytest.mark.integration

BRIDGE, WHARF = "danshui-bridge", "xiyong-wharf"
FENCES = {BRIDGE: "db-fence-01", WHARF: "xy-fence-01"}


def _logins_file(path: Path, broker: Broker, logins: dict[str, str]) -> Path:
    """``{login: password}``, each password being that of the broker login ``logins`` names."""
    path.write_text(
        json.dumps({login: broker.server.logins[own] for login, own in logins.items()}),
        encoding="utf-8",
    )
    return path


def _own_logins(broker: Broker, path: Path) -> Path:
    return _logins_file(path, broker, {f"edge-{s}": f"edge-{s}" for s in (BRIDGE, WHARF)})


@pytest.fixture
def edge_env(own_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment an edge process of several sites reads (no login of its own)."""
    data_dir = tmp_path / "edges"
    for name, value in {
        "RIVERGUARD_CONFIG": str(EXAMPLE_CONFIG),
        "RIVERGUARD_BROKER__HOST": "127.0.0.1",
        "RIVERGUARD_BROKER__PORT": str(own_broker.port),
        "RIVERGUARD_DATA_DIR": str(data_dir),
    }.items():
        monkeypatch.setenv(name, value)
    return data_dir


@contextlib.asynccontextmanager
async def serving(sites: list[ServedSite], config: Config) -> AsyncIterator[HealthServer]:
    """The sites run as ``riverguard edge`` runs them, with their HTTP port, for the block."""
    stop = asyncio.Event()

    async def run_all() -> None:
        async with asyncio.TaskGroup() as tg:
            for site in sites:
                tg.create_task(site.run(config, stop), name=f"test.edge[{site.id}]")

    server = HealthServer(sites, 0)
    server.start()
    try:
        async with background(run_all(), "test.edge-sites") as task:
            yield server
            stop.set()
            await asyncio.wait_for(task, 10)
    finally:
        await asyncio.to_thread(server.stop)


def _ready(site: ServedSite) -> bool:
    return site.agent is not None and site.agent.ready.is_set()


def _restarts(site: ServedSite) -> float:
    return site.metrics.registry.get_sample_value("riverguard_edge_agent_restarts_total") or 0.0


def _rejected(site: ServedSite, reason: str) -> float:
    value = site.metrics.registry.get_sample_value(
        "riverguard_edge_rejected_total", {"reason": reason}
    )
    return value or 0.0


async def _relays(broker: Broker, site: str, seq: int) -> Event:
    """A fence report of ``site`` published now comes out on that site's events topic."""
    events = topics.events(site)
    async with (
        recording(broker.settings("hub"), events) as hub_view,
        publisher(broker.settings("sim")) as device,
    ):
        report = json.dumps(fence_report(seq, "z1"))
        await device.publish(topics.field_report(site, "fence", FENCES[site]), report, qos=1)
        [payload] = await hub_view.wait_count(events, 1)
    return Event.model_validate_json(payload)


def test_several_sites_need_each_its_own_login_in_the_file(
    own_broker: Broker, edge_env: Path, tmp_path: Path
) -> None:
    only_bridge = _logins_file(
        tmp_path / "l.json", own_broker, {f"edge-{BRIDGE}": "edge-" + BRIDGE}
    )
    with pytest.raises(SitesRefused, match=f"no password for edge-{WHARF}"):
        settings_for_sites([BRIDGE, WHARF], only_bridge)
    with pytest.raises(SitesRefused, match="named twice"):
        settings_for_sites([BRIDGE, BRIDGE], _own_logins(own_broker, tmp_path / "o.json"))
    (tmp_path / "bad.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(SitesRefused, match="not a JSON object"):
        settings_for_sites([BRIDGE], tmp_path / "bad.json")


@pytest.mark.parametrize(
    "shared",
    [
        {
            "RIVERGUARD_FIELD_BROKER__USERNAME": "edge-field",
            "RIVERGUARD_FIELD_BROKER__PASSWORD": "x",
        },
        {"RIVERGUARD_BROKER__TLS": "true", "RIVERGUARD_BROKER__CERTFILE": "{logins}"},
        {"RIVERGUARD_OUTBOX_PATH": "/var/lib/riverguard/outbox.sqlite3"},
        {"RIVERGUARD_AUDIO_BASE_URL": "http://10.0.0.2:9100"},
    ],
)
def test_what_one_site_must_own_is_not_shared_by_the_sites_of_a_process(
    own_broker: Broker, edge_env: Path, monkeypatch: pytest.MonkeyPatch, shared: dict[str, str]
) -> None:
    logins = _own_logins(own_broker, edge_env.parent / "l.json")
    for name, value in shared.items():
        # Any readable file passes for the certificate: refused before it is used.
        monkeypatch.setenv(name, value.format(logins=logins))
    setting = next(iter(shared)).split("__", maxsplit=1)[0]
    if setting == "RIVERGUARD_BROKER":
        setting = "RIVERGUARD_BROKER__CERTFILE"
    with pytest.raises(SitesRefused, match=f"{setting}.* would be shared"):
        settings_for_sites([BRIDGE, WHARF], logins)


async def test_a_site_whose_outbox_cannot_open_is_retried_alone_while_the_others_relay(
    own_broker: Broker, edge_env: Path, tmp_path: Path, example_config: Config
) -> None:
    settings = settings_for_sites([BRIDGE, WHARF], _own_logins(own_broker, tmp_path / "l.json"))
    # The wharf's outbox file is a directory: SQLite cannot open it.
    blocked = edge_env / f"edge-{WHARF}" / "outbox.sqlite3"
    blocked.mkdir(parents=True)
    bridge, wharf = sites = [ServedSite(s) for s in settings]
    async with serving(sites, example_config) as http:
        await wait_for(lambda: _ready(bridge), what="the bridge's edge ready")
        await wait_for(lambda: _restarts(wharf) >= 1, what="the wharf's edge failed")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http.port}") as client:
            failed = await client.get(f"/sites/{WHARF}/healthz")
            assert (503, False) == (failed.status_code, failed.json()["broker"])
            assert "outbox" in failed.text or "database" in failed.text, failed.text
            assert 200 == (await client.get(f"/sites/{BRIDGE}/healthz")).status_code
            assert 503 == (await client.get("/healthz")).status_code
        assert BRIDGE == (await _relays(own_broker, BRIDGE, 1)).site
        # Mended, the wharf comes back by itself (after its backoff), the bridge untouched.
        bridge_agent = bridge.agent
        shutil.rmtree(blocked)
        await wait_for(lambda: _ready(wharf), timeout=15, what="the wharf's edge back")
        assert WHARF == (await _relays(own_broker, WHARF, 1)).site
        assert bridge_agent is bridge.agent
        assert 0 == _restarts(bridge)


async def test_garbage_from_one_sites_devices_is_counted_there_and_stops_no_site(
    own_broker: Broker, edge_env: Path, tmp_path: Path, example_config: Config
) -> None:
    settings = settings_for_sites([BRIDGE, WHARF], _own_logins(own_broker, tmp_path / "l.json"))
    bridge, wharf = sites = [ServedSite(s) for s in settings]
    async with serving(sites, example_config) as http:
        await wait_for(lambda: _ready(bridge) and _ready(wharf), what="both edges ready")
        wharf_fence = topics.field_report(WHARF, "fence", FENCES[WHARF])
        async with publisher(own_broker.settings("sim")) as device:
            for garbage in (b"{not json", b"\xff\xfe", b"[]", json.dumps({"seq": "x"}).encode()):
                await device.publish(wharf_fence, garbage, qos=1)
        await wait_for(lambda: _rejected(wharf, "malformed_json") >= 2, what="garbage rejected")
        assert 0 == _rejected(bridge, "malformed_json")
        assert BRIDGE == (await _relays(own_broker, BRIDGE, 7)).site
        assert WHARF == (await _relays(own_broker, WHARF, 7)).site
        assert 0 == _restarts(wharf)
        # The process's /metrics tells the sites apart.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http.port}") as client:
            metrics = (await client.get("/metrics")).text
        wharf_line = re.search(
            rf'riverguard_edge_rejected_total{{reason="malformed_json",site="{WHARF}"}} (\S+)',
            metrics,
        )
        assert wharf_line is not None, metrics
        assert float(wharf_line.group(1)) >= 2
        assert f'riverguard_edge_rejected_total{{reason="malformed_json",site="{BRIDGE}"}} 0.0' in (
            metrics
        )


@pytest.fixture
def two_site_process(own_broker: Broker, tmp_path: Path) -> Iterator[tuple[ManagedProcess, int]]:
    port = free_port()
    env = {
        **os.environ,
        "RIVERGUARD_CONFIG": str(EXAMPLE_CONFIG),
        "RIVERGUARD_BROKER__HOST": "127.0.0.1",
        "RIVERGUARD_BROKER__PORT": str(own_broker.port),
        "RIVERGUARD_DATA_DIR": str(tmp_path / "edges"),
        "RIVERGUARD_METRICS_PORT": str(port),
        "RIVERGUARD_LOG_JSON": "true",
    }
    logins = _own_logins(own_broker, tmp_path / "logins.json")
    argv = ["edge", "--site", BRIDGE, "--site", WHARF, "--logins", str(logins)]
    process = riverguard_process("edges", argv, env, tmp_path / "edges.log")
    process.start()
    yield process, port
    process.stop()


async def test_riverguard_edge_serves_two_sites_each_as_its_own_broker_login(
    own_broker: Broker, two_site_process: tuple[ManagedProcess, int], tmp_path: Path
) -> None:
    process, port = two_site_process
    statuses = [topics.edge_status(site) for site in (BRIDGE, WHARF)]
    async with recording(own_broker.settings("observer"), *statuses) as seen:

        def online(site: str) -> bool:
            said = seen.on(topics.edge_status(site))
            return bool(said) and EdgeStatus.model_validate_json(said[-1]).online

        try:
            await wait_for(lambda: online(BRIDGE) and online(WHARF), what="both sites online")
        except TimeoutError:
            raise AssertionError(process.log_tail()) from None
    # Each site's uplink and field side connected with the site's own login and client ids.
    broker_log = own_broker.server.process.log_path.read_text(encoding="utf-8")
    for site in (BRIDGE, WHARF):
        for client_id in (f"edge-{site}", f"edge-{site}-field"):
            login = rf" as {client_id} \([^)]*u'edge-{site}'\)"
            assert re.search(login, broker_log), f"{client_id} not as edge-{site}: {broker_log}"
        assert (tmp_path / "edges" / f"edge-{site}" / "outbox.sqlite3").exists()
    assert WHARF == (await _relays(own_broker, WHARF, 3)).site
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        everyone = await http.get("/healthz")
        assert 200 == everyone.status_code
        assert {BRIDGE, WHARF} == set(everyone.json()["sites"])
        wharf = await http.get(f"/sites/{WHARF}/healthz")
        assert (200, WHARF) == (wharf.status_code, wharf.json()["site"])
        assert 404 == (await http.get("/sites/nowhere/healthz")).status_code
        assert 404 == (await http.get(f"/audio/{'0' * 64}.wav")).status_code
        own_metrics = (await http.get(f"/sites/{WHARF}/metrics")).text
        assert "riverguard_edge_broker_connects_total 1.0" in own_metrics


async def test_a_site_given_another_sites_password_is_refused_by_the_broker_and_alone(
    own_broker: Broker, edge_env: Path, example_config: Config
) -> None:
    """A site logs in as itself only: with the bridge's password it is not let in as the
    wharf, and the bridge's own agent is not disturbed."""
    swapped = _logins_file(
        edge_env.parent / "l.json",
        own_broker,
        {f"edge-{BRIDGE}": f"edge-{BRIDGE}", f"edge-{WHARF}": f"edge-{BRIDGE}"},
    )
    bridge, wharf = sites = [ServedSite(s) for s in settings_for_sites([BRIDGE, WHARF], swapped)]
    async with serving(sites, example_config) as http:
        await wait_for(lambda: _ready(bridge), what="the bridge's edge ready")
        assert BRIDGE == (await _relays(own_broker, BRIDGE, 11)).site
        broker_log = own_broker.server.process.log_path

        def refusals() -> int:
            return broker_log.read_text(encoding="utf-8").count("disconnected, not authorised")

        # Both of the wharf's sides (uplink and field), refused at the door.
        await wait_for(lambda: refusals() >= 2, what="the broker refusing the wharf")
        assert f" as edge-{WHARF}" not in broker_log.read_text(encoding="utf-8")
        assert not _ready(wharf)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http.port}") as client:
            assert 503 == (await client.get(f"/sites/{WHARF}/healthz")).status_code
