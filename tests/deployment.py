"""The files of deploy/ run as shipped, on free loopback ports in a test's folder.

``Nginx``: deploy/nginx/riverguard.conf inside a main configuration of its
own (pid file, logs, temp folders: nothing of the system's). ``CentralBroker``:
Mosquitto with deploy/mosquitto/central.conf, its system paths and ports
replaced, with the files of ``riverguard broker-logins`` (``logins``: every
password, the devices' too); ``shipped_mosquitto_conf``, any of deploy/mosquitto/
so replaced. ``env_file``: the
settings examples of deploy/env/ as a dictionary.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
from pathlib import Path

from riverguard import broker_logins, clientid_guard
from riverguard.broker_acl import device_username
from riverguard.provisioning import DeviceLoginStore
from riverguard.services import ManagedProcess, free_port, port_accepts
from riverguard.settings import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Nginx:
    """nginx in front of a hub on ``hub_port``, with the ``hub-https`` files of ``tls``."""

    def __init__(self, directory: Path, hub_port: int, tls: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.https_port, self.http_port = free_port(), free_port()
        site = (DEPLOY / "nginx" / "riverguard.conf").read_text(encoding="utf-8")
        for word, value in {
            "@LISTEN@": f"127.0.0.1:{self.https_port}",
            "@HTTP_LISTEN@": f"127.0.0.1:{self.http_port}",
            "@SERVER_NAME@": "localhost",
            "@TLS_CERT@": str(tls / "hub-https.crt"),
            "@TLS_KEY@": str(tls / "hub-https.key"),
            "@HUB@": f"127.0.0.1:{hub_port}",
        }.items():
            site = site.replace(word, value)
        if re.search(r"@[A-Z_]+@", site):
            raise AssertionError("a placeholder left in deploy/nginx/riverguard.conf")
        (directory / "riverguard.conf").write_text(site, encoding="utf-8")
        temp = "\n".join(
            f"    {kind}_temp_path {directory}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # As root, workers would switch to "nobody", which cannot enter the test's folder.
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        (directory / "nginx.conf").write_text(
            f"""{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {directory}/access.log;
{temp}
    include {directory}/riverguard.conf;
}}
""",
            encoding="utf-8",
        )
        self.process = ManagedProcess(
            "nginx",
            # -e: the error log before the configuration is read (not /var/log/nginx).
            [
                *(NGINX, "-e", f"{directory}/error.log", "-p", str(directory)),
                *("-c", f"{directory}/nginx.conf", "-g", "daemon off;"),
            ],
            directory / "nginx.out",
        )

    @staticmethod
    def installed() -> bool:
        return Path(NGINX).exists()

    def start(self) -> None:
        self.process.start()
        self.process.wait_until(lambda: port_accepts(self.https_port), 15, "listening")

    def stop(self) -> None:
        self.process.stop()

    def error_log(self) -> str:
        return (self.directory / "error.log").read_text(encoding="utf-8", errors="replace")


def shipped_mosquitto_conf(
    conf: str,
    directory: Path,
    access: Path,
    certs_dir: Path,
    listeners: dict[str, str] | None = None,
) -> Path:
    """deploy/mosquitto/CONF as shipped, written into ``directory``: its system paths
    replaced by the test's files (``riverguard broker-logins``' in ``access``,
    ``riverguard certs``' in ``certs_dir``), ``listeners`` lines replaced, run as us."""
    text = (DEPLOY / "mosquitto" / conf).read_text(encoding="utf-8")
    for old, new in {
        # The files first, then the folders they are in.
        "/usr/local/lib/riverguard/clientid_guard.so": str(clientid_guard.plugin_path()),
        "/etc/mosquitto/bound-client-ids": str(access / broker_logins.BOUND_IDS),
        "/var/lib/mosquitto/dynamic-security.json": str(access / broker_logins.DYNSEC),
        "/run/mosquitto/": f"{directory}/",
        "/var/lib/mosquitto/": f"{directory}/",
        "/etc/mosquitto/certs/": f"{certs_dir}/",
        **(listeners or {}),
        "log_dest file /var/log/mosquitto/mosquitto.log": "log_dest stderr",
    }.items():
        text = text.replace(old, new)
    settings = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    if re.search(r"/etc/|/var/|/run/|/usr/local/", settings):
        raise AssertionError(f"a system path left in deploy/mosquitto/{conf}")
    path = directory / conf
    # Started as root, Mosquitto would switch to the "mosquitto" user.
    path.write_text(text + f"\nuser {getpass.getuser()}\n", encoding="utf-8")
    return path


class CentralBroker:
    """Mosquitto with deploy/mosquitto/central.conf: ``plain_port`` on loopback,
    ``tls_port`` (loopback here; every address as shipped) with client certificates,
    the logins and access lists ``riverguard broker-logins`` wrote into ``access``.
    """

    def __init__(self, directory: Path, tls: Path, access: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.plain_port, self.tls_port = free_port(), free_port()
        self.log_path = directory / "mosquitto.log"
        self.logins: dict[str, str] = json.loads(
            (access / broker_logins.LOGINS).read_text(encoding="utf-8")
        )
        # The devices' passwords, from their store beside it.
        store = DeviceLoginStore(access / broker_logins.DEVICE_LOGINS)
        self.logins |= {device_username(d): p for d, p in store.read().devices.items()}
        self.conf_path = shipped_mosquitto_conf(
            "central.conf",
            directory,
            access,
            tls,
            listeners={
                "listener 1883 127.0.0.1": f"listener {self.plain_port} 127.0.0.1",
                "listener 8883": f"listener {self.tls_port} 127.0.0.1",
            },
        )
        self.process = ManagedProcess(
            "mosquitto", [MOSQUITTO, "-c", str(self.conf_path)], self.log_path
        )

    def start(self) -> None:
        self.process.start()
        self.process.wait_until(lambda: port_accepts(self.tls_port), 15, "listening")

    def stop(self) -> None:
        self.process.stop()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def env_file(name: str) -> dict[str, str]:
    """The settings of deploy/env/NAME: its uncommented KEY=VALUE lines."""
    values: dict[str, str] = {}
    for line in (DEPLOY / "env" / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values
