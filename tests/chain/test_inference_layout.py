"""InferenceLayout.sol against the Python VM: region roots, the initial state, output proofs."""

import random

import pytest

from opml.chain.contracts import Artifact, deploy
from opml.guest import INFERENCE, LARGE_OUTPUT, MALFORMED_OUTPUT, built, mlp_benchmark_data
from opml.vm import layout as L
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.machine import length_prefixed
from opml.vm.memory import PagedMemory
from opml.vm.output import ResultKind

from ..models.conftest import SEED


@pytest.fixture(scope="module")
def layout(w3):
    return deploy(w3, Artifact.load("LayoutHarness"))


def python_region_root(data: bytes) -> bytes:
    memory = PagedMemory()
    memory.write(L.INPUT.start, length_prefixed(data))
    return memory.region_root(L.INPUT)


@pytest.mark.parametrize("length", [0, 1, 27, 28, 29, 60, 64, 100, 784, 1000, 4092, 4096, 5000])
def test_region_root(layout, length):
    data = random.Random(length).randbytes(length)
    assert bytes(layout.functions.regionRoot(data).call()) == python_region_root(data)


def runs():
    model = (SEED / "model.bin").read_bytes()
    mlp_model, mlp_input, _ = mlp_benchmark_data()
    return [
        Execution(Program.from_file(built(INFERENCE.name)), model=model, input=(SEED / "input_7.bin").read_bytes()),
        Execution(Program.from_file(built(INFERENCE.name)), model=model, input=b"\x01" * 783),  # exits with 20
        Execution(Program.from_file(built("bench/mlp")), model=mlp_model, input=mlp_input),
    ]


@pytest.mark.parametrize("execution", runs(), ids=["seed model", "wrong input", "mlp"])
def test_initial_state_and_output_proof(layout, execution):
    roots = execution.region_roots()
    onchain = layout.functions.initialStateHash(
        roots["program"], roots["input"], roots["model"], execution.program.entry
    )
    assert bytes(onchain.call()) == execution.initial_state.hash

    result = execution.run()
    siblings = execution.output_siblings()
    root = result.final_state.mem_root
    assert layout.functions.isOutputOf(result.output, siblings, root).call()
    tampered = bytes([result.output[0] ^ 1]) + result.output[1:] if result.output else b"\x00"
    assert not layout.functions.isOutputOf(tampered, siblings, root).call()
    assert not layout.functions.isOutputOf(result.output + b"\x00", siblings, root).call()
    assert not layout.functions.isOutputOf(result.output, [siblings[1], siblings[0], *siblings[2:]], root).call()


@pytest.mark.parametrize("guest", [MALFORMED_OUTPUT, LARGE_OUTPUT], ids=["malformed", "too large"])
def test_leaf_proofs_of_the_output_region(layout, guest):
    """InferenceLayout.leafUnderRegion and memoryRootWithOutputRegion take the VM's leaf proofs to the final
    memory root, for leaves anywhere in the region; a leaf at another index proves nothing."""
    execution = Execution(Program.from_file(built(guest.name)))
    result = execution.run()
    final = execution.final_output()
    assert final.proof is not None
    leaves = [final.proof.first]  # the length leaf; for a malformed region also the leaf of its stray byte
    if final.reading.kind == ResultKind.MALFORMED_OUTPUT:
        leaves.append(final.proof.second)
    for leaf in leaves:
        region = bytes(layout.functions.leafUnderRegion(leaf.leaf, leaf.index, list(leaf.siblings)).call())
        root = layout.functions.memoryRootWithOutputRegion(region, list(final.proof.region_siblings)).call()
        assert bytes(root) == result.final_state.mem_root
        if any(leaf.leaf):
            moved = layout.functions.leafUnderRegion(leaf.leaf, leaf.index + 1, list(leaf.siblings)).call()
            assert bytes(moved) != region
