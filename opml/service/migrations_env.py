"""The body of every service's Alembic env.py: run the migrations on the connection `Database.migrate`
passes in (or on `sqlalchemy.url` when alembic is run by hand)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, create_engine


def run(target_metadata: MetaData) -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection, target_metadata)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        _migrate(connection, target_metadata)


def _migrate(connection, target_metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
