"""A real Mosquitto with one TLS listener, for the MQTT-over-TLS tests.

Its own small configuration (not ``mosquitto.conf``): a password file, one
TLS listener on loopback with the given certificate, and optionally client
certificates required. Certificates come from ``trustme``; the tests make the
bad ones (another CA, another host name, expired).
"""

from __future__ import annotations

import getpass
import secrets
from dataclasses import dataclass
from pathlib import Path

import trustme

from riverguard.mqtt import BrokerSettings
from riverguard.services import (
    ManagedProcess,
    ServiceError,
    free_port,
    port_accepts,
    write_password_file,
)


@dataclass
class TlsFiles:
    """PEM files written from trustme objects."""

    directory: Path
    ca: trustme.CA

    @property
    def ca_file(self) -> Path:
        return self._write("ca.pem", self.ca.cert_pem.bytes())

    def leaf(self, name: str, cert: trustme.LeafCert) -> tuple[Path, Path]:
        """(certificate chain, key) files of ``cert``, named ``name``."""
        chain = b"".join(pem.bytes() for pem in cert.cert_chain_pems)
        key = self._write(f"{name}.key", cert.private_key_pem.bytes())
        key.chmod(0o600)
        return self._write(f"{name}.pem", chain), key

    def _write(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        return path


class TlsMosquitto:
    """One Mosquitto with a TLS listener on 127.0.0.1, stopped by its PID."""

    def __init__(
        self,
        directory: Path,
        *,
        ca_file: Path,
        certfile: Path,
        keyfile: Path,
        require_certificate: bool = False,
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.username = "device"
        self.password = secrets.token_urlsafe(12)
        self.ca_file = ca_file
        self.certfile = certfile
        self.keyfile = keyfile
        self.require_certificate = require_certificate
        self.log_path = directory / "mosquitto.log"
        self.conf_path = directory / "mosquitto-tls.conf"
        self.process = ManagedProcess(
            "mosquitto-tls", ["mosquitto", "-c", str(self.conf_path)], self.log_path
        )

    def start(self) -> None:
        """Start on a free port; another port if one taken meanwhile made it exit."""
        for _ in range(3):
            try:
                self._start()
            except ServiceError:
                if "Address already in use" not in self.log():
                    raise
                self.port = free_port()
            else:
                return
        raise ServiceError(f"no free port for mosquitto:\n{self.log()}")

    def _start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        passwd = self.directory / "passwd"
        write_password_file(passwd, {self.username: self.password})
        lines = [
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {passwd}",
            "persistence false",
            f"listener {self.port} 127.0.0.1",
            f"cafile {self.ca_file}",
            f"certfile {self.certfile}",
            f"keyfile {self.keyfile}",
            f"require_certificate {'true' if self.require_certificate else 'false'}",
            "tls_version tlsv1.2",
            "log_dest stderr",
            "log_type all",
            "connection_messages true",
            f"user {getpass.getuser()}",
        ]
        self.conf_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.log_path.write_text("", encoding="utf-8")
        self.process.start()
        # Its own "running" line, not just a port that accepts: another process may hold
        # the port (a race between free_port and our bind), and then this one exits.
        self.process.wait_until(
            lambda: " running" in self.log() and port_accepts(self.port), 15, "listening"
        )

    def stop(self) -> None:
        self.process.stop()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def settings(
        self,
        ca_file: Path | None,
        *,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        tls: bool = True,
        host: str = "127.0.0.1",
    ) -> BrokerSettings:
        return BrokerSettings(
            host=host,
            port=self.port,
            username=self.username,
            password=self.password,
            tls=tls,
            ca_file=ca_file,
            certfile=certfile,
            keyfile=keyfile,
        )
