"""Alembic's entry point for the converter's migrations (Database.migrate runs them at start)."""

from converter.db import Base
from opml.service.migrations_env import run

run(Base.metadata)
