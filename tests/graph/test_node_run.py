"""A node run in the VM: its memory layout, its start state computed from roots alone as the registry does,
and everything an Execution answers working on it."""

import struct

import numpy as np
import pytest

from opml.errors import BadInput
from opml.graph.native import evaluate
from opml.graph.values import encode_value, value_root
from opml.models.formats import model_root
from opml.vm import layout as L
from opml.vm.execution import Execution
from opml.vm.machine import length_prefixed
from opml.vm.merkle import content_root, hash_pair, root_from_proof
from opml.vm.node_run import (
    EMPTY_REGION_ROOT,
    NodeHeader,
    node_memory_root,
    node_start_state,
    node_start_state_hash,
)
from opml.vm.state import State


def test_the_node_header_is_i_n_k_then_the_slots():
    header = NodeHeader(node=5, node_count=9, slots=(0, 4))
    assert header.to_bytes() == struct.pack(">5I", 5, 9, 2, 0, 4)
    assert header.root == content_root(length_prefixed(header.to_bytes()), 28)


def test_the_start_state_from_roots_is_the_node_runs_initial_state(node_elf, seed_model, input_7):
    run = evaluate(seed_model, input_7)
    M, I = model_root(seed_model), value_root(input_7)  # noqa: E741 - the spec's names
    for node in range(run.node_count):  # operand slot 0 (the input) and later slots
        operands = run.operands(node)
        execution = Execution.node_run(
            node_elf, model=seed_model, input=input_7, node=node, node_count=run.node_count, operands=operands
        )
        roots = execution.region_roots()
        P = roots["program"]  # the node program's root, as registered
        assert (roots["model"], roots["input"]) == (M, I)
        slots = [slot for slot, _ in operands]
        operand_roots = [run.roots[slot] for slot in slots]
        expected = node_start_state_hash(P, node_elf.entry, I, M, node, run.node_count, slots, operand_roots)
        assert execution.initial_state.hash == expected
        assert execution.initial_state == node_start_state(
            P, node_elf.entry, I, M, node, run.node_count, slots, operand_roots
        )


def test_the_memory_root_of_two_operands_and_regions_in_place(node_elf):
    a, b = encode_value(np.ones((2, 3), np.float32)), encode_value(np.arange(3, dtype=np.float32))
    execution = Execution.node_run(
        node_elf, model=b"model", input=b"in", node=7, node_count=8, operands=[(3, a), (6, b)]
    )
    memory = execution.machine.memory
    assert memory.read(L.NODE_HEADER.start, 24) == length_prefixed(struct.pack(">5I", 7, 8, 2, 3, 6))
    assert memory.read(L.OPERANDS[1].start, 4 + len(b)) == length_prefixed(b)
    assert memory.region_root(L.OPERANDS[2]) == EMPTY_REGION_ROOT
    roots = execution.region_roots()
    header = NodeHeader(7, 8, (3, 6)).root
    expected = node_memory_root(
        roots["program"], roots["input"], roots["model"], header, [value_root(a), value_root(b)]
    )
    assert execution.initial_state.mem_root == expected
    state = execution.initial_state
    assert state.heap == L.NODE_HEAP_START == 0xC000_0000 and state.registers[L.REG_SP] == L.STACK_TOP
    assert (state.pc, state.next_pc) == (node_elf.entry, node_elf.entry + 4)


def test_an_execution_of_a_node_run_answers_like_any_other(node_elf, seed_model, input_7):
    """States at any step, step proofs, the output's siblings, a saved run restored elsewhere."""
    run = evaluate(seed_model, input_7)
    node = 2  # the second linear: about 27,000 steps
    arguments = dict(model=seed_model, input=input_7, node=node, node_count=run.node_count, operands=run.operands(node))
    execution = Execution.node_run(node_elf, snapshot_interval=4096, **arguments)
    result = execution.run()
    assert result.exit_code == 0 and result.output == run.values[node + 1]
    final = result.final_state
    # The output region's root under the final memory root is the value root (what the link checks).
    node_root = run.roots[node + 1]
    siblings = execution.output_siblings()
    assert len(siblings) == 4
    gindex, root = L.OUTPUT.gindex, node_root
    for sibling in siblings:
        root = hash_pair(sibling, root) if gindex & 1 else hash_pair(root, sibling)
        gindex >>= 1
    assert root == final.mem_root
    assert State.decode(final.encode()) == final
    # A state in the middle equals a fresh run's, and its step proof checks out.
    middle = result.steps // 2
    fresh = Execution.node_run(node_elf, **arguments)
    fresh.machine.run(middle)
    assert execution.state_at(middle) == fresh.machine.state()
    witness = execution.proof_at(middle)
    assert root_from_proof(witness.instruction_proof, witness.pre_state.pc & ~3) == witness.pre_state.mem_root
    assert witness.post_state == execution.state_at(middle + 1)
    # Saved and restored into another Execution of the same node run: the same answers without a run.
    restored = Execution.node_run(node_elf, **arguments)
    restored.restore_run(execution.saved_run())
    assert restored.run().final_state == final
    assert restored.state_at(middle) == execution.state_at(middle)


def test_a_node_run_has_at_most_four_operand_regions(node_elf):
    with pytest.raises(BadInput, match="at most 4"):
        Execution.node_run(node_elf, model=b"", input=b"", node=0, node_count=1, operands=[(0, b"")] * 5)
    with pytest.raises(BadInput, match="at most 4"):
        node_start_state_hash(bytes(32), 0, bytes(32), bytes(32), 0, 1, [0] * 5, [bytes(32)] * 5)
