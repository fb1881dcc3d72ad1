"""A service's database: SQLite by default, PostgreSQL by URL, schema by Alembic migrations at start.

    database = Database(settings.database_url)
    database.migrate(MIGRATIONS)      # alembic upgrade head, from the service's migrations folder
    with database.session() as session: ...

SQLite runs in WAL mode with a busy timeout so the agent's threads and the API can share
it; `postgresql://` URLs use psycopg 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from ..errors import Unavailable


class Base(DeclarativeBase):
    pass


def normalize_url(url: str) -> str:
    """postgresql:// and postgres:// mean psycopg 3; a bare path means a SQLite file."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{url}"
    return url


class Database:
    def __init__(self, url: str):
        self.url = normalize_url(url)
        if self.url.startswith("sqlite:///") and not self.url.startswith("sqlite:///:memory:"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(self.url, **_engine_options(self.url))
        if self.url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends, or rolls back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def migrate(self, script_location: str | Path) -> None:
        """Apply every migration not applied yet (alembic upgrade head)."""
        with self.engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(script_location))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def is_migrated(self, script_location: str | Path) -> bool:
        """Whether the database is at the newest migration (for /readyz)."""
        config = Config()
        config.set_main_option("script_location", str(script_location))
        head = ScriptDirectory.from_config(config).get_current_head()
        try:
            with self.engine.connect() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
        except Exception as error:
            raise Unavailable(f"the database does not answer: {error}") from None
        if current != head:
            raise Unavailable(f"the database is at migration {current}, not {head}")
        return True

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"check_same_thread": False, "timeout": 30}}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def ensure_database(url: str) -> None:
    """Create a PostgreSQL database if the server has none of that name (the launcher gives every service
    its own database on one server); SQLite files create themselves."""
    url = normalize_url(url)
    if not url.startswith("postgresql"):
        return
    server, name = url.rsplit("/", 1)
    engine = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first()
            if exists is None:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
