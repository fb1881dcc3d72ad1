"""A real anvil node and built contracts for the agents' tests."""

import pytest

from opml.chain.anvil import Anvil
from opml.chain.toolchain import build_contracts


@pytest.fixture(scope="session", autouse=True)
def contracts_built():
    build_contracts()


@pytest.fixture(scope="session")
def anvil():
    with Anvil() as node:
        yield node
