"""The transaction journal: one table definition and one implementation of opml.chain.client's Journal, for
every service that sends transactions (the agents, the converter). Each service keeps the table in its own
database, declared on its own metadata (`class TransactionRow(JournalColumns, Base)`), so its migrations stay
its own; the columns, the statuses and what they mean are the same everywhere.

A row is written before its transaction is broadcast (`record`, status pending) and settled once its receipt
is known: mined, reverted (mined, but it reverted: it still cost its gas), or dropped (never mined, or not
found after a restart). `subject` says what the transaction is about when the sender names it ("request:5",
"claim:3", "game:7", as opml.agents.work.WorkKey writes them), so the read side can list a request's or a
game's transactions, the reverted ones too, without parsing intents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, String, TypeDecorator, select
from sqlalchemy.orm import Mapped, mapped_column

from ..chain.client import JournalEntry
from .db import Database

PENDING, MINED, REVERTED, DROPPED = "pending", "mined", "reverted", "dropped"
STATUSES = (PENDING, MINED, REVERTED, DROPPED)
# what TransactionManager.settle is given (a receipt's status, or -1 for a transaction never mined)
STATUS_OF_OUTCOME = {1: MINED, 0: REVERTED, -1: DROPPED}


def utc_now() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator):
    """A timestamp stored in UTC and read back as an aware datetime (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class JournalColumns:
    """The journal's table, mixed into a service's own declarative base."""

    __tablename__ = "transactions"

    tx_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    intent: Mapped[str] = mapped_column(String(256), index=True)
    subject: Mapped[str | None] = mapped_column(String(64), index=True)  # "request:5", "claim:3", "game:7"
    nonce: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)  # pending, mined, reverted, dropped
    gas_used: Mapped[int | None] = mapped_column(BigInteger)  # from the receipt (mined or reverted)
    block_number: Mapped[int | None] = mapped_column(BigInteger)  # None unless it was mined
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)  # recorded, before broadcast
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


def no_subject(intent: str) -> str | None:
    return None


class SqlJournal:
    """The Journal protocol of opml.chain.client over a service's `transactions` table (`row`: its mapped
    class); `subject_of(intent)` names what each recorded transaction is about."""

    def __init__(self, database: Database, row: type, subject_of: Callable[[str], str | None] = no_subject):
        self.database = database
        self.row = row
        self.subject_of = subject_of

    # --- the Journal protocol ---------------------------------------------------------------------------

    def pending(self, intent: str) -> JournalEntry | None:
        row = self._latest(intent, PENDING)
        return JournalEntry(row.intent, bytes.fromhex(row.tx_hash[2:]), row.nonce) if row else None

    def record(self, entry: JournalEntry) -> None:
        tx_hash = "0x" + entry.tx_hash.hex()
        with self.database.session() as session:
            if session.get(self.row, tx_hash) is None:
                session.add(self.row(tx_hash=tx_hash, intent=entry.intent, subject=self.subject_of(entry.intent),
                                     nonce=entry.nonce, status=PENDING))  # fmt: skip

    def settle(self, tx_hash: bytes, status: int, gas_used: int, block_number: int) -> None:
        with self.database.session() as session:
            row = session.get(self.row, "0x" + tx_hash.hex())
            if row is None:
                return
            row.status = STATUS_OF_OUTCOME.get(status, DROPPED)
            row.gas_used = gas_used or None
            row.block_number = block_number or None
            row.settled_at = utc_now()

    # --- reads ------------------------------------------------------------------------------------------

    def mined(self, intent: str) -> bytes | None:
        """The hash of the last transaction for `intent` that was mined without reverting."""
        row = self._latest(intent, MINED)
        return None if row is None else bytes.fromhex(row.tx_hash[2:])

    def rows(
        self,
        *,
        intent_prefix: str | None = None,
        subjects: Iterable[str] | None = None,
        statuses: Iterable[str] | None = None,
    ) -> list:
        """Recorded transactions, oldest first: those whose intent starts with `intent_prefix`, about one of
        `subjects`, with one of `statuses` (each filter only when given)."""
        query = select(self.row).order_by(self.row.created_at)
        if intent_prefix is not None:
            query = query.where(self.row.intent.startswith(intent_prefix, autoescape=True))
        if subjects is not None:
            query = query.where(self.row.subject.in_(list(subjects)))
        if statuses is not None:
            query = query.where(self.row.status.in_(list(statuses)))
        with self.database.session() as session:
            return list(session.scalars(query))

    def _latest(self, intent: str, status: str):
        query = (
            select(self.row)
            .where(self.row.intent == intent, self.row.status == status)
            .order_by(self.row.created_at.desc())
            .limit(1)
        )
        with self.database.session() as session:
            return session.scalars(query).first()
