"""The audio cache stays under its bound: least recently used first, pinned clips kept."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from edge.audio import AudioCache, prune
from tests.edge.support import AudioServer, wav_bytes

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def _file(directory: Path, name: str, size: int, mtime: float) -> Path:
    path = directory / name
    path.write_bytes(b"\0" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_least_recently_used_files_go_until_the_cache_fits(tmp_path: Path) -> None:
    _file(tmp_path, f"{A}.wav", 400, 100.0)
    _file(tmp_path, f"{A}.8k.ulaw", 100, 101.0)
    _file(tmp_path, f"{B}.wav", 400, 200.0)
    _file(tmp_path, f"{C}.wav", 400, 300.0)
    assert [f"{A}.wav", f"{A}.8k.ulaw", f"{B}.wav"] == prune(tmp_path, 500, keep=set())
    assert [f"{C}.wav"] == sorted(path.name for path in tmp_path.iterdir())


def test_pinned_files_are_kept_even_if_oldest(tmp_path: Path) -> None:
    _file(tmp_path, f"{A}.wav", 400, 100.0)  # the site's warning
    _file(tmp_path, f"{B}.wav", 400, 200.0)
    _file(tmp_path, f"{C}.wav", 400, 300.0)
    assert [f"{B}.wav"] == prune(tmp_path, 800, keep={A})


async def test_a_cache_hit_counts_as_use_and_a_new_clip_evicts_the_least_used(
    tmp_path: Path, audio_server: AudioServer
) -> None:
    bodies = [wav_bytes(100 * length) for length in (1, 2, 3)]
    refs = [audio_server.add(f"{name}.wav", body) for name, body in zip("xyz", bodies, strict=True)]
    sizes = [len(body) for body in bodies]
    async with httpx.AsyncClient() as http:
        cache = AudioCache(tmp_path, http, total_bytes=sizes[0] + sizes[1] + sizes[2] - 1)
        first = await cache.get(refs[0])
        second = await cache.get(refs[1])
        os.utime(second, (1.0, 1.0))  # the second is long unused
        os.utime(first, (2.0, 2.0))
        await cache.get(refs[0])  # a hit: the first is fresh again
        await cache.get(refs[2])
    assert first.exists()
    assert not second.exists()
    assert cache.path_of(refs[2]).exists()
