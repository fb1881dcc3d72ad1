"""VM benchmark: the float32 784-128-10 MLP guest in our VM and in unicorn, same process.

    python bench/vm.py [--json]

Prints its figures; the last line is one JSON object. Targets on the 2-core dev
machine: vm_instr_per_s >= 300M, ratio_vs_unicorn >= 0.7, state_at_step_ms_median
<= 50, golden_s <= 1 (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from opml.guest import built, mlp_benchmark_data
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.machine import Machine
from opml.vm.peer import UnicornPeer, relocate_stack_and_heap

REPEATS = 3
QUERIES = 20


def best_of(repeats, action):
    """Smallest wall time of `repeats` calls of action(), and its last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    say = (lambda *a: None) if args.json else print

    program = Program.from_file(built("bench/mlp"))
    model, input, reference = mlp_benchmark_data()

    Execution(program, model=model, input=input).state_at(1000)  # compile or load the JIT cache

    golden_s, execution = best_of(REPEATS, lambda: Execution(program, model=model, input=input))
    run_s = float("inf")
    for _ in range(REPEATS):
        fresh = Execution(program, model=model, input=input)
        start = time.perf_counter()
        result = fresh.run()
        run_s = min(run_s, time.perf_counter() - start)
    assert result.exit_code == 0 and result.output == reference, "the MLP run is wrong"
    steps = result.steps
    say(f"golden image        {golden_s * 1000:8.1f} ms")
    say(f"run to exit         {run_s * 1000:8.1f} ms  {steps:,} steps (snapshots + final state hash)")

    def bare_loop():
        machine = Machine.boot(program, model=model, input=input)
        machine.memory.reserve(256)
        return machine.run(steps)

    loop_s, _ = best_of(REPEATS, bare_loop)

    def unicorn_run():
        peer = UnicornPeer(program, model=model, input=input)
        start = time.perf_counter()
        peer.run_until(result.final_state.pc)
        return time.perf_counter() - start, peer

    unicorn_s = float("inf")
    for _ in range(REPEATS):
        elapsed, peer = unicorn_run()
        unicorn_s = min(unicorn_s, elapsed)
    relocated = relocate_stack_and_heap(Machine.boot(program, model=model, input=input))
    relocated.run(steps)
    assert peer.registers() == [int(r) for r in relocated.registers], "unicorn disagrees with the VM"
    say(f"interpreter loop    {loop_s * 1000:8.1f} ms")
    say(f"unicorn (no hooks)  {unicorn_s * 1000:8.1f} ms")

    execution = Execution(program, model=model, input=input)
    execution.run()
    rng = random.Random(1)
    state_ms, proof_ms = [], []
    for step in rng.sample(range(steps), QUERIES):
        start = time.perf_counter()
        execution.state_at(step).hash
        state_ms.append((time.perf_counter() - start) * 1000)
    for step in rng.sample(range(steps), QUERIES):
        start = time.perf_counter()
        execution.proof_at(step)
        proof_ms.append((time.perf_counter() - start) * 1000)

    figures = {
        "steps": steps,
        "vm_instr_per_s": round(steps / run_s),
        "vm_loop_instr_per_s": round(steps / loop_s),
        "unicorn_instr_per_s": round(steps / unicorn_s),
        "ratio_vs_unicorn": round(unicorn_s / run_s, 3),
        "golden_s": round(golden_s, 4),
        "run_s": round(run_s, 4),
        "state_at_step_ms_median": round(statistics.median(state_ms), 2),
        "state_at_step_ms_max": round(max(state_ms), 2),
        "proof_ms_median": round(statistics.median(proof_ms), 2),
        "snapshot_interval": execution.snapshot_interval,
        "snapshots": len(execution.snapshots),
    }
    say(
        f"state at step       {figures['state_at_step_ms_median']:8.2f} ms median, {figures['state_at_step_ms_max']} max"
    )
    say(f"step proof          {figures['proof_ms_median']:8.2f} ms median")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
