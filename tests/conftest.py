"""Fixtures shared across the suite: the built contracts, a real anvil node, a real PostgreSQL server."""

import pytest
from web3 import Web3

from opml.chain.anvil import Anvil
from opml.chain.contracts import Artifact, deploy
from opml.chain.toolchain import build_contracts

from .postgres import PostgresServer
from .timing import Timing, measure


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


@pytest.fixture(scope="session")
def timing(anvil) -> Timing:
    """This machine's pace now: a transaction's round trip on anvil and the seed model's run in the VM, from
    which tests that wait on chain time size their windows and clocks (tests/timing.py)."""
    from opml.guest import INFERENCE, built
    from opml.resources import seed_model_dir
    from opml.vm.elf import Program
    from opml.vm.execution import Execution

    model = (seed_model_dir() / "model.bin").read_bytes()
    seven = (seed_model_dir() / "input_7.bin").read_bytes()

    def run():
        Execution(Program.from_file(built(INFERENCE.name)), model=model, input=seven).run()

    run()  # the VM's kernels loaded from numba's cache, so what is timed is the run
    measured = measure(Web3(Web3.HTTPProvider(anvil.url)), run)
    print(f"\ntiming: a round trip {measured.round_trip_s * 1000:.0f} ms, the seed run {measured.run_s:.2f} s")
    return measured
