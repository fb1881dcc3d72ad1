"""One transaction journal (opml.service.journal) for every service that sends: the converter's statuses become
the shared words (None pending, 1 mined, 0 reverted, -1 dropped), a dropped transaction's zero gas and block
become unknown (NULL), and the table gains a subject per transaction (none for registrations).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TRANSACTIONS = sa.table(
    "transactions",
    sa.column("status", sa.Integer),
    sa.column("outcome", sa.String),
    sa.column("gas_used", sa.BigInteger),
    sa.column("block_number", sa.BigInteger),
)
WORDS = {1: "mined", 0: "reverted", -1: "dropped"}


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("outcome", sa.String(16), nullable=True))
        batch.add_column(sa.Column("subject", sa.String(64), nullable=True))
        batch.create_index("ix_transactions_subject", ["subject"])
    status = TRANSACTIONS.c.status
    words = sa.case(*((status == number, word) for number, word in WORDS.items()), else_="pending")
    op.execute(TRANSACTIONS.update().values(outcome=words))
    op.execute(TRANSACTIONS.update().where(TRANSACTIONS.c.gas_used == 0).values(gas_used=None))
    op.execute(TRANSACTIONS.update().where(TRANSACTIONS.c.block_number == 0).values(block_number=None))
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("status")
        batch.alter_column("outcome", new_column_name="status", existing_type=sa.String(16), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.alter_column("status", new_column_name="outcome", existing_type=sa.String(16), nullable=True)
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("status", sa.Integer(), nullable=True))
    outcome = TRANSACTIONS.c.outcome
    numbers = sa.case(*((outcome == word, number) for number, word in WORDS.items()), else_=None)
    op.execute(TRANSACTIONS.update().values(status=numbers))
    with op.batch_alter_table("transactions") as batch:
        batch.drop_index("ix_transactions_subject")
        batch.drop_column("subject")
        batch.drop_column("outcome")
