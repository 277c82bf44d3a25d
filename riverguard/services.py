"""Start and stop the real local services: Mosquitto and ``influxd``.

Used by ``riverguard up`` and by the test fixtures alike. Each service runs as
our own child process, with its data and a generated configuration under a
directory we own, and is stopped by its PID only (the machine may run its own
Mosquitto or InfluxDB, which we never touch).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from riverguard import clientid_guard, mqtt_packets
from riverguard.broker_acl import OBSERVER as OBSERVER_LOGIN
from riverguard.broker_acl import BrokerAccess
from riverguard.errors import RiverguardError

REPO_ROOT = Path(__file__).resolve().parent.parent
MOSQUITTO_CONF = REPO_ROOT / "mosquitto.conf"


class ServiceError(RiverguardError):
    """A service binary is missing, or the service did not become ready."""


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """``preferred`` if nothing listens there, else a free port below the ephemeral range.

    A port the kernel hands out for ``bind(0)`` comes from the ephemeral range,
    the one outgoing connections take their local ports from: with thousands of
    connections about (a fleet of simulated devices), one of them can take it
    before our service binds it. Ports below that range are never taken that way.
    """
    if preferred is not None and port_is_free(preferred, host):
        return preferred
    low = _ephemeral_low()
    for _ in range(100):
        port = secrets.choice(range(max(1024, low - 12_000), low))
        # Not one this process handed out already and whose service is not up yet.
        if port not in _HANDED_OUT and port_is_free(port, host):
            _HANDED_OUT.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        found: int = sock.getsockname()[1]
        return found


_HANDED_OUT: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def mosquitto_password_line(username: str, password: str) -> str:
    """A ``password_file`` line in Mosquitto 2's PBKDF2-SHA512 format (``$7$``).

    Written directly instead of running ``mosquitto_passwd`` once per login.
    """
    iterations = 101  # mosquitto_passwd's own default
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    salt_b64 = base64.b64encode(salt).decode()
    digest_b64 = base64.b64encode(digest).decode()
    return f"{username}:$7${iterations}${salt_b64}${digest_b64}"


def write_password_file(path: Path, logins: Mapping[str, str]) -> None:
    lines = [mosquitto_password_line(user, password) for user, password in logins.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)


class ManagedProcess:
    """One child process with its log file, started and stopped by PID."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        if self.running():
            raise ServiceError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                # Own process group: a Ctrl-C in the terminal reaches the
                # supervisor only, which then stops children in order.
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until true; fail early if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ServiceError(f"{self.name} exited before {what}:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.05)
        raise ServiceError(f"{self.name} not {what} after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; this process only."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL, for fault-injection: no clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def _dynsec_plugin() -> Path:
    """Mosquitto's dynamic security plugin, as Debian's ``mosquitto`` ships it."""
    found = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"))
    found += [p for p in [Path("/usr/lib/mosquitto_dynamic_security.so")] if p.exists()]
    if not found:
        raise ServiceError("mosquitto_dynamic_security.so not found; install mosquitto 2")
    return found[0]


def riverguard_process(
    name: str, args: list[str], env: Mapping[str, str], log: Path
) -> ManagedProcess:
    """``python -m riverguard ARGS`` as a child with JSON logs, ``env`` over ours."""
    base = {**os.environ, "RIVERGUARD_LOG_JSON": "true", "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "riverguard", *args]
    return ManagedProcess(name, argv, log, env={**base, **env}, cwd=REPO_ROOT)


def _require(binary: str) -> str:
    path = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    if path is None:
        raise ServiceError(f"{binary} is not installed; run scripts/setup")
    return path


@dataclass(frozen=True)
class TlsListener:
    """A broker's TLS listener: its address, its certificate, its clients' CA."""

    port: int
    host: str
    cafile: Path
    certfile: Path
    keyfile: Path
    # Clients must also show a certificate of ``cafile`` (the central broker's way).
    require_certificate: bool = False


class Mosquitto:
    """A Mosquitto broker with our ``mosquitto.conf``, on our own port and directory.

    Its logins and access lists are ``access`` (riverguard/broker_acl.py), enforced
    by the client id guard and the dynamic security plugin; there is no other way in.
    With ``tls`` it also listens there over TLS, as a remote site connects.
    """

    def __init__(
        self,
        directory: Path,
        port: int,
        access: BrokerAccess,
        *,
        tls: TlsListener | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.directory = directory
        self.port = port
        self.host = host
        # The health probe's connection, kept open between probes (``answers``); the
        # lock for a supervisor's thread and another asking at once.
        self._probe: socket.socket | None = None
        self._probe_lock = threading.Lock()
        self.access = access
        self.tls = tls
        self.conf_path = directory / "mosquitto.conf"
        self.dynsec_path = directory / "dynamic-security.json"
        self.bound_ids_path = directory / "bound-client-ids"
        self.process = ManagedProcess(
            "mosquitto",
            [_require("mosquitto"), "-c", str(self.conf_path)],
            directory / "mosquitto.log",
        )

    @property
    def logins(self) -> dict[str, str]:
        """Username -> password of every login the broker was started with."""
        return self.access.passwords

    def write_config(self) -> None:
        data_dir = self.directory / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.access.write(self.dynsec_path, self.bound_ids_path)
        runtime = {
            "listener": f"listener {self.port} {self.host}",
            "persistence_location": f"persistence_location {data_dir}/",
            "plugin_opt_bound_ids": f"plugin_opt_bound_ids {self.bound_ids_path}",
            "plugin_opt_config_file": f"plugin_opt_config_file {self.dynsec_path}",
        }
        try:
            guard = clientid_guard.plugin_path()
        except clientid_guard.GuardBuildError as exc:
            raise ServiceError(str(exc)) from exc
        plugins = {
            "clientid_guard.so": f"plugin {guard}",
            "mosquitto_dynamic_security.so": f"plugin {_dynsec_plugin()}",
        }
        lines = []
        for line in MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines():
            key = line.split(" ", 1)[0]
            if key == "plugin":
                lines.append(plugins[Path(line.split(" ", 1)[1]).name])
            else:
                lines.append(runtime.get(key, line))
        # Started as root, Mosquitto would switch to the "mosquitto" user and
        # lose access to our directory: run as whoever started us.
        lines.append(f"user {getpass.getuser()}")
        if self.tls is not None:
            # Last: the lines after a listener are that listener's.
            tls = self.tls
            lines += [
                f"listener {tls.port} {tls.host}",
                f"cafile {tls.cafile}",
                f"certfile {tls.certfile}",
                f"keyfile {tls.keyfile}",
                f"require_certificate {'true' if tls.require_certificate else 'false'}",
                "tls_version tlsv1.2",
            ]
        self.conf_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start(self, timeout: float = 15.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.process.start()
        self.process.wait_until(lambda: port_accepts(self.port), timeout, "listening")

    def stop(self) -> None:
        self.close_probe()
        self.process.stop()

    def kill(self) -> None:
        self.close_probe()
        self.process.kill()

    def answers(self, timeout: float = 2.0) -> bool:
        """Whether the broker answers within ``timeout``: a PINGREQ on a connection
        kept open between probes, or, to open one, a CONNECT.

        A stopped or hung Mosquitto still accepts TCP connections (the kernel
        does, into the listen backlog): only an MQTT answer tells it is alive.
        One connection for every probe, not one per probe: each new connection
        is two lines in the broker's log. It logs in as the read-only observer
        and subscribes to nothing; without that login (a broker of other
        logins) the refusal is an answer too, and the next probe connects again.
        """
        with self._probe_lock:
            return self._answers(timeout)

    def _answers(self, timeout: float) -> bool:
        try:
            if self._probe is not None:
                self._probe.sendall(mqtt_packets.PINGREQ_PACKET)
                if _read_exact(self._probe, 2) == bytes([mqtt_packets.PINGRESP << 4, 0]):
                    return True
                self.close_probe()
                return False
            return self._open_probe(timeout)
        except OSError:
            self.close_probe()
            return False

    def _open_probe(self, timeout: float) -> bool:
        password = self.logins.get(OBSERVER_LOGIN)
        hello = mqtt_packets.connect(
            client_id="riverguard-up-probe",
            username=OBSERVER_LOGIN if password is not None else None,
            password=password,
            keepalive=0,  # it pings when it probes, not on a schedule of the broker's
            clean_start=True,
            session_expiry=0,
            receive_maximum=1,
            will=None,
        )
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            sock.settimeout(timeout)
            sock.sendall(hello)
            first, length = _read_exact(sock, 2)
            body = _read_exact(sock, length) if length < 0x80 else b""
        except OSError:
            sock.close()
            raise
        if first != mqtt_packets.CONNACK << 4:
            sock.close()
            return False
        if len(body) < 2 or body[1] != 0:  # refused: an answer, but nothing to ping on
            sock.close()
            return True
        self._probe = sock
        return True

    def close_probe(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None


def _read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed by the broker")
        data += chunk
    return data


class Influxd:
    """An InfluxDB 1.x ``influxd`` on our own ports, its data in our directory."""

    def __init__(self, directory: Path, port: int, database: str = "riverguard") -> None:
        self.directory = directory
        self.port = port
        self.database = database
        self.url = f"http://127.0.0.1:{port}"
        self.conf_path = directory / "influxdb.conf"
        self.process = ManagedProcess(
            "influxd",
            [_require("influxd"), "-config", str(self.conf_path)],
            directory / "influxd.log",
            env={**os.environ, "INFLUXDB_CONFIG_PATH": str(self.conf_path)},
        )

    def write_config(self) -> None:
        # The RPC port (backup/restore) must not collide with a system influxd.
        rpc_port = free_port()
        d = self.directory
        self.conf_path.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
""",
            encoding="utf-8",
        )

    def _pings(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=1.0).status_code == 204
        except httpx.HTTPError:
            return False

    def answers(self, timeout: float = 2.0) -> bool:
        """Whether ``/ping`` gets any HTTP answer within ``timeout``."""
        try:
            httpx.get(f"{self.url}/ping", timeout=timeout)
        except httpx.HTTPError:
            return False
        return True

    def start(self, timeout: float = 30.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.process.start()
        self.process.wait_until(self._pings, timeout, "answering /ping")
        response = httpx.post(
            f"{self.url}/query", data={"q": f'CREATE DATABASE "{self.database}"'}, timeout=10
        )
        if response.status_code != 200:
            raise ServiceError(f"influxd refused CREATE DATABASE: {response.text[:200]}")

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()
