"""A PostgreSQL server of the tests' own: Debian's ``initdb`` and ``postgres`` binaries, a
free port on loopback, a temporary directory, stopped by its PID and removed afterwards.

Our own code rather than pytest-postgresql's ``postgresql_proc``: that runs ``initdb`` and
``pg_ctl`` as the current user, and both refuse to run as root, which is how ``scripts/test``
runs on a fresh machine. Here, under root, the server runs as the ``postgres`` user that
Debian's ``postgresql-common`` creates. ``postgres`` is started directly rather than through
``pg_ctl start`` (which detaches it) so that the server is our child and is stopped by the
PID we hold; readiness is read from ``postmaster.pid`` as ``pg_ctl -w`` reads it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from riverguard.services import ServiceError, free_port

# Debian installs each major version's server under its own directory.
DEBIAN_SERVERS = Path("/usr/lib/postgresql")
TRUST_ON_LOOPBACK = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
# postmaster.pid's eighth line, once the server accepts connections (PostgreSQL >= 10).
READY = "ready"


def server_binaries() -> Path:
    """The ``bin`` directory of the newest PostgreSQL server Debian installed."""
    found = [path.parent for path in DEBIAN_SERVERS.glob("*/bin/postgres")]
    if not found:
        raise ServiceError(f"no PostgreSQL server under {DEBIAN_SERVERS}; run scripts/setup")
    return max(found, key=lambda bin_dir: [int(part) for part in bin_dir.parent.name.split(".")])


def _as_server_user() -> dict[str, Any]:
    # initdb and postgres refuse to run as root: as root, run them as "postgres".
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


class PostgresServer:
    """One PostgreSQL cluster: ``initdb`` into a fresh directory, then ``postgres``.

    Not under pytest's temporary folders: those are private to the user running the tests,
    and under root the server runs as another user.
    """

    def __init__(self, user: str = "postgres", password: str | None = None) -> None:
        self.bin_dir = server_binaries()
        self.user = user
        self.password = password
        self.host = "127.0.0.1"
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="riverguard-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.hand_over(self.directory)

    def hand_over(self, *paths: Path) -> None:
        """Let the server's user own ``paths`` (its directory, its TLS key and certificate)."""
        if os.geteuid() == 0:
            for path in paths:
                shutil.chown(path, "postgres", "postgres")

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server, as its superuser."""
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    def start(self, settings: str = "", hba: str = TRUST_ON_LOOPBACK, timeout: float = 60) -> None:
        """Create the cluster, add ``settings`` to its postgresql.conf, serve ``hba``."""
        argv = [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", self.user]
        argv += ["--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"]
        if self.password is None:
            argv.append("--auth=trust")
        else:
            password_file = self.directory / "password"
            password_file.write_text(self.password, encoding="utf-8")
            self.hand_over(password_file)
            argv += [f"--pwfile={password_file}", "--auth=scram-sha-256"]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, **_as_server_user()
        )
        if done.returncode != 0:
            raise ServiceError(f"initdb failed: {done.stderr}")
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            # Durability is not what the tests are about; fsync off keeps them quick.
            conf.write(
                f"listen_addresses = '{self.host}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.directory}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                f"{settings}\n"
            )
        (self.data / "pg_hba.conf").write_text(hba, encoding="utf-8")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.bin_dir / "postgres"), "-D", str(self.data)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                start_new_session=True,
                **_as_server_user(),
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process is None or self.process.poll() is not None:
                raise ServiceError(f"postgres exited during start-up:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ServiceError(f"postgres not ready after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        try:
            lines = (self.data / "postmaster.pid").read_text(encoding="utf-8").splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and READY == lines[7].strip()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop this server (by its PID: a fast shutdown) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def fresh_database(server: PostgresServer) -> AsyncIterator[str]:
    """A new database on ``server`` (its SQLAlchemy URL), dropped when the block ends."""
    name = f"riverguard_test_{secrets.token_hex(6)}"
    # CREATE/DROP DATABASE cannot run inside a transaction.
    admin = create_async_engine(server.url(), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.url(name)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
