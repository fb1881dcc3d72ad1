"""A real anvil node with the contracts deployed, shared by the chain tests."""

import pytest
from web3 import Web3

from opml.chain.anvil import Anvil
from opml.chain.contracts import Artifact, deploy
from opml.chain.toolchain import build_contracts


@pytest.fixture(scope="session", autouse=True)
def contracts_built():
    """forge build once per session (incremental), so no test runs stale bytecode."""
    build_contracts()


@pytest.fixture(scope="session")
def anvil():
    with Anvil() as node:
        yield node


@pytest.fixture(scope="session")
def w3(anvil):
    return Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 300}))


@pytest.fixture(scope="session")
def mips(w3):
    return deploy(w3, Artifact.load("MIPS"))


@pytest.fixture(scope="session")
def step_batch(w3, mips):
    return deploy(w3, Artifact.load("StepBatch"), mips.address)
