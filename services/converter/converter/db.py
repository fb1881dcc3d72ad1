"""The converter's tables: one row per stored model (keyed by its root M), and the journal of the
transactions it sends (written before each is broadcast, so a restart never registers twice: the journal
every sending service shares, opml.service.journal)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from opml.service.journal import JournalColumns, UtcDateTime, utc_now


class Base(DeclarativeBase):
    """The converter's own metadata, so no other service's tables mix into its migrations."""


class ModelRecord(Base):
    __tablename__ = "models"

    root: Mapped[str] = mapped_column(String(66), primary_key=True)  # 0x + 64 hex digits: the model id
    file_hash: Mapped[str] = mapped_column(String(66))  # keccak256 of the model file, 0x-hex
    size: Mapped[int] = mapped_column(BigInteger)
    file_format: Mapped[str] = mapped_column(String(16))  # seed | graph
    source_format: Mapped[str] = mapped_column(String(16))  # seed | graph | state_dict | onnx
    summary: Mapped[dict] = mapped_column(JSON)  # opml.models.summary.ModelSummary as a dict
    onchain_model_id: Mapped[int | None] = mapped_column(BigInteger)
    registry_address: Mapped[str | None] = mapped_column(String(42))  # the registry the id is in
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, index=True)
    registered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TransactionRecord(JournalColumns, Base):
    """A registration this converter sent (opml.service.journal)."""
