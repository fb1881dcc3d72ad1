"""An agent's memory: the block cursor, every registry event it has read, its transactions (the journal
written before each broadcast), and where each piece of work stands. The chain is the truth; this is
what lets a restarted agent resume without re-reading history or sending anything twice, and what the
services' read APIs show.

Rows are keyed by on-chain ids. SQLite by default, PostgreSQL by URL (opml.service.db); the schema
is migrated by Alembic (opml/agents/migrations) when an agent starts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..chain.events import ChainEvent
from ..service.db import Database
from ..service.journal import JournalColumns, SqlJournal
from .intents import subject_of
from .work import WorkKey, WorkKind

MIGRATIONS = Path(__file__).parent / "migrations"
IDS = ("requestId", "claimId", "gameId")
REGISTRY_CURSOR = "registry"  # the cursor of the registry's events: the last block whose events are all stored


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class CursorRow(Base):
    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    block: Mapped[int] = mapped_column(BigInteger)


class EventRow(Base):
    """A registry event, with its ids pulled out for lookups and its arguments as JSON (bytes as 0x-hex)."""

    __tablename__ = "chain_events"
    __table_args__ = (UniqueConstraint("block_number", "log_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    log_index: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str] = mapped_column(String(66), index=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    request_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    claim_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    game_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    args: Mapped[dict] = mapped_column(JSON)
    block_timestamp: Mapped[int] = mapped_column(BigInteger, default=0)  # chain time of the event's block


class TransactionRow(JournalColumns, Base):
    """One transaction this agent sent, recorded before broadcast, settled when its receipt is known: the
    journal every service that sends shares (opml.service.journal), in this agent's database."""


class WorkRow(Base):
    """Where one piece of work stands (a request to serve, a claim to check, a game to play).

    `detail` holds, besides what the work records of itself, the scheduler's fields: `deadline` (chain time
    the next action must be mined by), `budget` (the seconds that deadline allowed in all: a window or a
    clock) and `wake_at` (wall-clock time before which there is nothing to do)."""

    __tablename__ = "work"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # a WorkKey: "request:5", "game:3"
    state: Mapped[str] = mapped_column(String(32))
    done: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    @property
    def work_key(self) -> WorkKey:
        return WorkKey.parse(self.key)


class MarginRow(Base):
    """One action of this agent that had a deadline: how much of its budget was left when it was mined."""

    __tablename__ = "margins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_key: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))  # challenge, bisect, select, resolve, timeout, ...
    tx_hash: Mapped[str] = mapped_column(String(66))
    deadline: Mapped[int] = mapped_column(BigInteger)  # chain time
    mined_at: Mapped[int] = mapped_column(BigInteger)  # chain time of the block it was mined in
    budget: Mapped[int] = mapped_column(BigInteger)  # seconds the deadline allowed in all
    latency_ms: Mapped[int | None] = mapped_column(BigInteger)  # from the event that made it due to mined
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def left(self) -> int:
        return self.deadline - self.mined_at


class AlertRow(Base):
    """A request whose final result is not the one this agent computed: a lie became final (or this agent is
    wrong). Nothing can undo it on-chain; an operator must look."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    claim_id: Mapped[int] = mapped_column(BigInteger)
    final_state_hash: Mapped[str] = mapped_column(String(66))
    our_state_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SubmittedRequestRow(Base):
    """A request sent through the submitter's API (the on-chain request id once it is mined)."""

    __tablename__ = "submitted_requests"

    request_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(66))
    model_root: Mapped[str] = mapped_column(String(66))
    input_hex: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def to_json(value: Any) -> Any:
    """Event arguments as JSON: bytes become 0x-hex, lists and dicts recurse."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value


class AgentStore:
    """The agent's tables over one database."""

    def __init__(self, database: Database):
        self.database = database

    @classmethod
    def open(cls, url: str) -> AgentStore:
        database = Database(url)
        database.migrate(MIGRATIONS)
        return cls(database)

    def check_migrated(self) -> bool:
        return self.database.is_migrated(MIGRATIONS)

    # --- cursor ------------------------------------------------------------------------------------

    def cursor(self, name: str, default: int | None) -> int | None:
        with self.database.session() as session:
            row = session.get(CursorRow, name)
            return row.block if row is not None else default

    def save_events(self, name: str, events: list[ChainEvent], cursor: int) -> list[ChainEvent]:
        """Store events not seen before and move the cursor, in one transaction; returns the new events."""
        fresh = []
        with self.database.session() as session:
            for event in events:
                seen = session.scalar(
                    select(EventRow.id).where(
                        EventRow.block_number == event.block_number, EventRow.log_index == event.log_index
                    )
                )
                if seen is not None:
                    continue
                args = to_json(event.args)
                session.add(
                    EventRow(
                        block_number=event.block_number,
                        log_index=event.log_index,
                        tx_hash="0x" + event.tx_hash.hex(),
                        name=event.name,
                        request_id=args.get("requestId"),
                        claim_id=args.get("claimId"),
                        game_id=args.get("gameId"),
                        args=args,
                        block_timestamp=event.block_timestamp,
                    )
                )
                fresh.append(event)
            row = session.get(CursorRow, name)
            if row is None:
                session.add(CursorRow(name=name, block=cursor))
            else:
                row.block = max(row.block, cursor)
        return fresh

    def events(self, *, name: str | None = None, until: int | None = None, **ids: int) -> list[EventRow]:
        """Stored events in chain order, filtered by name, by request_id/claim_id/game_id, and up to block `until`
        (inclusive) when it is given."""
        query = select(EventRow).order_by(EventRow.block_number, EventRow.log_index)
        if name is not None:
            query = query.where(EventRow.name == name)
        if until is not None:
            query = query.where(EventRow.block_number <= until)
        for column, value in ids.items():
            query = query.where(getattr(EventRow, column) == value)
        with self.database.session() as session:
            return list(session.scalars(query))

    def events_in(self, tx_hashes: list[str], until: int | None = None) -> list[EventRow]:
        """The stored events of these transactions, in chain order (up to block `until` when it is given)."""
        if not tx_hashes:
            return []
        query = (
            select(EventRow).where(EventRow.tx_hash.in_(tx_hashes)).order_by(EventRow.block_number, EventRow.log_index)
        )
        if until is not None:
            query = query.where(EventRow.block_number <= until)
        with self.database.session() as session:
            return list(session.scalars(query))

    # --- work --------------------------------------------------------------------------------------

    def work(self, key: WorkKey) -> WorkRow | None:
        with self.database.session() as session:
            return session.get(WorkRow, str(key))

    def open_work(self) -> list[WorkRow]:
        with self.database.session() as session:
            return list(session.scalars(select(WorkRow).where(WorkRow.done.is_(False))))

    def count_work(self, kind: WorkKind) -> dict[str, int]:
        """How many pieces of work of a kind are in each state."""
        query = (
            select(WorkRow.state, func.count()).where(WorkRow.key.startswith(f"{kind.value}:")).group_by(WorkRow.state)
        )
        with self.database.session() as session:
            return {state: count for state, count in session.execute(query)}

    def all_work(self, kind: WorkKind) -> list[WorkRow]:
        with self.database.session() as session:
            return list(session.scalars(select(WorkRow).where(WorkRow.key.startswith(f"{kind.value}:"))))

    def set_work(self, key: WorkKey, state: str | None = None, *, done: bool = False, **detail: Any) -> None:
        """Record where `key` stands (`state` None: keep it) and merge `detail` into what it records."""
        with self.database.session() as session:
            row = session.get(WorkRow, str(key))
            if row is None:
                session.add(WorkRow(key=str(key), state=state or "new", done=done, detail=to_json(detail)))
            else:
                row.state, row.done = state or row.state, done
                row.detail = {**(row.detail or {}), **to_json(detail)}

    def add_work(self, key: WorkKey, state: str = "new", **detail: Any) -> bool:
        """Start tracking `key` unless it is tracked already; True if it is new."""
        with self.database.session() as session:
            if session.get(WorkRow, str(key)) is not None:
                return False
            session.add(WorkRow(key=str(key), state=state, done=False, detail=to_json(detail)))
            return True

    def wake(self, key: WorkKey) -> None:
        """Make open work due now (an event it waited for arrived)."""
        with self.database.session() as session:
            row = session.get(WorkRow, str(key))
            if row is not None and not row.done and (row.detail or {}).get("wake_at", 0) > 0:
                row.detail = {**row.detail, "wake_at": 0}

    # --- margins -----------------------------------------------------------------------------------

    def record_margin(self, key: WorkKey, action: str, tx_hash: str, deadline: int, mined_at: int, budget: int,
                      latency_ms: int | None) -> None:  # fmt: skip
        with self.database.session() as session:
            session.add(MarginRow(work_key=str(key), action=action, tx_hash=tx_hash, deadline=deadline,
                                  mined_at=mined_at, budget=budget, latency_ms=latency_ms))  # fmt: skip

    def slowest_recent_move(self, count: int = 100) -> float | None:
        """Seconds of the slowest of this agent's last `count` timed moves (None before it has made any)."""
        query = select(MarginRow.latency_ms).where(MarginRow.latency_ms.is_not(None)).order_by(MarginRow.id.desc())
        with self.database.session() as session:
            latencies = list(session.scalars(query.limit(count)))
        return max(latencies) / 1000 if latencies else None

    def margins(self, key: WorkKey | None = None) -> list[MarginRow]:
        query = select(MarginRow).order_by(MarginRow.id)
        if key is not None:
            query = query.where(MarginRow.work_key == str(key))
        with self.database.session() as session:
            return list(session.scalars(query))

    # --- alerts --------------------------------------------------------------------------------------

    def record_alert(self, request_id: int, claim_id: int, final_state_hash: str, our_state_hash: str) -> None:
        with self.database.session() as session:
            if session.scalar(select(AlertRow.id).where(AlertRow.request_id == request_id)) is None:
                session.add(AlertRow(request_id=request_id, claim_id=claim_id, final_state_hash=final_state_hash,
                                     our_state_hash=our_state_hash))  # fmt: skip

    def alerts(self, request_ids: list[int] | None = None) -> dict[int, AlertRow]:
        """Alerts by request id (of these requests only, when they are given)."""
        query = select(AlertRow)
        if request_ids is not None:
            query = query.where(AlertRow.request_id.in_(request_ids))
        with self.database.session() as session:
            return {row.request_id: row for row in session.scalars(query)}

    # --- transactions (the TransactionManager's journal) ------------------------------------------

    def transactions(self, *, intent_prefix: str | None = None) -> list[TransactionRow]:
        return self.journal().rows(intent_prefix=intent_prefix)

    def journal(self) -> SqlJournal:
        return SqlJournal(self.database, TransactionRow, subject_of)

    # --- requests sent through the API -------------------------------------------------------------

    def record_submitted(self, request_id: int, tx_hash: str, model_root: str, input: bytes) -> None:
        with self.database.session() as session:
            if session.get(SubmittedRequestRow, request_id) is None:
                session.add(SubmittedRequestRow(request_id=request_id, tx_hash=tx_hash, model_root=model_root,
                                                input_hex=input.hex()))  # fmt: skip

    def submitted(self, request_id: int) -> SubmittedRequestRow | None:
        with self.database.session() as session:
            return session.get(SubmittedRequestRow, request_id)


def dumps(value: Any) -> str:
    return json.dumps(to_json(value))
