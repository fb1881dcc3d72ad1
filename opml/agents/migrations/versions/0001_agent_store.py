"""The agent store: cursors, chain events, transactions, work, requests sent through the API.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("block", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "chain_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("request_id", sa.BigInteger()),
        sa.Column("claim_id", sa.BigInteger()),
        sa.Column("game_id", sa.BigInteger()),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.UniqueConstraint("block_number", "log_index"),
    )
    for column in ("block_number", "tx_hash", "name", "request_id", "claim_id", "game_id"):
        op.create_index(f"ix_chain_events_{column}", "chain_events", [column])
    op.create_table(
        "transactions",
        sa.Column("tx_hash", sa.String(66), primary_key=True),
        sa.Column("intent", sa.String(200), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("gas_used", sa.BigInteger()),
        sa.Column("block_number", sa.BigInteger()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_transactions_intent", "transactions", ["intent"])
    op.create_table(
        "work",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_work_done", "work", ["done"])
    op.create_table(
        "submitted_requests",
        sa.Column("request_id", sa.BigInteger(), primary_key=True),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("model_root", sa.String(66), nullable=False),
        sa.Column("input_hex", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("submitted_requests", "work", "transactions", "chain_events", "cursors"):
        op.drop_table(table)
