"""Fixtures shared across the suite: the built contracts, a real anvil node, a real PostgreSQL server."""

import pytest
from web3 import Web3

from opml.chain.anvil import Anvil
from opml.chain.contracts import Artifact, deploy
from opml.chain.toolchain import build_contracts

from .postgres import PostgresServer


@pytest.fixture(scope="session")
def contracts_built():
    """forge build once per session (incremental), so no test runs stale bytecode."""
    build_contracts()


@pytest.fixture(scope="session")
def anvil(contracts_built):
    with Anvil() as node:
        yield node


@pytest.fixture(scope="session")
def w3(anvil):
    return Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 300}))


@pytest.fixture(scope="session")
def mips(w3):
    """The on-chain one-step verifier, deployed once."""
    return deploy(w3, Artifact.load("MIPS"))


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the session, started the first time a test asks for it."""
    with PostgresServer() as server:
        yield server
