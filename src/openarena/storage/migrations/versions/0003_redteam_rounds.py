"""red-team rounds

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "redteam_rounds",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("player_hash", sa.String(64), nullable=False),
        sa.Column("handle", sa.String(40), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("secret", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("conversation", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redteam_rounds")),
    )
    op.create_index("ix_redteam_rounds_player_hash", "redteam_rounds", ["player_hash"])
    op.create_index("ix_redteam_rounds_handle", "redteam_rounds", ["handle"])
    op.create_index("ix_redteam_rounds_status", "redteam_rounds", ["status"])
    op.create_table(
        "redteam_handles",
        sa.Column("handle", sa.String(40), nullable=False),
        sa.Column("player_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("handle", name=op.f("pk_redteam_handles")),
    )


def downgrade() -> None:
    op.drop_table("redteam_handles")
    op.drop_table("redteam_rounds")
