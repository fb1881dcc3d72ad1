"""Shared by the graph tests: the node program, the seed model, a node run in the VM against the native
node program."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from opml.graph.native import NodeOutcome, node_program
from opml.graph.values import value_root
from opml.guest import NODE, built
from opml.vm import layout as L
from opml.vm.elf import Program
from opml.vm.execution import Execution

SEED = Path(__file__).resolve().parents[2] / "models" / "seed-mnist"
NODE_STEP_LIMIT = 200_000_000  # far above any node of these tests (the largest is a few million steps)


@pytest.fixture(scope="session")
def node_elf() -> Program:
    return Program.from_file(built(NODE.name))


@pytest.fixture(scope="session")
def seed_model() -> bytes:
    return (SEED / "model.bin").read_bytes()


@pytest.fixture(scope="session")
def input_7() -> bytes:
    return (SEED / "input_7.bin").read_bytes()


@dataclass(frozen=True)
class VmNode:
    exit_code: int
    output: bytes
    output_root: bytes  # the output region's root in the final state's memory
    steps: int
    stderr: bytes


def run_node_in_vm(program: Program, model: bytes, input: bytes, node: int, node_count: int, operands) -> VmNode:
    execution = Execution.node_run(
        program, model=model, input=input, node=node, node_count=node_count, operands=operands
    )
    result = execution.run(max_steps=NODE_STEP_LIMIT)
    output_root = execution.machine_at(result.steps).memory.region_root(L.OUTPUT)
    return VmNode(result.exit_code, result.output, output_root, result.steps, result.stderr)


def vm_equals_native(program: Program, model: bytes, input: bytes, node: int, node_count: int, operands) -> NodeOutcome:
    """Run the node in the VM and natively: the same exit code and, on success, the same value bytes and the
    VM's output region root is the native value root. The native outcome."""
    native = node_program(model, node, node_count, operands)
    vm = run_node_in_vm(program, model, input, node, node_count, operands)
    assert vm.exit_code == native.exit_code, (native.message, vm.stderr)
    if native.exit_code == 0:
        if len(native.value) <= L.MAX_OUTPUT_BYTES:  # a longer value is no result's output: its root says it all
            assert vm.output == native.value
        assert vm.output_root == value_root(native.value)
    else:
        assert vm.output == b""
    return native
