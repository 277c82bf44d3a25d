"""announcements.routine: the routine rate limit is read from the store

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 21:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What the hub counted as routine before: below life-safety priority, not from a schedule.
LIFE_SAFETY_PRIORITY = 8


def upgrade() -> None:
    with op.batch_alter_table("announcements") as batch:
        batch.add_column(
            sa.Column("routine", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    announcements = sa.table(
        "announcements",
        sa.column("routine", sa.Boolean()),
        sa.column("priority", sa.Integer()),
        sa.column("requested_by", sa.String()),
    )
    # Announcements sent before the upgrade still count toward their window.
    op.execute(
        announcements.update()
        .where(
            announcements.c.priority < LIFE_SAFETY_PRIORITY,
            announcements.c.requested_by != "scheduler",
        )
        .values(routine=True)
    )
    op.create_index("ix_announcements_site_created_at", "announcements", ["site", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_announcements_site_created_at", table_name="announcements")
    with op.batch_alter_table("announcements") as batch:
        batch.drop_column("routine")
