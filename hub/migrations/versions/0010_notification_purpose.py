"""notifications.purpose: a call, or a stand-down once the alarm is resolved

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every row written before is a call.
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(
            sa.Column("purpose", sa.String(length=12), nullable=False, server_default="call")
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("purpose")
