"""SmolLM2 generation as a graph of the two-phase game: the honest claim computed natively, and its largest
node in the VM (docs/llm-graph.md).

    python bench/llm_graph.py [--json]

- native_generate_s: the honest claim of a 16-token prompt and 32 new tokens (greedy; this prompt does not end
  its sequence within them, so every step is computed): every value of the fixed graph (opml.models.llm.graph),
  every value root, the value tree and S_n. The model file is converted and its weights dequantized before
  (convert_s, prepare_s, not included: once per process), and the kernels warmed on a short request.
- node_count, value_mb (the n + 1 values together), tokens_match_generate (the claim's tokens are generate()'s).
- largest_node_*: the two candidates for the longest node run, the prompt's largest product (16 rows of an FFN
  matrix) and a chunk of the LM head (14,563 rows of the tied Q8_0 embedding), each run in the VM by the LLM
  node program over the real model region, as a link would: the longer one's steps and seconds (its boot,
  which hashes the 99 MB model region, apart: largest_node_boot_s), and whether its output region's root is
  the native value root.
- phase1_rounds: the rounds of phase 1's dissection over [0, node_count] at arity 16 (the widest segment each
  time); phase2_rounds_largest: those of phase 2 over the largest node's run.
- peak_rss_mb: the whole process (the weights, every value, the VM holding the model region).

Targets: native_generate_s <= 20, largest_node_vm_s <= 60, peak_rss_mb <= 6144. Prints its figures; the last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from opml.guest import LLM_GRAPH, built
from opml.models.llm.generate import generate
from opml.models.llm.gguf_import import packaged_model_file
from opml.models.llm.graph import MATRIX_OF, GenerationRun, Role, evaluate_generation, request_bytes, weights_of
from opml.models.llm.tokenizer import packaged_tokenizer
from opml.protocol.dissection import max_rounds
from opml.vm import layout as L
from opml.vm.elf import Program
from opml.vm.execution import Execution

PROMPT = "Once upon a time, in a small village by the sea, there lived a"  # 16 tokens
PROMPT_TOKENS = 16
NEW_TOKENS = 32
ARITY = 16
STEP_LIMIT = 1 << 36


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def multiply_adds(run: GenerationRun, node: int) -> int:
    """A product node's multiply-adds: rows x inputs x outputs, from its values' shapes."""
    graph = run.graph
    out = graph.value_shape(node + 1)
    x = graph.value_shape(graph.node(node).operands[0])
    return out.rows * x.cols * out.cols


def largest_candidates(run: GenerationRun) -> list[int]:
    """The prompt's product with the most multiply-adds, and the first LM head chunk of step 1: the longest
    node runs (about 95 VM steps a multiply-add, 120 a Q8_0 weight of a one-row product)."""
    graph = run.graph
    products = [i for i in range(graph.step_nodes) if graph.node(i).role in MATRIX_OF]
    head_chunk = next(i for i in range(graph.step_nodes, 2 * graph.step_nodes) if graph.node(i).role == Role.HEAD)
    return [max(products, key=lambda node: multiply_adds(run, node)), head_chunk]


def run_node(program: Program, model: bytes, input: bytes, run: GenerationRun, node: int) -> dict:
    boot_s, execution = timed(lambda: Execution.node_run(program, model=model, input=input, node=node,
                                                         node_count=run.node_count, operands=run.operands(node)))  # fmt: skip
    vm_s, result = timed(lambda: execution.run(max_steps=STEP_LIMIT))
    assert result.exit_code == 0, result.stderr
    root = execution.machine_at(result.steps).memory.region_root(L.OUTPUT)
    described = run.graph.node(node)
    return {
        "node": node,
        "what": f"step {described.step} {described.role.name.lower()}"
        + (f" layer {described.layer}" if described.role in MATRIX_OF else f" chunk {described.chunk}"),
        "steps": result.steps,
        "vm_s": vm_s,
        "boot_s": boot_s,
        "bit_exact": root == run.roots[node + 1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    say = (lambda *a: None) if args.json else print

    convert_s, model = timed(packaged_model_file)
    weights = weights_of(model)
    prepare_s, _ = timed(weights.prepare)
    tokenizer = packaged_tokenizer()
    prompt = tokenizer.encode(PROMPT)
    assert len(prompt) == PROMPT_TOKENS, len(prompt)
    evaluate_generation(weights, request_bytes(prompt[:4], 2))  # the kernels loaded (numba's cache) or compiled
    input = request_bytes(prompt, NEW_TOKENS, weights.config)
    native_s, run = timed(lambda: evaluate_generation(weights, input))
    value_mb = sum(map(len, run.values)) / 1e6
    say(f"native: {native_s:.2f} s for {run.node_count} nodes, {value_mb:.1f} MB of values, roots and tree")
    say(f"  {tokenizer.decode(run.tokens)!r}")
    same = run.tokens == generate(weights, prompt, NEW_TOKENS).tokens

    program = Program.from_file(built(LLM_GRAPH.name))
    measured = [run_node(program, model, input, run, node) for node in largest_candidates(run)]
    for node in measured:
        say(f"node {node['node']} ({node['what']}): {node['steps']:,} steps, {node['vm_s']:.1f} s in the VM "
            f"(boot {node['boot_s']:.1f} s), bit-exact {node['bit_exact']}")  # fmt: skip
    largest = max(measured, key=lambda node: node["steps"])

    figures = {
        "prompt_tokens": len(prompt),
        "new_tokens": len(run.tokens),
        "convert_s": round(convert_s, 2),
        "prepare_s": round(prepare_s, 2),
        "native_generate_s": round(native_s, 2),
        "node_count": run.node_count,
        "value_mb": round(value_mb, 1),
        "tokens_match_generate": same,
        "largest_node": largest["what"],
        "largest_node_steps": largest["steps"],
        "largest_node_vm_s": round(largest["vm_s"], 1),
        "largest_node_boot_s": round(largest["boot_s"], 1),
        "largest_node_bit_exact": largest["bit_exact"],
        "other_node": next(f"{n['what']}: {n['steps']} steps, {n['vm_s']:.1f} s" for n in measured if n is not largest),
        "phase1_rounds": max_rounds(run.node_count, ARITY),
        "phase2_rounds_largest": max_rounds(largest["steps"], ARITY),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
