"""LLM benchmark: SmolLM2-135M-Instruct (Q4_1 GGUF) generating natively, against transformers, and its
largest op call in the VM.

    python bench/llm.py [--json] [--quick]

- native_generate_s: the honest native computation of a 16-token prompt + 32 new tokens (greedy, no
  early stop): every op call of the recorded generation, then keccak256 of every value's bytes
  (hash_values_s, included). The model file is converted and its weights dequantized before
  (convert_s, prepare_s, not included: once per process).
- transformers_generate_s: transformers' greedy generation of the same 32 tokens on the same GGUF
  (its model loaded before: transformers_load_s).
- token_agreement: generated tokens equal at the same position, over the 22 chat prompts of
  opml.models.llm.agreement (only the 16-token prompt with --quick); differences_are_ties: each first
  difference is a logit tie within 1e-3 in both runs.
- largest_node_*: the longest node run of that generation's graph (docs/llm-graph.md: the prompt's largest
  product or an LM head chunk, as bench/llm_graph.py picks them), run in the VM by the LLM node program on the
  real model region: its steps, the run's seconds (the boot, which hashes the 99 MB model region, apart) and
  whether its output root is the native value's.
- peak_rss_mb: the whole process (our weights, transformers' model, the VM with the model region).
- Through the services (the four as processes on anvil, node runs of up to 2^31 steps; skipped with
  --no-services): request_to_reveal_s, the same prompt and 32 new tokens POSTed to the submitter to its claim
  revealed (computed natively); then a lying submitter flips one bit of the middle node's value in a request
  of its own (the prompt's last id changed), and the challenger's game: dispute_rounds (phase 1's, then phase
  2's after the link: phase1_rounds, phase2_rounds), link_gas, dispute_gas (every transaction of that game)
  and dispute_wall_s (the lie revealed to the game's end).

Targets: native_generate_s <= 20, token_agreement >= 0.95, largest_node_vm_s <= 60, peak_rss_mb <= 6144,
request_to_reveal_s <= 40, dispute_rounds <= 14, dispute_gas <= 3,000,000, dispute_wall_s <= 300.
Prints its figures; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from opml.models.llm import agreement
from opml.models.llm.format import parse_model
from opml.models.llm.generate import Trace, Weights, generate, value_hashes
from opml.models.llm.gguf_import import packaged_gguf, packaged_model_file
from opml.models.llm.tokenizer import packaged_tokenizer

PROMPT = "Once upon a time, in a small village by the sea, there lived a"  # 16 tokens
PROMPT_TOKENS = 16
NEW_TOKENS = 32
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/llm_graph.py and bench/two_phase.py


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def honest_generation(weights: Weights, prompt: list[int]) -> tuple[Trace, float]:
    """The generation (no early stop: every step computed) and the hashes of all its values."""
    trace = generate(weights, prompt, NEW_TOKENS, stop_at_eos=False)
    hash_s, _ = timed(lambda: value_hashes(trace))
    return trace, hash_s


def through_services(model_file: bytes, prompt: list[int]) -> dict:
    """The generation asked through the submitter, then a lie in it disputed (the module docstring)."""
    from two_phase import Services

    from opml.models.llm.graph import GenerationGraph
    from opml.models.llm.requests import ids_input
    from opml.protocol.parameters import Parameters
    from opml.stack import Stack, StackConfig

    config = parse_model(model_file).config
    parameters = Parameters(max_step_limit=1 << 31, challenge_window=30, clock_budget=240, request_timeout=900)
    input = ids_input(prompt, NEW_TOKENS, config)
    with (
        tempfile.TemporaryDirectory() as data,
        Stack(StackConfig.ephemeral(Path(data), parameters=parameters, echo=False, poll_interval=0.1)) as stack,
    ):
        services = Services(stack, program_id=stack.deployment.llm_program_id)
        model_id = services.upload("smollm2.oplm", model_file)
        figures = {"request_to_reveal_s": services.honest(model_id, input)}
        node_count = GenerationGraph(config, len(prompt), NEW_TOKENS).node_count
        figures |= services.lie("llm", model_id, input, node_count)
    figures["dispute_rounds"] = figures["phase1_rounds"] + figures["phase2_rounds"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--quick", action="store_true", help="agreement on the 16-token prompt only")
    parser.add_argument("--no-services", action="store_true", help="leave out the figures through the services")
    args = parser.parse_args()
    say = (lambda *a: None) if args.json else print

    convert_s, model_file = timed(packaged_model_file)
    weights = Weights(parse_model(model_file))
    prepare_s, _ = timed(weights.prepare)
    tokenizer = packaged_tokenizer()
    prompt = tokenizer.encode(PROMPT)
    assert len(prompt) == PROMPT_TOKENS, len(prompt)
    generate(weights, prompt[:4], 1)  # compile the kernels (numba caches them on disk after the first run)
    native_s, (trace, hash_s) = timed(lambda: honest_generation(weights, prompt))
    say(
        f"native: {native_s:.2f} s for {len(trace.calls)} op calls, {len(trace.values)} values (hashing {hash_s:.2f} s)"
    )
    say(f"  {tokenizer.decode(trace.tokens)!r}")

    load_s, (_, model) = timed(lambda: agreement.load_transformers(packaged_gguf()))
    hf_s, (hf_tokens, _) = timed(lambda: agreement.transformers_generate(model, prompt, NEW_TOKENS, -1))
    say(f"transformers: load {load_s:.1f} s, generate {hf_s:.2f} s")
    if args.quick:
        comparisons = agreement.Agreement([agreement.compare(weights, model, prompt)])
    else:
        comparisons = agreement.compare_prompts(weights, tokenizer, model)
    say(f"token agreement {comparisons.token_agreement:.4f} over {len(comparisons.comparisons)} prompts")

    # The longest node run of the generation's graph (docs/llm-graph.md), by the LLM node program: the op-by-op
    # program's largest call, the LM head over all 49,152 rows, no longer fits a result's 64 KiB output.
    from llm_graph import largest_candidates, run_node

    from opml.guest import LLM_GRAPH, built
    from opml.models.llm.graph import evaluate_generation
    from opml.models.llm.requests import ids_input
    from opml.vm.elf import Program

    graph_input = ids_input(prompt, NEW_TOKENS, weights.model.config)
    run = evaluate_generation(model_file, graph_input)
    program = Program.from_file(built(LLM_GRAPH.name))
    largest = max((run_node(program, model_file, graph_input, run, node) for node in largest_candidates(run)),
                  key=lambda node: node["steps"])  # fmt: skip
    say(f"largest node: {largest['what']}: {largest['steps']:,} steps, {largest['vm_s']:.1f} s in the VM "
        f"(boot {largest['boot_s']:.1f} s), bit-exact {largest['bit_exact']}")  # fmt: skip

    figures = {
        "prompt_tokens": len(prompt),
        "new_tokens": len(trace.tokens),
        "convert_s": round(convert_s, 2),
        "prepare_s": round(prepare_s, 2),
        "native_generate_s": round(native_s, 2),
        "hash_values_s": round(hash_s, 2),
        "op_calls": len(trace.calls),
        "values": len(trace.values),
        "value_mb": round(sum(v.nbytes for v in trace.values) / 1e6, 1),
        "transformers_load_s": round(load_s, 1),
        "transformers_generate_s": round(hf_s, 2),
        "bench_prompt_same_tokens": trace.tokens == hf_tokens,
        "token_agreement": round(comparisons.token_agreement, 4),
        "agreement_prompts": len(comparisons.comparisons),
        "differences_are_ties": comparisons.all_differences_are_ties,
        "largest_node": largest["what"],
        "largest_node_steps": largest["steps"],
        "largest_node_vm_s": round(largest["vm_s"], 1),
        "largest_node_boot_s": round(largest["boot_s"], 1),
        "largest_node_bit_exact": largest["bit_exact"],
    }
    if not args.no_services:
        services = through_services(model_file, prompt)
        say(f"through the services: {json.dumps(services)}")
        figures |= services
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
