"""edges.state: online, offline (lost) or stopped (a clean shutdown)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 21:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("edges") as batch:
        batch.add_column(
            sa.Column("state", sa.String(length=10), nullable=False, server_default="offline")
        )
    # What a status without a state means (PROTOCOL 7.10): its online flag.
    edges = sa.table("edges", sa.column("online", sa.Boolean()), sa.column("state", sa.String()))
    op.execute(edges.update().where(edges.c.online).values(state="online"))


def downgrade() -> None:
    with op.batch_alter_table("edges") as batch:
        batch.drop_column("state")
