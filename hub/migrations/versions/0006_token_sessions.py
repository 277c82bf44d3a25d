"""tokens.kind and tokens.session_id: short access tokens, refresh tokens, sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 02:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The 12-hour tokens of before belong to no session and could not be revoked:
    # drop them; everyone logs in once more.
    op.execute(sa.text("DELETE FROM tokens"))
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=10), nullable=False, server_default="access")
        )
        batch.add_column(sa.Column("session_id", sa.String(length=64), nullable=False))
        batch.create_index("ix_tokens_session_id", ["session_id"])


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_session_id")
        batch.drop_column("session_id")
        batch.drop_column("kind")
