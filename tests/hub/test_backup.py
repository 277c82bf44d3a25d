"""The backup and restore commands of docs/deploy.md, run as written against real stores."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.store import Store
from riverguard.services import Influxd, free_port
from tests.hub.conftest import MakeSettings, run_hub
from tests.postgres import PostgresServer, fresh_database

pytestmark = pytest.mark.integration


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(part) for part in argv], capture_output=True, text=True, timeout=120, check=False
    )
    assert 0 == done.returncode, f"{argv}: {done.stderr}"
    return done


async def test_sqlite_backup_of_a_running_hub_restores_its_records(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 command is not installed")
    settings = make_settings()
    backup = tmp_path / "hub-backup.db"
    async with run_hub(settings) as hub:
        await hub.token("officer-li")  # an audited login, committed before the backup
        run("sqlite3", settings.data_dir / "hub.db", f".backup '{backup}'")
    with closing(sqlite3.connect(backup)) as db:
        logins = db.execute(
            "SELECT count(*) FROM audit WHERE username = 'officer-li' AND action = 'login'"
        ).fetchone()
        version = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert logins[0] >= 1
    assert version[0]
    # The restored file is a store the hub opens as it is.
    store = await Store.open(f"sqlite+aiosqlite:///{backup}")
    await store.close()


async def test_postgresql_dump_restores_into_a_database_the_hub_opens(
    postgres: PostgresServer,
) -> None:
    # The server's own pg_dump and pg_restore: the same version as the server.
    login = f"-h {postgres.host} -p {postgres.port} -U {postgres.user}"
    async with fresh_database(postgres) as source_url, fresh_database(postgres) as target_url:
        source = await Store.open(source_url)
        await source.close()
        dump = run(
            "sh", "-c", f"{postgres.bin_dir}/pg_dump {login} -Fc {source_url.rsplit('/', 1)[1]} | "
            f"{postgres.bin_dir}/pg_restore {login} --clean --if-exists "
            f"-d {target_url.rsplit('/', 1)[1]}",
        )  # fmt: skip
        assert "error" not in dump.stderr.lower()
        engine = create_async_engine(target_url)
        try:
            async with engine.connect() as conn:
                restored = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        finally:
            await engine.dispose()
        assert restored
        target = await Store.open(target_url)
        await target.close()


def _rpc_address(influxd: Influxd) -> str:
    conf = influxd.conf_path.read_text(encoding="utf-8")
    found = re.search(r'^bind-address = "([^"]+)"', conf, re.MULTILINE)
    assert found is not None
    return found.group(1)


def test_influxdb_backup_and_restore_keep_events_and_the_retention_policy(
    tmp_path: Path,
) -> None:
    influxd = Influxd(tmp_path / "influxd", free_port())
    influxd.start()
    try:

        def query(statement: str) -> str:
            response = httpx.post(
                f"{influxd.url}/query", data={"q": statement, "db": "riverguard"}, timeout=10
            )
            assert 200 == response.status_code, response.text
            return response.text

        query("CREATE RETENTION POLICY two_years ON riverguard DURATION 730d REPLICATION 1 DEFAULT")
        now = time.time_ns()
        written = httpx.post(
            f"{influxd.url}/write",
            params={"db": "riverguard"},
            content=f'events,site=s,device=d id="e1" {now - 10**9}\n'
            f'events,site=s,device=d id="e2" {now}\n',
            timeout=10,
        )
        assert 204 == written.status_code
        backup = tmp_path / "influx-backup"
        rpc = _rpc_address(influxd)
        run("influxd", "backup", "-portable", "-host", rpc, "-db", "riverguard", backup)
        query("DROP DATABASE riverguard")
        assert "e1" not in query('SELECT "id" FROM "events"')
        run("influxd", "restore", "-portable", "-host", rpc, "-db", "riverguard", backup)
        restored = query('SELECT "id" FROM "events"')
        assert '"e1"' in restored
        assert '"e2"' in restored
        policies = query("SHOW RETENTION POLICIES ON riverguard")
        assert re.search(r'\["two_years","17520h0m0s","[^"]+",1,true\]', policies), policies
    finally:
        influxd.stop()
