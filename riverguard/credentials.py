"""Passwords we generate, and the files that keep them: readable by their owner only,
replaced whole (a reader sees the old file or the new one, never half of one)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0600), through a staging file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".new")
    with open(staging, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as file:
        file.write(text)
    os.replace(staging, path)
