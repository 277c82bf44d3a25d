"""A remote PostgreSQL: the store connects with a password from the settings and libpq's
sslmode, against a PostgreSQL of the test's own that takes TLS connections only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from hub.errors import StoreError
from hub.settings import HubSettings
from hub.store import Store
from riverguard import certs
from riverguard.mqtt import BrokerSettings
from tests.postgres import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

USER, PASSWORD = "riverguard", "pg-s3cret"
BROKER = BrokerSettings(username="hub", password=SecretStr("pw"))


@dataclass
class SecurePostgres:
    port: int
    ca_file: Path
    other_ca_file: Path


@pytest.fixture(scope="module")
def secure_postgres() -> Iterator[SecurePostgres]:
    server = PostgresServer(USER, PASSWORD)
    try:
        tls = server.directory / "tls"
        certs.make_all(tls, [certs.Request("postgres", True, False, ("localhost",))])
        certs.load_or_create_ca(server.directory / "other-tls")
        server.hand_over(tls, *tls.iterdir())
        server.start(
            settings=f"ssl = on\nssl_cert_file = '{tls}/postgres.crt'\n"
            f"ssl_key_file = '{tls}/postgres.key'\n",
            hba="local all all scram-sha-256\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256\n"
            "hostnossl all all 127.0.0.1/32 reject\n",
        )
        yield SecurePostgres(server.port, tls / "ca.crt", server.directory / "other-tls" / "ca.crt")
    finally:
        server.stop()


def settings(pg: SecurePostgres, query: str, host: str = "localhost", **values: Any) -> HubSettings:
    url = f"postgresql+asyncpg://{USER}@{host}:{pg.port}/postgres?{query}"
    values.setdefault("database_password", PASSWORD)
    return HubSettings(broker=BROKER, database_url=url, **values)


async def open_store(hub: HubSettings) -> Store:
    url = hub.store_url()
    return await Store.open(url.url, url.connect_args)


async def test_the_store_connects_with_verify_full_and_the_password_from_the_settings(
    secure_postgres: SecurePostgres,
) -> None:
    hub = settings(secure_postgres, "sslmode=verify-full", database_ca_file=secure_postgres.ca_file)
    assert PASSWORD not in str(hub.store_url().url)
    store = await open_store(hub)
    try:
        async with store.engine.connect() as conn:
            encrypted = await conn.scalar(
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
            tables = await conn.scalar(text("SELECT count(*) FROM alembic_version"))
        assert encrypted is True
        assert 1 == tables  # migrated
    finally:
        await store.close()


async def test_sslrootcert_in_the_url_does_what_the_ca_file_setting_does(
    secure_postgres: SecurePostgres,
) -> None:
    query = f"sslmode=verify-full&sslrootcert={secure_postgres.ca_file}"
    store = await open_store(settings(secure_postgres, query))
    await store.close()


async def test_verify_ca_accepts_an_address_the_certificate_does_not_name_verify_full_not(
    secure_postgres: SecurePostgres,
) -> None:
    ca = {"database_ca_file": secure_postgres.ca_file}
    store = await open_store(settings(secure_postgres, "sslmode=verify-ca", "127.0.0.1", **ca))
    await store.close()
    with pytest.raises(StoreError, match=r"IP address mismatch|doesn't match"):
        await open_store(settings(secure_postgres, "sslmode=verify-full", "127.0.0.1", **ca))


async def test_a_server_certificate_of_another_ca_is_refused(
    secure_postgres: SecurePostgres,
) -> None:
    hub = settings(
        secure_postgres, "sslmode=verify-full", database_ca_file=secure_postgres.other_ca_file
    )
    with pytest.raises(StoreError, match="CERTIFICATE_VERIFY_FAILED"):
        await open_store(hub)


async def test_a_wrong_password_and_plain_text_are_refused(
    secure_postgres: SecurePostgres,
) -> None:
    with pytest.raises(StoreError, match="password authentication failed"):
        await open_store(settings(secure_postgres, "sslmode=require", database_password="nope"))
    with pytest.raises(StoreError, match=r"no encryption|rejects connection"):
        await open_store(settings(secure_postgres, "sslmode=disable"))
