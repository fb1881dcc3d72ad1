"""Differential: the Python VM against MIPS.sol on a real anvil node.

The default run checks a sample; OPML_FULL_DIFFERENTIAL=1 (`make test-differential`,
run by CI) checks the full counts: 100,000 random steps and 1,000 steps of the MLP.
"""

import os
import random

import pytest

from opml.chain.verifier import step_arguments
from opml.guest import TEST_PROGRAMS, built, mlp_benchmark_data
from opml.vm.elf import Program
from opml.vm.execution import Execution

from .random_steps import random_witness

FULL = os.environ.get("OPML_FULL_DIFFERENTIAL") == "1"
RANDOM_STEPS = 100_000 if FULL else 3_000
MLP_STEPS = 1_000 if FULL else 100
BATCH = 200  # anvil refuses requests much over a megabyte


def check_batch(step_batch, witnesses):
    """Send witnesses in batches of one eth_call each; return the mismatches."""
    mismatches = []
    for start in range(0, len(witnesses), BATCH):
        chunk = witnesses[start : start + BATCH]
        states, proofs = zip(*(step_arguments(w) for w in chunk))
        onchain, _ = step_batch.functions.stepMany(list(states), list(proofs)).call()
        for witness, got in zip(chunk, onchain):
            if bytes(got) != witness.post_state.hash:
                mismatches.append(witness)
    return mismatches


def describe(witness):
    pre = witness.pre_state
    return f"step at pc {pre.pc:#x}: pre {pre.encode().hex()} proof {witness.proof.hex()}"


def test_random_steps(step_batch):
    rng = random.Random(0xC0FFEE)
    checked = 0
    while checked < RANDOM_STEPS:
        witnesses = [random_witness(rng) for _ in range(min(5 * BATCH, RANDOM_STEPS - checked))]
        mismatches = check_batch(step_batch, witnesses)
        assert not mismatches, f"{len(mismatches)} mismatches; first: {describe(mismatches[0])}"
        checked += len(witnesses)
    assert checked == RANDOM_STEPS


@pytest.mark.parametrize("name", [p.name for p in TEST_PROGRAMS])
def test_every_step_of_the_guest_test_programs(step_batch, name):
    execution = Execution(Program.from_file(built(name)), snapshot_interval=256)
    final = execution.run()
    witnesses = [execution.proof_at(step) for step in range(final.steps + 1)]  # + one exited step
    assert witnesses[-1].pre_state.exited
    assert not check_batch(step_batch, witnesses)


def test_random_steps_of_the_mlp(step_batch):
    model, input, _ = mlp_benchmark_data()
    execution = Execution(Program.from_file(built("bench/mlp")), model=model, input=input)
    final = execution.run()
    rng = random.Random(7)
    witnesses = [execution.proof_at(rng.randrange(final.steps)) for _ in range(MLP_STEPS)]
    assert not check_batch(step_batch, witnesses)
