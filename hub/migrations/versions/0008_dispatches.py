"""dispatches: responders sent to alarms and how far they got

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 05:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.tables

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, hub.tables.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "dispatches",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("alarm_id", sa.String(length=40), nullable=False),
        sa.Column("responder_id", sa.String(length=63), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        _time("notified_at", nullable=False),
        _time("accepted_at"),
        _time("departed_at"),
        _time("arrived_at"),
        _time("ended_at"),
        _time("overdue_at"),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_dispatches_alarm_id", "dispatches", ["alarm_id"])
    op.create_index("ix_dispatches_state", "dispatches", ["state"])


def downgrade() -> None:
    op.drop_table("dispatches")
