"""deploy/ as shipped: systemd units that systemd accepts, with restarts and the order
broker -> store -> hub, and a central broker configuration that Mosquitto runs: TLS
with a client certificate of the deployment's CA, or no connection."""

from __future__ import annotations

import asyncio
import configparser
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest
from pydantic import SecretStr

from riverguard import broker_logins, certs
from riverguard.cli import EXIT_CONFIG
from riverguard.mqtt import BrokerSettings, make_client
from riverguard.settings import REPO_ROOT
from riverguard.testing import wait_for
from tests.deployment import DEPLOY, MOSQUITTO, CentralBroker

UNITS = ["riverguard-hub.service", "riverguard-edge@.service"]
DROP_INS = ["mosquitto.service.d", "influxdb.service.d", "postgresql@.service.d"]
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read(DEPLOY / "systemd" / name, encoding="utf-8")
    return parser


@pytest.mark.parametrize("name", UNITS)
def test_units_restart_on_failure_but_not_on_unusable_settings(name: str) -> None:
    service = unit(name)["Service"]
    assert "on-failure" == service["Restart"]
    assert 2 == int(service["RestartSec"])
    assert str(EXIT_CONFIG) == service["RestartPreventExitStatus"]
    assert "0" == unit(name)["Unit"]["StartLimitIntervalSec"]


@pytest.mark.parametrize("drop_in", DROP_INS)
def test_the_broker_and_stores_restart_forever_too(drop_in: str) -> None:
    parser = unit(f"{drop_in}/riverguard.conf")
    assert "on-failure" == parser["Service"]["Restart"]
    assert "2" == parser["Service"]["RestartSec"]
    assert "0" == parser["Unit"]["StartLimitIntervalSec"]


def test_the_hub_starts_after_its_broker_and_stores() -> None:
    after = unit("riverguard-hub.service")["Unit"]["After"].split()
    wants = unit("riverguard-hub.service")["Unit"]["Wants"].split()
    for needed in ("mosquitto.service", "influxdb.service", "postgresql.service"):
        assert needed in after
    assert "mosquitto.service" in wants
    assert "mosquitto.service" in unit("riverguard-edge@.service")["Unit"]["After"].split()


def verify(directory: Path, *names: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", *names],
        cwd=directory,
        # Units and drop-ins are looked up here first, then in the system's folders.
        env={"SYSTEMD_UNIT_PATH": f"{directory}:", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    """The units and drop-ins, with /opt/riverguard pointing at this checkout (systemd
    checks that ExecStart exists)."""
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze is not installed")
    for path in (DEPLOY / "systemd").rglob("*"):
        target = tmp_path / path.relative_to(DEPLOY / "systemd")
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            text = path.read_text(encoding="utf-8").replace("/opt/riverguard", str(REPO_ROOT))
            target.write_text(text, encoding="utf-8")
    # An instance of the template, as systemctl would start it.
    shutil.copy(tmp_path / "riverguard-edge@.service", tmp_path / "riverguard-edge@site.service")
    for debian in ("mosquitto.service", "influxdb.service"):
        if Path("/lib/systemd/system", debian).exists():
            shutil.copy(Path("/lib/systemd/system", debian), tmp_path / debian)
    return tmp_path


# Also verifies Debian's own mosquitto and influxdb units, whose ExecStart must be installed.
@pytest.mark.integration
def test_systemd_accepts_the_units_and_drop_ins_without_a_warning(unit_dir: Path) -> None:
    names = ["riverguard-hub.service", "riverguard-edge@site.service"]
    names += [
        name for name in ("mosquitto.service", "influxdb.service") if (unit_dir / name).exists()
    ]
    done = verify(unit_dir, *names)
    assert 0 == done.returncode, done.stderr
    assert "" == done.stderr.strip()


def test_the_verification_sees_a_broken_setting(unit_dir: Path) -> None:
    """The check above can fail: systemd only warns on a bad value, and the warning counts."""
    path = unit_dir / "riverguard-hub.service"
    path.write_text(
        path.read_text(encoding="utf-8").replace("RestartSec=2", "RestartSec=soon"),
        encoding="utf-8",
    )
    assert "Failed to parse sec value" in verify(unit_dir, "riverguard-hub.service").stderr


# --- the central broker --------------------------------------------------------

SITE = "danshui-bridge"
EDGE = f"edge-{SITE}"


@asynccontextmanager
async def central_broker(tmp_path: Path, tls: Path) -> AsyncIterator[CentralBroker]:
    """deploy/mosquitto/central.conf with the logins of ``riverguard broker-logins``."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    access = tmp_path / "access"
    broker_logins.write(REPO_ROOT / "examples" / "danshui.toml", access, devices=False)
    broker = CentralBroker(tmp_path / "broker", tls, access)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def client_tls(tls: Path, cert: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls / "ca.crt")
    if cert is not None:
        context.load_cert_chain(cert.with_suffix(".crt"), cert.with_suffix(".key"))
    return context


async def connects(
    port: int,
    context: ssl.SSLContext | None,
    password: str,
    hostname: str = "localhost",
    timeout: float = 10,
) -> bool:
    client = aiomqtt.Client(
        hostname, port, username=EDGE, password=password, tls_context=context, timeout=timeout
    )
    try:
        async with asyncio.timeout(20):
            async with client:
                return True
    except (aiomqtt.MqttError, ssl.SSLError, OSError):
        return False


async def refused_with(broker: CentralBroker, context: ssl.SSLContext | None, line: str) -> None:
    """The client does not get in, and the broker's log says why. (paho notices a refusal
    only when its own timeout ends, hence the short one; the log line is the proof.)"""
    host = "127.0.0.1" if context is None else "localhost"
    assert not await connects(broker.tls_port, context, broker.logins[EDGE], host, 2)
    await wait_for(lambda: line in broker.log(), what=f"broker log line {line!r}")


@pytest.mark.integration
async def test_the_central_broker_takes_tls_with_a_client_certificate_only(
    tmp_path: Path,
) -> None:
    tls, other = tmp_path / "tls", tmp_path / "other"
    certs.make_all(tls, certs.plan(["localhost", "127.0.0.1"], [(SITE, [])]))
    certs.make_all(other, certs.plan([], [(SITE, [])]))
    async with central_broker(tmp_path, tls) as broker:
        password = broker.logins[EDGE]
        edge = client_tls(tls, tls / EDGE)
        assert await connects(broker.tls_port, edge, password)
        # Our own client, as an edge's settings configure it, with the edge's client id.
        settings = BrokerSettings(
            host="localhost",
            port=broker.tls_port,
            username=EDGE,
            password=SecretStr(password),
            tls=True,
            ca_file=tls / "ca.crt",
            certfile=tls / f"{EDGE}.crt",
            keyfile=tls / f"{EDGE}.key",
        )
        async with asyncio.timeout(20), make_client(settings, EDGE) as client:
            assert client.connected
        # On the machine, plain text on loopback.
        assert await connects(broker.plain_port, None, password, "127.0.0.1")
        # No client certificate, one of another CA, plain text on the TLS port: refused.
        await refused_with(broker, client_tls(tls, None), "did not return a certificate")
        await refused_with(broker, client_tls(tls, other / EDGE), "certificate verify failed")
        await refused_with(broker, None, "wrong version number")
        # The access lists apply on the TLS listener: a wrong password is refused.
        assert not await connects(broker.tls_port, edge, "not-the-password", timeout=2)
        await wait_for(lambda: "not authorised" in broker.log(), what="refused login logged")
