"""voter keys for the vote-integrity checks: the hashed IP address of each battle and vote,
indexes to count a voter's battles and votes in a time window

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("battles") as batch:
        batch.add_column(sa.Column("ip_hash", sa.String(64), nullable=True))
    op.create_index("ix_battles_session_created", "battles", ["session_hash", "created_at"])
    op.create_index("ix_battles_ip_created", "battles", ["ip_hash", "created_at"])
    with op.batch_alter_table("votes") as batch:
        batch.add_column(sa.Column("ip_hash", sa.String(64), nullable=True))
    op.create_index("ix_votes_judge_tstamp", "votes", ["judge", "tstamp"])
    op.create_index("ix_votes_ip_tstamp", "votes", ["ip_hash", "tstamp"])


def downgrade() -> None:
    op.drop_index("ix_votes_ip_tstamp", table_name="votes")
    op.drop_index("ix_votes_judge_tstamp", table_name="votes")
    with op.batch_alter_table("votes") as batch:
        batch.drop_column("ip_hash")
    op.drop_index("ix_battles_ip_created", table_name="battles")
    op.drop_index("ix_battles_session_created", table_name="battles")
    with op.batch_alter_table("battles") as batch:
        batch.drop_column("ip_hash")
