"""Announcement audio: fetched once over HTTP, verified by sha256, cached on disk.

The cache is ``<data_dir>/audio/<sha256>.<format>``. A file is written under a
temporary name and renamed only after its digest matched, so a cached file is
always a verified one.

The cache is bounded (``total_bytes``): after each new file, the least
recently used files (by modification time, refreshed on every use) go until
the rest fits, except the one just written and the ``pinned`` ones (the
site's own warning, which local deterrence needs when the hub is away).
Derived files (``<sha256>.8k.ulaw`` of the http driver) count and go alike.

Audio comes from the hub only (``on_hub``): the agent refuses an announce whose
URL is anywhere else, so an edge cannot be made to fetch (or hand its
speakers) an arbitrary URL. What goes wrong fetching is logged in full here
but told to the hub in a few fixed words, never with another server's status
or error text.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import wave
from pathlib import Path

import httpx
import structlog

from edge.errors import AudioError
from riverguard.wire.models import AudioRef

log = structlog.get_logger()

# A minute of 16-bit 48 kHz stereo WAV is ~11 MiB; announcements are seconds long.
MAX_AUDIO_BYTES = 32 * 1024 * 1024
# The whole cache: a few hundred announcements' worth.
MAX_CACHE_BYTES = 256 * 1024 * 1024
# G.711 µ-law: 8 kHz, one byte per sample.
ULAW_BYTES_PER_S = 8000
# Where the hub serves announcement audio, under its public URL (PROTOCOL 4.2).
HUB_AUDIO_PATH = "/api/audio/"


def on_hub(url: str, hub_url: str | None) -> bool:
    """Whether ``url`` is audio the hub at ``hub_url`` serves: same scheme, host and
    port, no user info, one plain file name under ``<hub path>/api/audio/`` (no
    escapes, no dot segments), no query or fragment."""
    if hub_url is None:
        return False
    try:
        target, hub = httpx.URL(url), httpx.URL(hub_url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    prefix = hub.path.rstrip("/") + HUB_AUDIO_PATH
    name = target.path.removeprefix(prefix)
    return (
        target.scheme in ("http", "https")
        and (target.scheme, target.host, _port(target)) == (hub.scheme, hub.host, _port(hub))
        and not target.userinfo
        and b"%" not in target.raw_path
        and not target.query
        and not target.fragment
        and target.path.startswith(prefix)
        and bool(name)
        and "/" not in name
        and not name.startswith(".")
    )


def _port(url: httpx.URL) -> int | None:
    return url.port or {"http": 80, "https": 443}.get(url.scheme)


def audio_duration_s(path: Path) -> float | None:
    """Blocking: the length of a cached WAV or µ-law file; None when it cannot tell (MP3)."""
    if path.suffix == ".ulaw":
        return path.stat().st_size / ULAW_BYTES_PER_S
    if path.suffix == ".wav":
        try:
            with wave.open(str(path)) as wav:
                return float(wav.getnframes() / wav.getframerate())
        except (wave.Error, EOFError, ZeroDivisionError, OSError):
            return None
    return None


class AudioCache:
    def __init__(
        self,
        directory: Path,
        http: httpx.AsyncClient,
        max_bytes: int = MAX_AUDIO_BYTES,
        total_bytes: int = MAX_CACHE_BYTES,
    ) -> None:
        self.directory = directory
        self.http = http
        self.max_bytes = max_bytes
        self.total_bytes = total_bytes
        # sha256s never evicted.
        self.pinned: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def path_of(self, ref: AudioRef) -> Path:
        return self.directory / f"{ref.sha256}.{ref.format}"

    async def get(self, ref: AudioRef) -> Path:
        """The verified local file of ``ref``, fetched if not cached yet."""
        path = self.path_of(ref)
        lock = self._locks.setdefault(ref.sha256, asyncio.Lock())
        async with lock:
            # File system calls block; a few MiB can take a while on an SD card.
            if await asyncio.to_thread(_touch, path):
                return path
            data = await self._fetch(ref)
            await asyncio.to_thread(_write_atomically, path, data)
            evicted = await asyncio.to_thread(
                prune, self.directory, self.total_bytes, {ref.sha256, *self.pinned}
            )
        log.info(
            "audio cached", sha256=ref.sha256, bytes=len(data), path=str(path), evicted=evicted
        )
        return path

    async def _fetch(self, ref: AudioRef) -> bytes:
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        size = 0
        try:
            async with self.http.stream("GET", ref.url) as response:
                if response.status_code != 200:
                    log.warning("audio not fetched", url=ref.url, status=response.status_code)
                    raise AudioError("audio not available from the hub")
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise AudioError(f"audio larger than {self.max_bytes} bytes")
                    digest.update(chunk)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            log.warning("audio not fetched", url=ref.url, error=repr(exc)[:300])
            raise AudioError("audio not available from the hub") from exc
        actual = digest.hexdigest()
        if actual != ref.sha256:
            log.warning("audio digest differs", url=ref.url, expected=ref.sha256, got=actual)
            raise AudioError("sha256 mismatch: the audio is not the one announced")
        return b"".join(chunks)


def _touch(path: Path) -> bool:
    """Mark a cached file as just used; False if it is not cached."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def prune(directory: Path, total_bytes: int, keep: set[str]) -> list[str]:
    """Blocking: remove least recently used files until the cache fits; the names removed."""
    files = []
    for path in directory.iterdir():
        if not path.is_file() or path.name.startswith("."):
            continue
        stat = path.stat()
        files.append((stat.st_mtime, stat.st_size, path))
    size = sum(file_size for _, file_size, _ in files)
    removed: list[str] = []
    for _, file_size, path in sorted(files):
        if size <= total_bytes:
            break
        if path.name.split(".")[0] in keep:
            continue
        path.unlink(missing_ok=True)
        size -= file_size
        removed.append(path.name)
    return removed


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
