"""notifications: the outbox of messages to responders

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 05:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.tables

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("key", sa.String(length=250), nullable=False, unique=True),
        sa.Column("alarm_id", sa.String(length=40), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("responder_id", sa.String(length=63), nullable=False),
        sa.Column("channel_index", sa.Integer(), nullable=False),
        sa.Column("channel_label", sa.String(length=100), nullable=False),
        sa.Column("channel_key", sa.String(length=100), nullable=False),
        sa.Column("channel_limit", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", hub.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", hub.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.tables.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_notifications_state_due_at", "notifications", ["state", "due_at"])
    op.create_index("ix_notifications_alarm_id", "notifications", ["alarm_id"])


def downgrade() -> None:
    op.drop_table("notifications")
