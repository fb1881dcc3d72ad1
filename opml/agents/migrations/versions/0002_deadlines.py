"""Deadlines: every event's block time (moves are timed against the clocks), the margin each action of this
agent was mined with, and the requests whose final result differs from the one computed here.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("chain_events", sa.Column("block_timestamp", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "margins",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("work_key", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("mined_at", sa.BigInteger(), nullable=False),
        sa.Column("budget", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.BigInteger()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_margins_work_key", "margins", ["work_key"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("claim_id", sa.BigInteger(), nullable=False),
        sa.Column("final_state_hash", sa.String(66), nullable=False),
        sa.Column("our_state_hash", sa.String(66), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_id"),
    )


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_index("ix_margins_work_key", "margins")
    op.drop_table("margins")
    op.drop_column("chain_events", "block_timestamp")
