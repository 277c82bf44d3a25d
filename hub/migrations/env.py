"""Alembic environment: run by ``hub.migrate.upgrade`` with a live connection.

Also usable from the command line for authoring migrations:
``alembic -c hub/migrations/alembic.ini revision --autogenerate -m "..."``
with ``RIVERGUARD_DATABASE_URL`` pointing at a scratch database.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from hub.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters tables by copying them; batch mode does that portably.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(
        _run_with_url(os.environ.get("RIVERGUARD_DATABASE_URL", "sqlite+aiosqlite:///hub.db"))
    )
