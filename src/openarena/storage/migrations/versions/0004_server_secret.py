"""arena_settings: values every server process must share (the cookie secret)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "arena_settings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_arena_settings")),
    )


def downgrade() -> None:
    op.drop_table("arena_settings")
