"""How long this machine's disk takes to make a commit durable while HTTP calls go
out, with no hub at all.

The alarm path waits for each commit's ``fdatasync`` (SQLite's WAL at
``synchronous=FULL``: an acknowledged event must survive a power cut). This
writes what a breach's commit writes to a file of its own, about 60 KiB, and
``fdatasync``s it every 5 ms (bench/notify_latency's probe pace), first
alone, then while another process posts webhooks at ``--rate`` a second, 16
at once (the outbox's sends) to a receiver in a third process: one that
closes each connection, as bench/notify_latency's receiver does, then one
that keeps them open. It answers whether the alarm path's slower commits
while calls go out are the hub's doing or the machine's. Not a test: run it
by hand and put the figures in docs/performance.md::

    .venv/bin/python bench/flush_under_http.py --seconds 8 --rate 250
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import httpx

# What one breach's commit appended to the WAL in bench/notify_latency's storm (17 MB
# over 280 probes, 2026-12-07), and the probe's pause between commits.
COMMIT_BYTES = 60 * 1024
PAUSE_S = 0.005
# The file the commits go round in: written whole first, so no commit allocates.
FILE_BYTES = 64 * 1024 * 1024
# Sends under way at once, as the outbox's (hub.notify.outbox.CONCURRENCY).
CONCURRENCY = 16
BODY = {"type": "responder.call", "text": "x" * 800}


async def _receive(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep_alive: bool
) -> None:
    """A bare HTTP/1.1 receiver answering 200 to each request."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            close = b"" if keep_alive else b"Connection: close\r\n"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + close + b"\r\n")
            await writer.drain()
            if not keep_alive:
                return
    finally:
        writer.close()


async def serve_receiver(keep_alive: bool) -> None:
    """The receiver's process: its port on the first line."""
    server = await asyncio.start_server(lambda r, w: _receive(r, w, keep_alive), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


async def send_calls(port: int, rate: float) -> None:
    """The sender's process: a POST every 1/``rate`` s, at most ``CONCURRENCY`` at once,
    until its standard input closes."""
    slots = asyncio.Semaphore(CONCURRENCY)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), stop.set)
    url = f"http://127.0.0.1:{port}/hook"
    async with httpx.AsyncClient() as http:

        async def one() -> None:
            async with slots:
                await http.post(url, json=BODY)

        sends: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            task = asyncio.create_task(one())
            sends.add(task)
            task.add_done_callback(sends.discard)
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*sends, return_exceptions=True)


def _commits(path: Path, seconds: float) -> list[float]:
    """Commit-sized writes and ``fdatasync`` for ``seconds``: each sync's time in ms."""
    fd = os.open(path, os.O_RDWR)
    try:
        taken: list[float] = []
        end = time.monotonic() + seconds
        offset = 0
        while time.monotonic() < end:
            os.pwrite(fd, os.urandom(COMMIT_BYTES), offset)
            offset = (offset + COMMIT_BYTES) % (FILE_BYTES - COMMIT_BYTES)
            start = time.perf_counter()
            os.fdatasync(fd)
            taken.append((time.perf_counter() - start) * 1000)
            time.sleep(PAUSE_S)
        return taken
    finally:
        os.close(fd)


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)], 2)

    return {
        "syncs": len(values),
        "p50_ms": round(statistics.median(values), 2),
        "p90_ms": at(0.9),
        "p99_ms": at(0.99),
        "max_ms": round(max(values), 2),
    }


async def _with_calls(path: Path, seconds: float, rate: float, keep_alive: bool) -> list[float]:
    receiver = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve-receiver",
        *(["--keep-alive"] if keep_alive else []),
        stdout=PIPE,
    )
    assert receiver.stdout is not None
    port = int(await receiver.stdout.readline())
    sender = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--send-calls", str(port), "--rate", str(rate), stdin=PIPE
    )
    try:
        await asyncio.sleep(0.5)  # the sender's interpreter and httpx imported
        return await asyncio.to_thread(_commits, path, seconds)
    finally:
        assert sender.stdin is not None
        sender.stdin.close()
        await sender.wait()
        receiver.terminate()
        await receiver.wait()


async def measure(seconds: float, rate: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "commits"
        with path.open("wb") as file:
            file.write(bytes(FILE_BYTES))
            file.flush()
            os.fsync(file.fileno())
        # None: no calls; otherwise whether the receiver keeps connections open.
        phases: dict[str, bool | None] = {
            "alone": None,
            "calls, each connection closed": False,
            "calls, connections kept open": True,
        }
        report: dict[str, Any] = {"calls_per_s": rate, "commit_bytes": COMMIT_BYTES}
        for name, keep_alive in phases.items():
            print(f"  {name} ({seconds:g} s)", file=sys.stderr, flush=True)
            if keep_alive is None:
                taken = await asyncio.to_thread(_commits, path, seconds)
            else:
                taken = await _with_calls(path, seconds, rate, keep_alive)
            report[name] = _summary(taken)
        return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8, help="each phase's length")
    parser.add_argument("--rate", type=float, default=250, help="calls a second")
    parser.add_argument("--serve-receiver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep-alive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--send-calls", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        asyncio.run(serve_receiver(args.keep_alive))
    elif args.send_calls:
        asyncio.run(send_calls(args.send_calls, args.rate))
    else:
        json.dump(asyncio.run(measure(args.seconds, args.rate)), sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
