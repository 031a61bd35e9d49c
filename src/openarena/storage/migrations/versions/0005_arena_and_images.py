"""battles.arena ('text' | 'vision' | 'code') and the images table of the vision arena

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # every battle before this revision was a text battle (or a code battle nobody marked)
    with op.batch_alter_table("battles") as batch:
        batch.add_column(sa.Column("arena", sa.String(16), nullable=False, server_default="text"))
        batch.create_index("ix_battles_arena", ["arena"])
    op.create_table(
        "images",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("mime", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("n_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_images")),
    )


def downgrade() -> None:
    op.drop_table("images")
    with op.batch_alter_table("battles") as batch:
        batch.drop_index("ix_battles_arena")
        batch.drop_column("arena")
