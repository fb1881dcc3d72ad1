"""One transaction journal (opml.service.journal) for the agents and the converter, each in its own database:
one table definition, and migrations that move the rows each kept before (the agents' string statuses, the
converter's integers) to it, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from converter.db import Base as ConverterBase
from converter.db import TransactionRecord
from sqlalchemy import text

from opml.agents.intents import subject_of
from opml.agents.store import MIGRATIONS as AGENT_MIGRATIONS
from opml.agents.store import AgentStore, TransactionRow
from opml.agents.store import Base as AgentBase
from opml.chain.client import JournalEntry
from opml.service.db import Database, ensure_database
from opml.service.journal import SqlJournal

CONVERTER_MIGRATIONS = Path(__import__("converter").__file__).parent / "migrations"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        url = str(tmp_path / "journal.db")
    else:
        url = f"{request.getfixturevalue('postgres_server').url.rsplit('/', 1)[0]}/journal_{uuid.uuid4().hex[:12]}"
        ensure_database(url)
    database = Database(url)
    yield database
    database.dispose()


def migrate(database: Database, migrations: Path, revision: str, down: bool = False) -> None:
    with database.engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(migrations))
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def differences(database: Database, metadata) -> list:
    """What the migrated transactions table lacks of its declaration (alembic's autogenerate comparison)."""
    with database.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), metadata)
    return [diff for diff in diffs if "transactions" in repr(diff)]


def test_the_agents_and_the_converter_declare_one_table():
    def shape(table):
        return [(column.name, repr(column.type), column.nullable, column.primary_key, bool(column.index))
                for column in table.columns]  # fmt: skip

    assert shape(TransactionRow.__table__) == shape(TransactionRecord.__table__)
    assert TransactionRow.__tablename__ == TransactionRecord.__tablename__ == "transactions"


def test_the_agents_journal_rows_move_to_the_one_schema(database):
    migrate(database, AGENT_MIGRATIONS, "0002")  # the schema before the one journal
    with database.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO transactions (tx_hash, intent, nonce, status, gas_used, block_number, created_at) VALUES "
            "('0x01', 'game 7 select [0,1953757] r1', 1, 'reverted', 51234, 10, '2026-01-01 00:00:00+00'),"
            "('0x02', 'commit r5', 2, 'mined', 40000, 11, '2026-01-01 00:00:01+00'),"
            "('0x03', 'challenge c3', 3, 'dropped', NULL, NULL, '2026-01-01 00:00:02+00'),"
            "('0x04', 'timeout g12 r0', 4, 'pending', NULL, NULL, '2026-01-01 00:00:03+00'),"
            "('0x05', 'withdraw 100 at nonce 5', 5, 'mined', 30000, 12, '2026-01-01 00:00:04+00')"
        ))  # fmt: skip
    migrate(database, AGENT_MIGRATIONS, "head")
    assert differences(database, AgentBase.metadata) == []
    store = AgentStore(database)
    assert store.check_migrated()
    rows = {row.tx_hash: (row.subject, row.status, row.gas_used, row.block_number) for row in store.transactions()}
    assert rows == {
        "0x01": ("game:7", "reverted", 51234, 10),
        "0x02": ("request:5", "mined", 40000, 11),
        "0x03": ("claim:3", "dropped", None, None),
        "0x04": ("game:12", "pending", None, None),
        "0x05": (None, "mined", 30000, 12),
    }
    journal = store.journal()
    assert journal.pending("timeout g12 r0") == JournalEntry("timeout g12 r0", b"\x04", 4)
    assert journal.mined("commit r5") == b"\x02"
    assert [row.tx_hash for row in journal.rows(subjects=["game:7", "game:12"], statuses=["reverted"])] == ["0x01"]
    # a new row gets its subject as it is recorded, and settles to the same words
    journal.record(JournalEntry("game 7 bisect [0,122110] r2", b"\x06", 6))
    journal.settle(b"\x06", 0, 45000, 13)
    (new,) = journal.rows(intent_prefix="game 7 bisect")
    assert (new.subject, new.status, new.gas_used, new.block_number) == ("game:7", "reverted", 45000, 13)
    assert new.settled_at is not None
    migrate(database, AGENT_MIGRATIONS, "0002", down=True)  # and back
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT status FROM transactions WHERE tx_hash = '0x01'")).scalar() == "reverted"


def test_the_converters_journal_rows_move_to_the_one_schema(database):
    migrate(database, CONVERTER_MIGRATIONS, "0001")  # integer statuses: None unknown, 1 mined, 0 reverted, -1 dropped
    with database.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO transactions (tx_hash, intent, nonce, status, gas_used, block_number, created_at) VALUES "
            "('0x01', 'registerModel 0xaa in 0xr on chain 1', 1, 1, 90000, 10, '2026-01-01 00:00:00+00'),"
            "('0x02', 'registerModel 0xbb in 0xr on chain 1', 2, NULL, NULL, NULL, '2026-01-01 00:00:01+00'),"
            "('0x03', 'registerModel 0xcc in 0xr on chain 1', 3, 0, 50000, 11, '2026-01-01 00:00:02+00'),"
            "('0x04', 'registerModel 0xdd in 0xr on chain 1', 4, -1, 0, 0, '2026-01-01 00:00:03+00')"
        ))  # fmt: skip
    migrate(database, CONVERTER_MIGRATIONS, "head")
    assert differences(database, ConverterBase.metadata) == []
    journal = SqlJournal(database, TransactionRecord)
    rows = {row.tx_hash: (row.status, row.gas_used, row.block_number, row.subject) for row in journal.rows()}
    assert rows == {
        "0x01": ("mined", 90000, 10, None),
        "0x02": ("pending", None, None, None),
        "0x03": ("reverted", 50000, 11, None),
        "0x04": ("dropped", None, None, None),
    }
    assert journal.mined("registerModel 0xaa in 0xr on chain 1") == b"\x01"
    assert journal.pending("registerModel 0xbb in 0xr on chain 1") == JournalEntry(
        "registerModel 0xbb in 0xr on chain 1", b"\x02", 2
    )
    assert journal.mined("registerModel 0xcc in 0xr on chain 1") is None  # reverted is not mined
    migrate(database, CONVERTER_MIGRATIONS, "0001", down=True)  # and back to the integers
    with database.engine.connect() as connection:
        statuses = dict(connection.execute(text("SELECT tx_hash, status FROM transactions")).all())
    assert statuses == {"0x01": 1, "0x02": None, "0x03": 0, "0x04": -1}


def test_every_intent_the_agents_send_names_its_subject():
    assert subject_of("commit r5") == subject_of("reveal r5") == "request:5"
    assert subject_of("finalize c3") == subject_of("settle c3") == subject_of("challenge c3") == "claim:3"
    assert subject_of("game 17 bisect [0,1953757] r0") == subject_of("timeout g17 r4") == "game:17"
    assert subject_of("game 1 select [0,1] r2") == "game:1"
    assert subject_of("withdraw 5 at nonce 3") is None and subject_of("deploy MIPS") is None
    assert subject_of("commit r5 again") is None
