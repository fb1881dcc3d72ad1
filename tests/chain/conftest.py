"""The chain tests share one anvil node (tests/conftest.py) with the contracts deployed."""

import pytest

from opml.chain.contracts import Artifact, deploy


@pytest.fixture(scope="session", autouse=True)
def built(contracts_built):
    """Every chain test runs against freshly built contracts."""


@pytest.fixture(scope="session")
def step_batch(w3, mips):
    return deploy(w3, Artifact.load("StepBatch"), mips.address)
