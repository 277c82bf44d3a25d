"""A synthetic camera snapshot: a dark riverbank at night with a person in a detection box.

Rendered by ffmpeg's ``lavfi`` sources (no image files in the repository),
once per camera at simulator start; the JPEG is about 60 KiB at 640x360,
well under the protocol's 512 KiB. If ffmpeg is missing or fails, the camera
falls back to ``riverguard.testing.TINY_JPEG`` and the failure is logged.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import datetime

import structlog

from riverguard.testing import TINY_JPEG
from riverguard.wire.models import MAX_SNAPSHOT_BYTES
from riverguard.wire.times import utcnow

log = structlog.get_logger()

WIDTH, HEIGHT = 640, 360
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
RENDER_TIMEOUT_S = 10.0

# Night scene, top to bottom: sky, far bank, river; a near bank bottom left.
_SCENE = (
    "drawbox=x=0:y=150:w=640:h=210:color=0x14303f:t=fill",
    "drawbox=x=0:y=130:w=640:h=22:color=0x2e3a2a:t=fill",
    "drawbox=x=0:y=230:w=260:h=130:color=0x3a3528:t=fill",
    "drawbox=x=0:y=20:w=640:h=6:color=0x505860:t=fill",
    # Sensor noise of a low-light camera.
    "noise=alls=12:allf=t",
    # The person: head, body, legs, and the analytics' detection box.
    "drawbox=x=300:y=196:w=16:h=16:color=0xc8b8a0:t=fill",
    "drawbox=x=294:y=212:w=28:h=44:color=0x8a3030:t=fill",
    "drawbox=x=296:y=256:w=10:h=30:color=0x303848:t=fill",
    "drawbox=x=310:y=256:w=10:h=30:color=0x303848:t=fill",
    "drawbox=x=280:y=186:w=58:h=112:color=red:t=3",
)


def _text(text: str, *, x: int, y: int, size: int, colour: str, box: bool = False) -> str:
    # drawtext needs ':' and '\'' escaped inside its text option.
    escaped = text.replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")
    boxed = ":box=1:boxcolor=black@0.5" if box else ""
    return (
        f"drawtext=fontfile={FONT}:text='{escaped}':x={x}:y={y}"
        f":fontsize={size}:fontcolor={colour}{boxed}"
    )


def ffmpeg_command(camera: str, at: datetime) -> list[str]:
    stamp = at.strftime("%Y-%m-%d %H:%M:%S UTC")
    filters = [
        *_SCENE,
        _text("person 0.91", x=282, y=168, size=14, colour="red"),
        _text(f"{camera}  {stamp}", x=10, y=336, size=16, colour="white", box=True),
    ]
    return [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        f"color=c=0x1b2530:s={WIDTH}x{HEIGHT}:d=1",
        "-vf",
        ",".join(filters),
        "-frames:v",
        "1",
        "-q:v",
        "5",
        "-f",
        "image2pipe",
        "-c:v",
        "mjpeg",
        "-",
    ]


def render_snapshot(camera: str, at: datetime | None = None) -> bytes:
    """Blocking: a JPEG for ``camera``, or ``TINY_JPEG`` if ffmpeg cannot render one."""
    if shutil.which("ffmpeg") is None:
        log.warning("ffmpeg not found; camera sends a 1x1 snapshot", camera=camera)
        return TINY_JPEG
    try:
        result = subprocess.run(
            ffmpeg_command(camera, at or utcnow()),
            capture_output=True,
            timeout=RENDER_TIMEOUT_S,
            check=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        log.warning(
            "snapshot rendering failed; camera sends a 1x1 snapshot",
            camera=camera,
            error=str(exc)[:200],
            stderr=stderr.decode(errors="replace")[:300],
        )
        return TINY_JPEG
    jpeg = result.stdout
    if not jpeg.startswith(b"\xff\xd8\xff") or len(jpeg) > MAX_SNAPSHOT_BYTES:
        log.warning("rendered snapshot unusable", camera=camera, bytes=len(jpeg))
        return TINY_JPEG
    return jpeg


async def render_snapshots(cameras: list[str]) -> dict[str, bytes]:
    """One snapshot per camera, rendered concurrently in threads (ffmpeg blocks)."""
    jpegs = await asyncio.gather(
        *(asyncio.to_thread(render_snapshot, camera) for camera in cameras)
    )
    return dict(zip(cameras, jpegs, strict=True))
