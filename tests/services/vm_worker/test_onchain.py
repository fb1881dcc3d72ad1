"""The worker's step proofs are accepted by the on-chain verifier MIPS.sol (a real anvil)."""

from __future__ import annotations

import httpx

from opml.game.remote import ExecutionRequest, RemoteTrace

from .conftest import unhex


def mips_step(mips, pre_state: bytes, proof: bytes) -> bytes:
    return bytes(mips.functions.step(pre_state, proof).call())


def test_every_kind_of_step_proof_is_accepted_by_mips_step(mips, worker, seed_execution):
    steps = seed_execution["result"]["steps"]
    # the first steps, a load (1003), stores of the output (from 270 steps before the end), the exit, past it
    chosen = [0, 1, *range(1000, 1005), *range(steps - 272, steps - 254), 1_500_000, steps - 1, steps]
    witnesses = [
        httpx.get(f"{worker}/executions/{seed_execution['id']}/proof", params={"step": step}).json() for step in chosen
    ]
    accesses = {w["data_address"] >> 28 for w in witnesses if w["data_address"] is not None}
    assert {0, 2} <= accesses, "the chosen steps should load from the program and store to the output"
    for witness in witnesses:
        post = mips_step(mips, unhex(witness["pre_state"]), unhex(witness["proof"]))
        assert post == unhex(witness["post_state_hash"]), witness["step"]


def test_a_remote_witness_settles_a_step_as_the_local_one_does(mips, worker, seed_model, seed_input):  # noqa: F811
    remote = RemoteTrace(worker, ExecutionRequest(step_limit=1 << 30, input=seed_input, model=seed_model))
    for step in (17, 654_321):
        witness = remote.step_witness(step)
        expected = remote.state_hashes([step + 1])[0]
        assert mips_step(mips, witness.state_data, witness.proof) == expected
