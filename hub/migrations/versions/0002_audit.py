"""audit log; alarm id indexes for incident timelines

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.tables

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts", hub.tables.UTCDateTime(), nullable=False),
        sa.Column("username", sa.String(length=63), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("alarm_id", sa.String(length=40), nullable=True),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    op.create_index("ix_audit_ts", "audit", ["ts"])
    op.create_index("ix_audit_username_ts", "audit", ["username", "ts"])
    op.create_index("ix_audit_alarm_id", "audit", ["alarm_id"])
    op.create_index("ix_audit_action_ts", "audit", ["action", "ts"])
    op.create_index("ix_events_alarm_id", "events", ["alarm_id"])
    op.create_index("ix_announcements_alarm_id", "announcements", ["alarm_id"])


def downgrade() -> None:
    op.drop_index("ix_announcements_alarm_id", table_name="announcements")
    op.drop_index("ix_events_alarm_id", table_name="events")
    op.drop_table("audit")
