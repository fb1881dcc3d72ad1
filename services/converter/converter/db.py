"""The converter's tables: one row per stored model (keyed by its root M), and the journal of the
transactions it sends (written before each is broadcast, so a restart never registers twice)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The converter's own metadata, so no other service's tables mix into its migrations."""


class UtcDateTime(TypeDecorator):
    """A timestamp stored in UTC and read back as an aware datetime (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def utc_now() -> datetime:
    return datetime.now(UTC)


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


class TransactionRecord(Base):
    __tablename__ = "transactions"

    tx_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    intent: Mapped[str] = mapped_column(String(256), index=True)
    nonce: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[int | None] = mapped_column(Integer)  # 1 mined, 0 reverted, -1 dropped; None while unknown
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
