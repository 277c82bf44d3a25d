"""Keyed event ids: an id space nobody outside the edge can guess or claim.

The ids the edge derives (``{device}:{seq}``, ``{device}:{seq}:b{boot}``,
``{device}:frigate-{Frigate id}``, PROTOCOL 7.10) are stable, which the
hub's dedup needs, but guessable: seqs and Frigate ids are readable on the
field topics. A message published on the hub's event topics ahead of the
real one under the real event's id would make the real one a "duplicate"
(or, refused, have its acknowledgement end the real one's resends). So each
id gets a tag: ``{id}:k{tag}``, ``tag`` the first 80 bits of HMAC-SHA256 of
the derived id under a key only this edge holds (base32, 16 characters).
The same report still gets the same id, also after an edge restart (the key
and the devices' boots are on disk); nobody without the key can name a
future event's id.

The key is 32 random bytes in ``<data_dir>/event-id.key`` (mode 0600),
made on the edge's first start. A lost key only changes the ids of events
from then on (a redelivery of an older report would then be stored twice,
never lost).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from riverguard.wire.event_ids import TAG_PREFIX

KEY_FILE = "event-id.key"
KEY_BYTES = 32
TAG_BYTES = 10  # 80 bits: 16 base32 characters
MAX_EVENT_ID = 200  # riverguard.wire.models.EventId


class EventIds:
    """Mints keyed ids from derived ones; with no key, ids stay as derived (unit tests)."""

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and len(key) < 16:
            raise ValueError("an event id key has at least 16 bytes")
        self.key = key

    def mint(self, derived: str) -> str:
        if self.key is None:
            return derived
        digest = hmac.new(self.key, derived.encode(), hashlib.sha256).digest()[:TAG_BYTES]
        tag = f"{TAG_PREFIX}{base64.b32encode(digest).decode().lower()}"
        # The tag is of the whole derived id: cutting a long one (a long Frigate id)
        # to fit the wire's 200 characters keeps ids apart all the same.
        return derived[: MAX_EVENT_ID - len(tag)] + tag

    @classmethod
    def load_or_create(cls, directory: Path) -> EventIds:
        """Blocking: the edge's key from ``directory``, made there first if missing."""
        path = directory / KEY_FILE
        try:
            return cls(path.read_bytes())
        except FileNotFoundError:
            pass
        directory.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
        return cls(key)
