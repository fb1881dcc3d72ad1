"""The on-chain one-step verifier (contracts/src/MIPS.sol) from Python.

Every caller turns a VM step witness into the verifier's call data through
`step_arguments`, so agents, tests and benchmarks all use one path.
"""

from __future__ import annotations

from web3.contract import Contract

from ..vm.machine import StepWitness


def step_arguments(witness: StepWitness) -> tuple[bytes, bytes]:
    """The (stateData, proof) arguments of MIPS.step for this witness."""
    return witness.pre_state.encode(), witness.proof


def onchain_post_state_hash(mips: Contract, witness: StepWitness) -> bytes:
    """What the contract says the post-state hash is (an eth_call)."""
    return bytes(mips.functions.step(*step_arguments(witness)).call())
