"""The models table (keyed by root M) and the transaction journal.

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("root", sa.String(66), primary_key=True),
        sa.Column("file_hash", sa.String(66), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_format", sa.String(16), nullable=False),
        sa.Column("source_format", sa.String(16), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("onchain_model_id", sa.BigInteger(), nullable=True),
        sa.Column("registry_address", sa.String(42), nullable=True),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_models_created_at", "models", ["created_at"])
    op.create_table(
        "transactions",
        sa.Column("tx_hash", sa.String(66), primary_key=True),
        sa.Column("intent", sa.String(256), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_transactions_intent", "transactions", ["intent"])


def downgrade() -> None:
    op.drop_table("transactions")
    op.drop_table("models")
