"""battles and votes

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "battles",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("model_a", sa.String(200), nullable=False),
        sa.Column("model_b", sa.String(200), nullable=True),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sampling_policy", sa.String(32), nullable=True),
        sa.Column("sampling_prob", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("conversation_a", sa.JSON(), nullable=False),
        sa.Column("conversation_b", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_battles"),
    )
    op.create_index("ix_battles_session_hash", "battles", ["session_hash"])
    op.create_index("ix_battles_status", "battles", ["status"])
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("battle_id", sa.String(32), nullable=False),
        sa.Column("winner", sa.String(16), nullable=False),
        sa.Column("tstamp", sa.Float(), nullable=False),
        sa.Column("judge", sa.String(64), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(["battle_id"], ["battles.id"], name="fk_votes_battle_id_battles", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_votes"),
        sa.UniqueConstraint("battle_id", name="uq_votes_battle_id"),
    )
    op.create_index("ix_votes_tstamp", "votes", ["tstamp"])


def downgrade() -> None:
    op.drop_index("ix_votes_tstamp", table_name="votes")
    op.drop_table("votes")
    op.drop_index("ix_battles_status", table_name="battles")
    op.drop_index("ix_battles_session_hash", table_name="battles")
    op.drop_table("battles")
