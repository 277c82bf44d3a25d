"""SQLite WAL checkpoints off the write path, for the hub's store and the edge's outbox.

With ``wal_autocheckpoint`` on, SQLite copies the WAL into the database file
inside whichever commit passes the threshold: every ~1,000 pages, one commit
took 15-25 ms longer (the copy and an fsync of the database), and every event
waiting on it, too. The writers turn it off and this task checkpoints instead,
on a connection and a thread of its own, in PASSIVE mode: it waits for no
reader or writer, and none waits for it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

log = structlog.get_logger()

# How often the WAL is copied into the database.
CHECKPOINT_EVERY_S = 1.0


def _open(path: str | Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=5000")
    return db


def _checkpoint(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


async def run_checkpoints(path: str | Path, what: str, every_s: float = CHECKPOINT_EVERY_S) -> None:
    """Checkpoint the WAL of the database at ``path`` every ``every_s``; never returns.

    ``what`` names the database in the log.
    """
    thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite.checkpoint")
    loop = asyncio.get_running_loop()
    db = await loop.run_in_executor(thread, _open, path)
    try:
        while True:
            await asyncio.sleep(every_s)
            try:
                await loop.run_in_executor(thread, _checkpoint, db)
            except sqlite3.Error as exc:
                # The WAL only grows meanwhile; the next round tries again.
                log.warning("checkpoint failed", database=what, error=str(exc))
    finally:
        await loop.run_in_executor(thread, db.close)
        thread.shutdown(wait=False)
