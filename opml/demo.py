"""The main job on the embedded default: what `make run` shows.

Runs the benchmark MLP guest in the VM: golden image, run to exit, the state at a
step, and a step proof checked against the state roots. Later parts of the system
(contracts, agents) extend this into the full request -> claim -> dispute flow.
"""

from __future__ import annotations

import time

from .guest import built, mlp_benchmark_data
from .vm.elf import Program
from .vm.execution import Execution
from .vm.merkle import verify_leaf_proof


def main() -> None:
    program = Program.from_file(built("bench/mlp"))
    model, input, reference = mlp_benchmark_data()
    start = time.perf_counter()
    execution = Execution(program, model=model, input=input)
    print(f"golden image: state {execution.initial_state.hash.hex()} ({time.perf_counter() - start:.3f} s)")
    for name, root in execution.region_roots().items():
        print(f"  {name:8} root {root.hex()}")
    start = time.perf_counter()
    result = execution.run()
    elapsed = time.perf_counter() - start
    print(f"run: exit {result.exit_code}, {result.steps:,} steps in {elapsed:.3f} s ({result.steps / elapsed / 1e6:.0f}M steps/s)")
    print(f"  final state {result.final_state.hash.hex()}")
    print(f"  output matches the float32 reference bit for bit: {result.output == reference}")
    step = result.steps // 2
    witness = execution.proof_at(step)
    ok = verify_leaf_proof(witness.instruction_proof, witness.pre_state.pc & ~3, witness.pre_state.mem_root)
    print(f"step {step:,}: {witness.pre_state.hash.hex()[:16]}.. -> {witness.post_state.hash.hex()[:16]}..")
    print(f"  proof {len(witness.proof)} bytes, instruction leaf verifies against the pre-state root: {ok}")
    if result.output != reference or not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
