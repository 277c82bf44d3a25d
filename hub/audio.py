"""Audio for announcements: the site's default warning as a clip, rendered at start-up.

The rendering itself is ``riverguard.site_warning``, shared with the edge, so
a site's warning has the same bytes and sha256 on both.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from riverguard.config import Site
from riverguard.site_warning import render_site_warning as render


@dataclass(frozen=True)
class Clip:
    id: str
    sha256: str
    path: Path
    format: str
    duration_ms: int
    title: str


async def render_site_warning(site: Site, audio_dir: Path) -> Clip:
    """The site's default warning as a 16 kHz mono WAV under ``audio_dir``."""
    # espeak-ng and ffmpeg are subprocesses and pydub is CPU-bound: keep the loop free.
    warning = await asyncio.to_thread(render, site, audio_dir)
    return Clip(
        id=f"warning-{site.id}",
        sha256=warning.sha256,
        path=warning.path,
        format="wav",
        duration_ms=warning.duration_ms,
        title=f"{site.warning_text_zh} / {site.warning_text_en}",
    )
