"""Gas of the on-chain one-step verifier (MIPS.step) on a real anvil node.

    python bench/step_gas.py [--json]

Steps are sampled from the float32 MLP run and from every instruction-family test
program. Execution gas is measured inside the EVM (gasleft() around each call in the
StepBatch helper: the callee's execution plus the CALL itself); transaction gas is the
receipt of real transactions, calldata included. Prints its figures; the last line is
one JSON object. Target: median execution gas <= 60,000, max <= 80,000.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics

from web3 import Web3

from opml.chain.anvil import Anvil
from opml.chain.contracts import Artifact, deploy
from opml.chain.toolchain import build_contracts
from opml.chain.verifier import step_arguments
from opml.guest import TEST_PROGRAMS, built, mlp_benchmark_data
from opml.vm.disasm import mnemonic
from opml.vm.elf import Program
from opml.vm.execution import Execution

MLP_SAMPLE = 300
PROGRAM_SAMPLE = 100  # per test program
TRANSACTIONS = 40
BATCH = 200


def sample_witnesses(rng: random.Random):
    model, input, _ = mlp_benchmark_data()
    mlp = Execution(Program.from_file(built("bench/mlp")), model=model, input=input)
    steps = mlp.run().steps
    witnesses = [mlp.proof_at(rng.randrange(steps)) for _ in range(MLP_SAMPLE)]
    for program in TEST_PROGRAMS:
        execution = Execution(Program.from_file(built(program.name)))
        total = execution.run().steps
        for step in sorted(rng.sample(range(total), min(PROGRAM_SAMPLE, total))):
            witnesses.append(execution.proof_at(step))
    return witnesses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    say = (lambda *a: None) if args.json else print

    build_contracts()
    rng = random.Random(5)
    witnesses = sample_witnesses(rng)
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 300}))
        mips = deploy(w3, Artifact.load("MIPS"))
        batch = deploy(w3, Artifact.load("StepBatch"), mips.address)
        exec_gas, by_instruction = [], {}
        for start in range(0, len(witnesses), BATCH):
            chunk = witnesses[start : start + BATCH]
            states, proofs = zip(*(step_arguments(w) for w in chunk))
            hashes, gas = batch.functions.stepMany(list(states), list(proofs)).call()
            for witness, post, used in zip(chunk, hashes, gas):
                assert bytes(post) == witness.post_state.hash, "the contract disagrees with the VM"
                exec_gas.append(used)
                pc = witness.pre_state.pc
                word = int.from_bytes(witness.instruction_proof[pc & 28 : (pc & 28) + 4], "big")
                by_instruction.setdefault(mnemonic(word), []).append(used)
        tx_gas = []
        for witness in rng.sample(witnesses, TRANSACTIONS):
            tx = mips.functions.step(*step_arguments(witness)).transact({"from": w3.eth.accounts[0]})
            tx_gas.append(w3.eth.wait_for_transaction_receipt(tx).gasUsed)

    figures = {
        "steps_measured": len(exec_gas),
        "step_exec_gas_median": int(statistics.median(exec_gas)),
        "step_exec_gas_max": max(exec_gas),
        "step_tx_gas_median": int(statistics.median(tx_gas)),
        "proof_bytes": len(witnesses[0].proof),
        "state_bytes": len(witnesses[0].pre_state.encode()),
    }
    heaviest = sorted(((max(v), k) for k, v in by_instruction.items()), reverse=True)[:5]
    say(f"steps measured       {figures['steps_measured']}")
    say(f"execution gas        median {figures['step_exec_gas_median']:,}, max {figures['step_exec_gas_max']:,}")
    say(f"transaction gas      median {figures['step_tx_gas_median']:,} (calldata included)")
    say(f"proof                {figures['proof_bytes']} bytes + {figures['state_bytes']}-byte state")
    say("heaviest             " + ", ".join(f"{name} {gas:,}" for gas, name in heaviest))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
