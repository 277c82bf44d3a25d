"""Announcement latency: ``POST /api/announcements`` -> the speaker's ``playing`` on a console.

Starts a stack of its own (the same ``Stack`` as ``riverguard up``: Mosquitto,
influxd, the hub, one edge per site, the simulated mqtt speakers), logs in as
an officer, opens a console WebSocket and measures, per announcement, the time
from sending the POST to the WebSocket ``announcement`` message in which the
speaker's state is ``playing``. The path is hub -> broker -> edge -> speaker
simulator -> edge -> broker -> hub -> WebSocket.

- cached: the site's clip, already fetched by the edge (after warm-up);
- new TTS: a text never spoken before, rendered by espeak-ng on the way.

Announcements go one after another to one speaker, each waiting for the
previous one's ``done`` (the edge plays equal priorities in turn). They name
no alarm, so they are routine (priority 7): the bench's hub is started with a
routine limit no run reaches. Not a test: run it by hand and put the figures
in docs/performance.md::

    .venv/bin/python bench/announce_latency.py --count 200 --tts 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from riverguard.hub_session import HubSession
from riverguard.stack import Stack
from riverguard.wire.socket_auth import subprotocols

SITE = "danshui-bridge"
SPEAKER = "db-spk-01"
# Simulated speakers play this many times faster than real time, so "done" comes soon.
SPEAKER_SPEED = 200.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class Console:
    """A console WebSocket; remembers when each announcement first reached each state."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.seen: dict[tuple[str, str], float] = {}
        self.changed = asyncio.Event()

    async def read(self) -> None:
        async for raw in self.ws:
            arrived = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") != "announcement":
                continue
            data = message["data"]
            state = data["speakers"].get(SPEAKER)
            if state in ("done", "failed", "expired"):
                self.seen.setdefault((data["id"], "finished"), arrived)
            self.seen.setdefault((data["id"], str(state)), arrived)
            self.changed.set()

    async def wait(self, ann_id: str, state: str) -> float:
        async with asyncio.timeout(30):
            while (ann_id, state) not in self.seen:
                self.changed.clear()
                await self.changed.wait()
        return self.seen[(ann_id, state)]


async def one(
    http: httpx.AsyncClient, console: Console, headers: dict[str, str], body: dict[str, Any]
) -> tuple[float, float]:
    """(ms to the 202, ms to ``playing`` on the console) of one announcement."""
    started = time.perf_counter()
    response = await http.post("/api/announcements", headers=headers, json=body)
    answered = time.perf_counter()
    response.raise_for_status()
    ann_id = response.json()["id"]
    arrived = await console.wait(ann_id, "playing")
    await console.wait(ann_id, "finished")
    return (answered - started) * 1000, (arrived - started) * 1000


def summary(name: str, values: list[float]) -> dict[str, Any]:
    return {
        "what": name,
        "n": len(values),
        "p50_ms": round(percentile(values, 0.50), 1),
        "p99_ms": round(percentile(values, 0.99), 1),
        "mean_ms": round(statistics.fmean(values), 1),
        "max_ms": round(max(values), 1),
    }


async def measure(stack: Stack, count: int, tts: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=stack.hub_url, timeout=30) as http:
        session = await HubSession.login_async(
            http, "officer-li", stack.secrets.users["officer-li"]
        )
        token, headers = session.access_token, session.headers
        url = stack.hub_url.replace("http://", "ws://") + "/api/ws"
        async with websockets.connect(url, max_size=None, subprotocols=subprotocols(token)) as ws:
            console = Console(ws)
            async with asyncio.TaskGroup() as tasks:
                reader = tasks.create_task(console.read(), name="bench.console")
                cached = {"speakers": [SPEAKER], "clip_id": "warning-cmn", "priority": 7}
                for _ in range(5):  # warm-up: the edge fetches and caches the audio
                    await one(http, console, headers, cached)
                posted, played = [], []
                for i in range(count):
                    answered, arrived = await one(http, console, headers, cached)
                    posted.append(answered)
                    played.append(arrived)
                    print(f"\rcached {i + 1}/{count}", end="", file=sys.stderr)
                print(file=sys.stderr)
                new_posted, new_played = [], []
                for i in range(tts):
                    text = f"测试广播，第{i + 1}次，编号{secrets.randbelow(10**6)}，请注意安全"
                    body = {"speakers": [SPEAKER], "text": text, "voice": "cmn", "priority": 7}
                    answered, arrived = await one(http, console, headers, body)
                    new_posted.append(answered)
                    new_played.append(arrived)
                    print(f"\rnew TTS {i + 1}/{tts}", end="", file=sys.stderr)
                print(file=sys.stderr)
                reader.cancel()
    results = [
        summary("cached clip: POST -> 202", posted),
        summary("cached clip: POST -> playing on the console", played),
    ]
    if tts:
        results += [
            summary("new TTS text: POST -> 202", new_posted),
            summary("new TTS text: POST -> playing on the console", new_played),
        ]
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="cached announcements")
    parser.add_argument("--tts", type=int, default=20, help="announcements of new texts")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temp dir")
    args = parser.parse_args()
    # Inherited by the stack's hub: routine announcements are limited per site.
    os.environ["RIVERGUARD_ROUTINE_LIMIT"] = str(10 * (args.count + args.tts) + 100)
    with tempfile.TemporaryDirectory(prefix="rg-bench-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        stack = Stack(
            data_dir=data_dir,
            simulators=("speakers",),
            ports=None,
            speaker_speed=SPEAKER_SPEED,
            progress=lambda m: print(m, file=sys.stderr),
        )
        try:
            stack.start()
            results = asyncio.run(measure(stack, args.count, args.tts))
        finally:
            stack.stop()
    for row in results:
        print(json.dumps(row, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
