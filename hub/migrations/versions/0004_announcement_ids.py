"""announcement ids as long as the protocol allows (100): the edge's own edge-auto ones

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite does not enforce VARCHAR lengths, and rebuilding the table there would
    # cascade-delete the speakers' rows: only PostgreSQL needs the change.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("announcements", "id", type_=sa.String(100))
    op.alter_column("announcement_speakers", "announcement_id", type_=sa.String(100))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("announcement_speakers", "announcement_id", type_=sa.String(40))
    op.alter_column("announcements", "id", type_=sa.String(40))
