"""Fixtures shared across the suite."""

import pytest

from .postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the session, started the first time a test asks for it."""
    with PostgresServer() as server:
        yield server
