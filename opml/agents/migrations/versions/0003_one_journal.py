"""One transaction journal (opml.service.journal) for every service that sends: the agents' table gains what
the shared definition has (a subject per transaction, when it was settled, intents as long as the converter's),
and each existing row gets its subject from its intent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The agents' intents as they were when this migration was written (opml.agents.intents), frozen here.
SUBJECTS = (
    (re.compile(r"^(?:commit|reveal) r(\d+)$"), "request"),
    (re.compile(r"^(?:finalize|settle|challenge) c(\d+)$"), "claim"),
    (re.compile(r"^game (\d+) "), "game"),
    (re.compile(r"^timeout g(\d+) "), "game"),
)
TRANSACTIONS = sa.table(
    "transactions", sa.column("tx_hash", sa.String), sa.column("intent", sa.String), sa.column("subject", sa.String)
)


def subject_of(intent: str) -> str | None:
    for pattern, kind in SUBJECTS:
        match = pattern.match(intent)
        if match:
            return f"{kind}:{int(match.group(1))}"
    return None


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.alter_column("intent", type_=sa.String(256), existing_type=sa.String(200), existing_nullable=False)
        batch.add_column(sa.Column("subject", sa.String(64), nullable=True))
        batch.add_column(sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_transactions_subject", ["subject"])
    bind = op.get_bind()
    for tx_hash, intent in bind.execute(sa.select(TRANSACTIONS.c.tx_hash, TRANSACTIONS.c.intent)).all():
        subject = subject_of(intent)
        if subject is not None:
            bind.execute(TRANSACTIONS.update().where(TRANSACTIONS.c.tx_hash == tx_hash).values(subject=subject))


def downgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.drop_index("ix_transactions_subject")
        batch.drop_column("settled_at")
        batch.drop_column("subject")
        batch.alter_column("intent", type_=sa.String(200), existing_type=sa.String(256), existing_nullable=False)
