"""MIPS.step rejects invalid witnesses, and a tampered post-state is caught."""

import dataclasses

import pytest
from web3.exceptions import ContractLogicError

from opml.chain.verifier import onchain_post_state_hash, step_arguments
from opml.guest import built
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.merkle import PROOF_BYTES
from opml.vm.state import State


@pytest.fixture(scope="module")
def store_witness():
    """A witness of a store instruction in the memory test program."""
    execution = Execution(Program.from_file(built("tests/memory")))
    for step in range(execution.run().steps):
        witness = execution.proof_at(step)
        if witness.data_address is not None and witness.pre_state.mem_root != witness.post_state.mem_root:
            return witness
    raise AssertionError("no store in the program")


def reverts(mips, state: bytes, proof: bytes, error: str):
    with pytest.raises(ContractLogicError) as raised:
        mips.functions.step(state, proof).call()
    selector = mips.w3.keccak(text=error)[:4].hex()
    assert str(raised.value.data).removeprefix("0x").startswith(selector), f"expected {error}, got {raised.value.data}"


def flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 1]) + data[position + 1 :]


def test_the_honest_witness_passes(mips, store_witness):
    assert onchain_post_state_hash(mips, store_witness) == store_witness.post_state.hash


@pytest.mark.parametrize("position", [0, 31, 32, 500, PROOF_BYTES - 1])
def test_tampered_instruction_proof_reverts(mips, store_witness, position):
    state, proof = step_arguments(store_witness)
    reverts(mips, state, flip(proof, position), "InvalidMemoryProof(uint32)")


@pytest.mark.parametrize("position", [PROOF_BYTES, PROOF_BYTES + 40, 2 * PROOF_BYTES - 1])
def test_tampered_data_proof_reverts(mips, store_witness, position):
    state, proof = step_arguments(store_witness)
    reverts(mips, state, flip(proof, position), "InvalidMemoryProof(uint32)")


def test_tampered_state_reverts(mips, store_witness):
    state, proof = step_arguments(store_witness)
    reverts(mips, flip(state, 5), proof, "InvalidMemoryProof(uint32)")  # another memory root


def test_a_proof_for_the_wrong_address_reverts(mips, store_witness):
    execution = Execution(Program.from_file(built("tests/memory")))
    other = execution.proof_at(3)  # a proof of other leaves of another state
    state, _ = step_arguments(store_witness)
    reverts(mips, state, store_witness.instruction_proof + other.data_proof, "InvalidMemoryProof(uint32)")
    reverts(mips, state, store_witness.data_proof + store_witness.data_proof, "InvalidMemoryProof(uint32)")


def test_malformed_encodings_revert(mips, store_witness):
    state, proof = step_arguments(store_witness)
    reverts(mips, state[:-1], proof, "InvalidStateLength(uint256)")
    reverts(mips, state, proof[:-1], "InvalidProofLength(uint256)")
    bad_flag = state[:53] + b"\x02" + state[54:]
    reverts(mips, bad_flag, proof, "InvalidExitedFlag(uint8)")


def test_a_tampered_post_state_is_detected(mips, store_witness):
    claimed = dataclasses.replace(store_witness.post_state, registers=(0, 1) + store_witness.post_state.registers[2:])
    assert onchain_post_state_hash(mips, store_witness) != claimed.hash
    forged_memory = dataclasses.replace(store_witness.post_state, mem_root=store_witness.pre_state.mem_root)
    assert onchain_post_state_hash(mips, store_witness) != forged_memory.hash


def test_exited_states_step_to_themselves(mips, store_witness):
    exited = dataclasses.replace(store_witness.pre_state, exited=True, exit_code=7)
    assert bytes(mips.functions.step(exited.encode(), store_witness.proof).call()) == exited.hash
    assert State.decode(exited.encode()) == exited
