"""Two machines on one: network namespaces joined by a veth pair, made and removed here.

``Hosts`` makes a hub namespace and a site namespace, each with its own
loopback, and one veth pair between them (a /30 of 10.x.y.z, nothing routed
further), under names unique to the run; ``close`` deletes both namespaces,
which removes the pair. ``Tunnel`` gives the test (in the namespace it was
started in) a loopback port that reaches an address inside one of them: the
socket on the far side is created by a thread that entered that namespace, so
the traffic is the namespace's own (its loopback, or the veth towards the other).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import secrets
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/var/run/netns")


class NetnsRefused(Exception):
    """This machine does not let us make network namespaces (the reason is the message)."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if result.returncode != 0:
        raise NetnsRefused(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")


def _enter(namespace: str) -> None:
    """Move the calling thread (only) into ``namespace``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / namespace, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns into {namespace}: {os.strerror(error)}")
    finally:
        os.close(fd)


@dataclass
class Hosts:
    """The hub machine and the site machine, and the link between them."""

    tag: str = field(default_factory=lambda: secrets.token_hex(3))

    def __post_init__(self) -> None:
        self.hub = f"rg-hub-{self.tag}"
        self.site = f"rg-site-{self.tag}"
        self.hub_link = f"rgh{self.tag}"
        self.site_link = f"rgs{self.tag}"
        octets = secrets.token_bytes(2)
        net = f"10.{200 + octets[0] % 50}.{octets[1]}"
        self.hub_ip = f"{net}.1"
        self.site_ip = f"{net}.2"
        self._made: list[str] = []

    def open(self) -> None:
        for namespace in (self.hub, self.site):
            _ip("netns", "add", namespace)
            self._made.append(namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("link", "add", self.hub_link, "netns", self.hub, "type", "veth",
            "peer", "name", self.site_link, "netns", self.site)  # fmt: skip
        _ip("-n", self.hub, "addr", "add", f"{self.hub_ip}/30", "dev", self.hub_link)
        _ip("-n", self.site, "addr", "add", f"{self.site_ip}/30", "dev", self.site_link)
        self.link(up=True)

    def link(self, *, up: bool) -> None:
        """The uplink cable: both ends down (or up again)."""
        state = "up" if up else "down"
        _ip("-n", self.site, "link", "set", self.site_link, state)
        _ip("-n", self.hub, "link", "set", self.hub_link, state)

    def close(self) -> None:
        """Delete what ``open`` made (the veth pair goes with its namespaces)."""
        for namespace in reversed(self._made):
            with contextlib.suppress(NetnsRefused):
                _ip("netns", "delete", namespace)
        self._made.clear()

    def exec(self, namespace: str) -> list[str]:
        """The prefix that runs a command inside ``namespace`` (it execs: same PID)."""
        return ["ip", "netns", "exec", namespace]


def check_netns() -> str | None:
    """Why network namespaces cannot be used here, or None when they can."""
    probe = Hosts()
    try:
        probe.open()
        _enter_probe(probe.site)
    except (NetnsRefused, OSError, FileNotFoundError) as exc:
        return f"network namespaces refused here: {exc}"
    finally:
        probe.close()
    return None


def _enter_probe(namespace: str) -> None:
    with ThreadPoolExecutor(1, initializer=_enter, initargs=(namespace,)) as pool:
        pool.submit(lambda: None).result(10)


def accepts(namespace: str, host: str, port: int) -> bool:
    """Whether ``host:port`` inside ``namespace`` takes a TCP connection."""

    def connect() -> bool:
        try:
            socket.create_connection((host, port), 1).close()
        except OSError:
            return False
        return True

    with ThreadPoolExecutor(1, initializer=_enter, initargs=(namespace,)) as pool:
        return pool.submit(connect).result(10)


class Tunnel:
    """A port on this namespace's loopback that leads to ``host:port`` in ``namespace``."""

    def __init__(self, namespace: str, host: str, port: int) -> None:
        self.namespace = namespace
        self.host = host
        self.target_port = port
        self.port = 0
        self._pool = ThreadPoolExecutor(1, initializer=_enter, initargs=(namespace,))
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Tunnel:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._pool.shutdown(wait=False)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            loop = asyncio.get_running_loop()
            connect = functools.partial(socket.create_connection, (self.host, self.target_port), 5)
            try:
                far = await loop.run_in_executor(self._pool, connect)
            except OSError:
                return
            far.setblocking(False)
            far_reader, far_writer = await asyncio.open_connection(sock=far)
            try:
                await asyncio.gather(_pipe(reader, far_writer), _pipe(far_reader, writer))
            finally:
                far_writer.close()
        except asyncio.CancelledError:
            pass  # the tunnel closes: this connection ends with it (asyncio's own task)
        finally:
            writer.close()
            self._pipes.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()
