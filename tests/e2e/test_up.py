"""`riverguard up` brings the stack up, describes it in stack.json, and stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from riverguard.hub_session import HubSession
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.mqtt_client import MqttError
from riverguard.services import port_accepts
from riverguard.stack import Stack
from simulators.fleet_config import fleet_config
from tests.conftest import EXAMPLE_CONFIG

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited all the same.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


async def _connect(settings: BrokerSettings) -> None:
    async with make_client(settings):
        pass


@contextmanager
def _riverguard_up(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Any]]:
    """``riverguard up`` with ``args`` and the data dir ``tmp_path/rg``, and the stack.json
    it writes once its stack is up (its log if it dies first); killed if it outlives the
    test."""
    data_dir = tmp_path / "rg"
    log_path = tmp_path / "up.log"
    with log_path.open("w") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "riverguard", "up", *args, "--data-dir", str(data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            stack_json = data_dir / "stack.json"
            deadline = time.monotonic() + 120
            while not stack_json.exists():
                assert up.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "stack.json not written in 120 s"
                time.sleep(0.2)
            yield up, json.loads(stack_json.read_text())
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()


def test_up_writes_stack_json_and_sigterm_stops_every_child(tmp_path: Path) -> None:
    with _riverguard_up(tmp_path, "--no-sim") as (up, info):
        output = (tmp_path / "up.log").read_text()
        assert f"Console: {info['hub_url']}/" in output
        assert "officer-li" in output
        assert {"hub_url", "broker", "influx", "admin", "logins"} <= set(info)
        broker = info["broker"]
        assert {"host", "port", "tls_port", "ca_file", "username", "password"} == set(broker)
        assert port_accepts(broker["port"])
        # The TLS listener, as a remote site connects: the stack's CA, the host name checked.
        login = {"username": broker["username"], "password": broker["password"]}
        over_tls = BrokerSettings(
            host=broker["host"],
            port=broker["tls_port"],
            tls=True,
            ca_file=Path(broker["ca_file"]),
            **login,
        )
        asyncio.run(_connect(over_tls))
        plain = BrokerSettings(host=broker["host"], port=broker["tls_port"], **login)
        with pytest.raises(MqttError):
            asyncio.run(_connect(plain))
        assert 204 == httpx.get(f"{info['influx']['url']}/ping").status_code
        assert 200 == httpx.get(f"{info['hub_url']}/healthz").status_code
        for edge in info["edges"].values():
            assert 200 == httpx.get(edge["health_url"]).status_code
        assert "sim-speakers" not in info["processes"]  # --no-sim
        pids = list(info["processes"].values())
        assert all(_alive(pid) for pid in pids)

        up.send_signal(signal.SIGTERM)
        assert 0 == up.wait(60)
        assert [] == [pid for pid in pids if _alive(pid)]


def test_taken_usual_port_is_replaced_by_a_free_one(tmp_path: Path) -> None:
    """A port already in use (the machine's own broker, say) is not fought over."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = Stack(tmp_path, EXAMPLE_CONFIG, simulators=(), ports={"broker": port})
        assert port != stack.broker_port


def test_supervisor_restarts_a_component_that_died(stack: Stack) -> None:
    edge = stack.components["edge-xiyong-wharf"]
    old_pid = edge.process.pid
    edge.process.kill()
    now = time.monotonic()
    assert [] == stack.supervise_once(now)  # first sight: schedule, with a delay
    assert ["edge-xiyong-wharf"] == stack.supervise_once(now + 60)
    assert old_pid != edge.process.pid
    assert {"xiyong-wharf"} == stack.watch_edges({"xiyong-wharf"}, timeout=30)


def test_up_serves_a_generated_six_site_fleet_from_two_edge_processes(tmp_path: Path) -> None:
    """``riverguard up --edge-processes 2`` with ``sim fleet-config``'s output: every site's
    edge online, each site under its own login and data directory, its map at the hub."""
    config = tmp_path / "fleet.toml"
    config.write_text(fleet_config(6, 10), encoding="utf-8")
    data_dir = tmp_path / "rg"
    sites = [f"s{n:03d}" for n in range(1, 7)]
    argv = ["--no-sim", "--config", str(config), "--edge-processes", "2"]
    with _riverguard_up(tmp_path, *argv) as (up, info):
        edges = {name for name in info["processes"] if name.startswith("edge")}
        assert {"edges-1", "edges-2"} == edges
        assert sites == sorted(info["edges"])
        for site in sites:
            health = httpx.get(info["edges"][site]["health_url"])
            assert (200, site) == (health.status_code, health.json()["site"])
            assert (data_dir / f"edge-{site}" / "outbox.sqlite3").exists()
        # Each process holds the passwords of its own sites only, in a file of its own.
        logins = data_dir / "edge-logins"
        first = json.loads((logins / "edges-1.json").read_text())
        assert [f"edge-{site}" for site in sites[:3]] == sorted(first)
        assert (0o700, 0o600) == (
            logins.stat().st_mode & 0o777,
            (logins / "edges-1.json").stat().st_mode & 0o777,
        )
        admin = info["admin"]
        session = HubSession.login(info["hub_url"], admin["username"], admin["password"])
        listed = httpx.get(f"{info['hub_url']}/api/sites", auth=session).json()
        assert sites == [site["id"] for site in listed]
        assert all(site["map"] and site["map"]["bank"] for site in listed)
        assert all(len(zone["area"]) >= 3 for site in listed for zone in site["zones"])

        up.send_signal(signal.SIGTERM)
        assert 0 == up.wait(60)
        assert [] == [pid for pid in info["processes"].values() if _alive(pid)]


def test_supervisor_restarts_an_edge_process_of_several_sites_with_all_of_them(
    tmp_path: Path,
) -> None:
    config = tmp_path / "fleet.toml"
    config.write_text(fleet_config(4, 5), encoding="utf-8")
    stack = Stack(tmp_path / "rg", config, simulators=(), ports=None, edge_processes=2)
    try:
        stack.start()
        assert {"edges-1": ["s001", "s002"], "edges-2": ["s003", "s004"]} == stack.edge_groups()
        edges = stack.components["edges-1"]
        old_pid = edges.process.pid
        edges.process.kill()
        now = time.monotonic()
        assert [] == stack.supervise_once(now)
        assert ["edges-1"] == stack.supervise_once(now + 60)
        assert old_pid != edges.process.pid
        assert {"s001", "s002"} == stack.watch_edges({"s001", "s002"}, timeout=30)
    finally:
        stack.stop()
