"""A remote InfluxDB: a login (auth-enabled) over https:// with the deployment's private CA."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hub.errors import InfluxError
from hub.influx import Influx, http_client
from riverguard import certs
from riverguard.services import Influxd, ServiceError, free_port
from tests.hub.conftest import MakeSettings, run_hub

pytestmark = pytest.mark.integration

ADMIN, ADMIN_PASSWORD = "admin", "admin-pw"
# The hub's login, made as docs/deploy.md makes it: a user with ALL on its database only.
USER, PASSWORD = "riverguard", "s3cret:with@signs"
DATABASE = "riverguard_auth"
# The hub's own: the bare test lines of the other tests are not whole events.
HUB_DATABASE = "riverguard_hub"


@dataclass
class SecureInfluxd:
    url: str
    ca_file: Path


class _AuthInfluxd(Influxd):
    """influxd with ``auth-enabled`` and HTTPS, from a configuration of its own."""

    def __init__(self, directory: Path, tls: Path) -> None:
        super().__init__(directory, free_port(), DATABASE)
        self.tls = tls
        self.url = f"https://localhost:{self.port}"

    def write_config(self) -> None:
        super().write_config()
        text = self.conf_path.read_text(encoding="utf-8")
        text = text.replace(
            "  enabled = true\n",
            "  enabled = true\n  auth-enabled = true\n  https-enabled = true\n"
            f'  https-certificate = "{self.tls / "influx.crt"}"\n'
            f'  https-private-key = "{self.tls / "influx.key"}"\n',
        )
        self.conf_path.write_text(text, encoding="utf-8")

    def _verified(self) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=self.tls / "ca.crt"))

    def _pings(self) -> bool:
        try:
            with self._verified() as http:
                return http.get(f"{self.url}/ping").status_code == 204
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 30.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.process.start()
        self.process.wait_until(self._pings, timeout, "answering /ping")
        with self._verified() as http:
            # With no user yet, InfluxDB 1.x accepts exactly this statement unauthenticated.
            first = http.post(
                f"{self.url}/query",
                data={
                    "q": f"CREATE USER {ADMIN} WITH PASSWORD '{ADMIN_PASSWORD}' WITH ALL PRIVILEGES"
                },
            )
            # docs/deploy.md's statements, for both databases of these tests.
            database = http.post(
                f"{self.url}/query",
                data={
                    "q": f"CREATE USER {USER} WITH PASSWORD '{PASSWORD}'; "
                    + "; ".join(
                        f"CREATE DATABASE {name}; GRANT ALL ON {name} TO {USER}; "
                        f"CREATE RETENTION POLICY two_years ON {name} DURATION 730d "
                        "REPLICATION 1 DEFAULT"
                        for name in (DATABASE, HUB_DATABASE)
                    )
                },
                auth=(ADMIN, ADMIN_PASSWORD),
            )
        if first.status_code != 200 or database.status_code != 200 or "error" in database.text:
            raise ServiceError(f"influxd set-up refused: {first.text} {database.text}")


@pytest.fixture(scope="module")
def secure_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureInfluxd]:
    directory = tmp_path_factory.mktemp("secure-influxd")
    tls = directory / "tls"
    ca, _ = certs.load_or_create_ca(tls)
    certs.issue(ca, tls, certs.Request("influx", True, False, ("localhost",)))
    influxd = _AuthInfluxd(directory, tls)
    try:
        influxd.start()
        yield SecureInfluxd(influxd.url, tls / "ca.crt")
    finally:
        influxd.stop()


LINE = f'events,site=s,device=d,kind=heartbeat id="e1" {time.time_ns()}'


async def test_a_login_in_the_url_writes_and_reads_over_verified_https(
    secure_influxd: SecureInfluxd,
) -> None:
    host = secure_influxd.url.removeprefix("https://")
    quoted = httpx.URL(f"https://{host}").copy_with(username=USER, password=PASSWORD)
    async with http_client(secure_influxd.ca_file) as http:
        influx = Influx(http, str(quoted), DATABASE)
        # The password is not kept in the URL that errors and logs may show.
        assert PASSWORD not in influx.url
        await influx.write([LINE])
        rows = await influx.query('SELECT "id" FROM "events"')
    assert ["e1"] == [row["id"] for row in rows]


async def test_a_wrong_password_or_no_login_is_refused_by_influxdb(
    secure_influxd: SecureInfluxd,
) -> None:
    async with http_client(secure_influxd.ca_file) as http:
        wrong = Influx(http, secure_influxd.url, DATABASE, login=(USER, "nope"))
        with pytest.raises(InfluxError, match="401"):
            await wrong.write([LINE])
        anonymous = Influx(http, secure_influxd.url, DATABASE)
        with pytest.raises(InfluxError, match="401"):
            await anonymous.query('SELECT "id" FROM "events"')


async def test_an_influxdb_certificate_the_ca_file_does_not_vouch_for_is_refused(
    secure_influxd: SecureInfluxd, tmp_path: Path
) -> None:
    other, _ = certs.load_or_create_ca(tmp_path / "other")
    async with http_client(other.cert_path) as http:
        influx = Influx(http, secure_influxd.url, DATABASE, login=(USER, PASSWORD))
        with pytest.raises(InfluxError, match="CERTIFICATE_VERIFY_FAILED"):
            await influx.write([LINE])


async def test_the_hub_reads_events_from_a_secured_influxdb_with_its_settings(
    secure_influxd: SecureInfluxd, make_settings: MakeSettings
) -> None:
    settings = make_settings(
        influx_url=secure_influxd.url,
        influx_database=HUB_DATABASE,
        influx_username=USER,
        influx_password=PASSWORD,
        influx_ca_file=secure_influxd.ca_file,
    )
    async with run_hub(settings) as hub:
        health = (await hub.http.get("/healthz")).json()
        assert health["influx"] is True
        events = await hub.http.get("/api/events", headers=await hub.auth())
        assert 200 == events.status_code, events.text
