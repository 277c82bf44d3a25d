"""Files named by their content's sha256, as the hub serves audio and edges cache it."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path


def write_by_hash(data: bytes, ext: str, directory: Path) -> tuple[str, Path]:
    """Store ``data`` as ``<sha256>.<ext>``; concurrent writers each use their own temp file.

    Two writers of the same bytes (sites with the same warning text) may run at
    once: each writes its own temporary file, and the rename is atomic.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{sha256}.{ext}"
    if not path.exists():
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".part", delete=False) as tmp:
            tmp.write(data)
        Path(tmp.name).replace(path)
    return sha256, path
