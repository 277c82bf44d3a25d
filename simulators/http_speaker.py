"""A simulated network speaker with an HTTP audio-transmit endpoint (PROTOCOL 1.5 ``http``).

``POST <path>`` with ``Content-Type: audio/basic`` (G.711 µ-law, 8 kHz
mono): it "plays" the body for its length (divided by ``speed``) and answers
204 when done. A client that goes away stops the playback, as a real speaker
stops when its input ends. Anything but ``audio/basic`` is refused with 415,
an empty body with 400.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = structlog.get_logger()

ULAW_BYTES_PER_S = 8000
# How often a playback checks whether its sender is still there.
POLL_S = 0.02


@dataclass(frozen=True)
class Playback:
    bytes: int
    seconds: float
    completed: bool


class HttpSpeakerSim:
    def __init__(
        self, device: str, host: str, port: int, path: str = "/audio", speed: float = 1.0
    ) -> None:
        self.device = device
        self.speed = speed
        self.playbacks: list[Playback] = []
        # The newest body played, whole: what a listener would have heard (one, to stay small).
        self.last_audio = b""
        self.log = log.bind(speaker=device)
        app = Starlette(routes=[Route(path, self._audio, methods=["POST"])])
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)

    @property
    def started(self) -> bool:
        return self.server.started

    async def run(self) -> None:
        """Serve until ``stop``; cancelling instead leaves uvicorn's sockets to the GC."""
        await self.server.serve()

    def stop(self) -> None:
        self.server.should_exit = True

    async def _audio(self, request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "audio/basic":
            return JSONResponse({"error": "unsupported_media_type"}, status_code=415)
        body = await request.body()
        if not body:
            return JSONResponse({"error": "empty"}, status_code=400)
        seconds = len(body) / ULAW_BYTES_PER_S / self.speed
        self.log.info("http speaker playing", bytes=len(body), seconds=round(seconds, 2))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                self.playbacks.append(Playback(len(body), seconds, completed=False))
                self.log.info("http speaker input ended early: stopped")
                return Response(status_code=499)
            await asyncio.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
        self.playbacks.append(Playback(len(body), seconds, completed=True))
        self.last_audio = body
        return Response(status_code=204)
