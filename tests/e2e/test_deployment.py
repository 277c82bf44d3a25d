"""docs/deploy.md's "working alarm", with deploy/ as shipped, on one machine's loopback:

certificates from ``riverguard certs``; logins and access lists from
``riverguard broker-logins``; the central broker of
deploy/mosquitto/central.conf; ``riverguard hub`` and ``riverguard edge`` as processes with the
settings of deploy/env/ (ports and paths replaced); nginx with
deploy/nginx/riverguard.conf. A fence breach published as the document shows
(``mosquitto_pub`` with the device's certificate over TLS) becomes an alarm
read through nginx over HTTPS. The edge reaches the broker over TLS only.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from riverguard import broker_logins, certs
from riverguard.hub_session import HubSession
from riverguard.services import Influxd, ManagedProcess, free_port
from riverguard.settings import REPO_ROOT
from riverguard.testing import fence_report, wait_for
from tests.deployment import CentralBroker, Nginx, env_file

pytestmark = pytest.mark.integration

SITE, FENCE = "danshui-bridge", "db-fence-01"
CONFIG = REPO_ROOT / "examples" / "danshui.toml"


def component(name: str, argv: list[str], env: dict[str, str], log: Path) -> ManagedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("RIVERGUARD_")}
    return ManagedProcess(
        name, [sys.executable, "-m", "riverguard", *argv], log, env={**clean, **env}
    )


async def test_a_fence_breach_over_tls_becomes_an_alarm_read_through_nginx(
    tmp_path: Path, influxd: Influxd, influx_database: str
) -> None:
    if not (Nginx.installed() and shutil.which("mosquitto_pub")):
        pytest.skip("nginx and mosquitto_pub are needed (scripts/setup installs them)")
    tls = tmp_path / "tls"
    requests = certs.plan(["localhost", "127.0.0.1"], [(SITE, [])], devices=[(SITE, FENCE)])
    certs.make_all(tls, requests)
    access = tmp_path / "access"
    broker_logins.write(CONFIG, access, devices=True)
    broker = CentralBroker(tmp_path / "broker", tls, access)
    logins = broker.logins
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"officer-li": "officer-pw"}), encoding="utf-8")

    hub_port = free_port()
    nginx = Nginx(tmp_path / "nginx", hub_port, tls)
    public_url = f"https://localhost:{nginx.https_port}"
    hub_env = env_file("hub.env") | {
        "RIVERGUARD_CONFIG": str(CONFIG),
        "RIVERGUARD_USERS_FILE": str(users),
        "RIVERGUARD_HTTP_PORT": str(hub_port),
        "RIVERGUARD_PUBLIC_URL": public_url,
        "RIVERGUARD_BROKER__PORT": str(broker.plain_port),
        "RIVERGUARD_BROKER__PASSWORD": logins["hub"],
        "RIVERGUARD_INFLUX_URL": influxd.url,
        "RIVERGUARD_INFLUX_DATABASE": influx_database,
        "RIVERGUARD_DATA_DIR": str(tmp_path / "hub"),
        # Cheap hashes: the test logs in once; production keeps the defaults.
        "RIVERGUARD_ARGON2_TIME_COST": "1",
        "RIVERGUARD_ARGON2_MEMORY_KIB": "1024",
    }
    # The shipped example goes to the central broker on this machine, over loopback.
    assert "127.0.0.1" == hub_env["RIVERGUARD_BROKER__HOST"]
    edge_env = {key: value.replace("SITE", SITE) for key, value in env_file("edge.env").items()} | {
        "RIVERGUARD_CONFIG": str(CONFIG),
        "RIVERGUARD_BROKER__HOST": "localhost",
        "RIVERGUARD_BROKER__PORT": str(broker.tls_port),
        "RIVERGUARD_BROKER__CA_FILE": str(tls / "ca.crt"),
        "RIVERGUARD_BROKER__CERTFILE": str(tls / f"edge-{SITE}.crt"),
        "RIVERGUARD_BROKER__KEYFILE": str(tls / f"edge-{SITE}.key"),
        "RIVERGUARD_BROKER__PASSWORD": logins[f"edge-{SITE}"],
        "RIVERGUARD_HUB_URL": public_url,
        "RIVERGUARD_HUB_CA_FILE": str(tls / "ca.crt"),
        "RIVERGUARD_METRICS_PORT": str(free_port()),
        "RIVERGUARD_DATA_DIR": str(tmp_path / "edge"),
    }
    # The shipped example reaches the broker over TLS only.
    assert "true" == edge_env["RIVERGUARD_BROKER__TLS"]
    hub = component("hub", ["hub"], hub_env, tmp_path / "hub.log")
    edge = component("edge", ["edge", "--site", SITE], edge_env, tmp_path / "edge.log")

    broker.start()
    started: list[ManagedProcess | Nginx] = []
    try:
        for process in (hub, edge, nginx):
            process.start()
            started.append(process)
        trusted = ssl.create_default_context(cafile=tls / "ca.crt")
        async with httpx.AsyncClient(base_url=public_url, verify=trusted, timeout=10) as http:

            async def healthy() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_for(healthy, timeout=60, what="the hub healthy through nginx")
            # The edge's TLS session with the central broker, as the broker saw it.
            await wait_for(
                lambda: f"u'edge-{SITE}'" in broker.log(), timeout=30, what="the edge connected"
            )
            headers = (await HubSession.login_async(http, "officer-li", "officer-pw")).headers

            device = f"device-{SITE}-{FENCE}"
            published = subprocess.run(
                [
                    *("mosquitto_pub", "-h", "localhost", "-p", str(broker.tls_port)),
                    *("--cafile", str(tls / "ca.crt")),
                    *("--cert", str(tls / f"{device}.crt"), "--key", str(tls / f"{device}.key")),
                    *("-u", f"device-{FENCE}", "-P", logins[f"device-{FENCE}"], "-q", "1"),
                    *("-t", f"field/{SITE}/fence/{FENCE}"),
                    *("-m", json.dumps(fence_report(1, "z1"))),
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert 0 == published.returncode, published.stderr

            async def alarm_raised() -> bool:
                alarms = await http.get("/api/alarms", params={"site": SITE}, headers=headers)
                return any(alarm["site"] == SITE for alarm in alarms.json())

            try:
                await wait_for(alarm_raised, timeout=30, what="the alarm through nginx")
            except TimeoutError:
                pytest.fail(
                    f"no alarm.\nhub:\n{hub.log_tail()}\nedge:\n{edge.log_tail()}\n"
                    f"broker:\n{broker.log()[-3000:]}"
                )
    finally:
        for process in reversed(started):
            process.stop()
        broker.stop()
