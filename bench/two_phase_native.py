"""The linked two-phase game's honest path: a graph claim computed natively, and its largest node in the VM.

    python bench/two_phase_native.py [--json] [--no-minilm]

Per model (seed_mlp: the seed's model on input_7; cnn: opml's SmallCNN, random weights, on input_7;
minilm: all-MiniLM-L6-v2 on one sentence of 16 tokens):

- native_s: the honest claim's computation from the model file and the input: parse, every value (the
  reference kernels on the canonical values before it), every value root, the value tree and S_n; the
  median of REPEATS runs. Target for minilm: <= 2 s.
- nodes, value_bytes (the n + 1 values together), states_15_ms (15 phase-1 states, as one round of a
  16-ary dissection asks of the defender).
- largest_node: the node with the most multiply-adds (the largest value when none has any), run in the VM as
  the link would: largest_node_steps, largest_node_vm_s (the run), largest_node_boot_s (building its initial
  memory: the model's pages hashed). Its output is checked against the native value bit for bit.

Prints its figures; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

from opml.graph.native import GraphRun, evaluate
from opml.graph.values import decode_value
from opml.guest import NODE, built
from opml.models import minilm
from opml.models.convert import graph_from_module
from opml.models.formats import InputType, Op
from opml.models.training import SmallCNN, with_softmax
from opml.vm.elf import Program
from opml.vm.execution import Execution

SEED = Path(__file__).resolve().parents[1] / "models" / "seed-mnist"
SENTENCE = "A man is eating food."
REPEATS = 5
DISSECTION_STATES = 15  # interior states of one round of a 16-ary dissection
STEP_LIMIT = 1 << 36


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def multiply_adds(run: GraphRun, node: int) -> int:
    """The multiply-adds of node `node` of the run (linear, conv2d, matmul), from its values' shapes."""
    graph_node = run.graph.nodes[node]
    outputs = math.prod(decode_value(run.values[node + 1]).shape)
    if graph_node.op == Op.LINEAR:
        return outputs * run.graph.tensors[graph_node.tensors[0]].shape[1]
    if graph_node.op == Op.CONV2D:
        weight = run.graph.tensors[graph_node.tensors[0]]
        return outputs * (weight.size // weight.shape[0])
    if graph_node.op == Op.MATMUL:
        return outputs * decode_value(run.values[graph_node.inputs[0]]).shape[-1]
    return 0


def largest_node(run: GraphRun) -> int:
    return max(range(run.node_count), key=lambda node: (multiply_adds(run, node), len(run.values[node + 1])))


def measure(program: Program, model: bytes, input: bytes) -> dict:
    times = []
    for _ in range(REPEATS):
        seconds, run = timed(lambda: evaluate(model, input))
        run.final_state  # noqa: B018 - S_n is part of the claim's computation
        times.append(seconds)
    states = list(range(1, run.node_count, max(1, run.node_count // DISSECTION_STATES)))[:DISSECTION_STATES]
    states_s, _ = timed(lambda: [run.state(t) for t in states])
    node = largest_node(run)
    boot_s, execution = timed(
        lambda: Execution.node_run(
            program, model=model, input=input, node=node, node_count=run.node_count, operands=run.operands(node)
        )
    )
    vm_s, result = timed(lambda: execution.run(max_steps=STEP_LIMIT))
    assert result.exit_code == 0, result.stderr
    assert result.output == run.values[node + 1], "the VM's node value differs from the native one"
    return {
        "native_s": round(statistics.median(times), 4),
        "nodes": run.node_count,
        "value_bytes": sum(len(value) for value in run.values),
        "states_15_ms": round(states_s * 1000, 2),
        "largest_node": node,
        "largest_node_op": run.graph.nodes[node].op.name.lower(),
        "largest_node_multiply_adds": multiply_adds(run, node),
        "largest_node_steps": result.steps,
        "largest_node_vm_s": round(vm_s, 3),
        "largest_node_boot_s": round(boot_s, 3),
    }


def cnn_model() -> bytes:
    torch.manual_seed(0)
    cnn = SmallCNN().eval()
    for parameter in cnn.parameters():
        parameter.data.mul_(0.05)  # keep raw-pixel activations in range
    return graph_from_module(with_softmax(cnn), (1, 28, 28), InputType.U8).to_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--no-minilm", action="store_true", help="leave out all-MiniLM-L6-v2")
    args = parser.parse_args()
    program = Program.from_file(built(NODE.name))
    seed_model, input_7 = (SEED / "model.bin").read_bytes(), (SEED / "input_7.bin").read_bytes()
    evaluate(seed_model, input_7)  # load the JIT cache (keccak)
    Execution(program).run(max_steps=1000)
    figures = {
        "seed_mlp": measure(program, seed_model, input_7),
        "cnn": measure(program, cnn_model(), input_7),
    }
    if not args.no_minilm:
        figures["minilm"] = measure(program, minilm.model_file(), minilm.encode_text(SENTENCE))
    if not args.json:
        for name, row in figures.items():
            print(
                f"{name:9} native {row['native_s']:.3f} s  {row['nodes']} nodes  {row['value_bytes']:,} value bytes  "
                f"15 states {row['states_15_ms']} ms  largest node {row['largest_node']} ({row['largest_node_op']}, "
                f"{row['largest_node_multiply_adds']:,} multiply-adds): {row['largest_node_steps']:,} steps, "
                f"vm {row['largest_node_vm_s']} s (boot {row['largest_node_boot_s']} s)"
            )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
