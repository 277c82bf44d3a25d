"""The site's default warning, rendered and cached by the edge itself for local deterrence.

The edge cannot count on the hub when it warns on its own (that is the point
of ``when_hub_unreachable``), so it renders the site's warning offline
(``riverguard.site_warning``, the hub's rendering too: the same file and
sha256) into its audio cache ``<data_dir>/audio/<sha256>.wav`` (the same
cache announcements use). Its speakers fetch it from the edge's own HTTP port
(``edge.health`` serves ``/audio/<sha256>.wav``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.errors import AudioError
from riverguard.config import Site
from riverguard.site_warning import render_site_warning
from riverguard.speech import SpeechError
from riverguard.wire.models import AudioRef


async def prepare_warning(site: Site, audio_dir: Path, base_url: str) -> AudioRef:
    """The site's warning as a cached WAV, and the reference speakers fetch it by."""
    try:
        # espeak-ng is a subprocess and pydub CPU-bound: keep the event loop free.
        warning = await asyncio.to_thread(render_site_warning, site, audio_dir)
    except SpeechError as exc:
        raise AudioError(str(exc)) from exc
    return AudioRef(
        url=f"{base_url.rstrip('/')}/audio/{warning.sha256}.wav",
        sha256=warning.sha256,
        format="wav",
        duration_ms=warning.duration_ms,
    )
