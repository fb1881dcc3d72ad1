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
- largest_node_*: the op call of that generation with the most multiply-adds (the LM head over
  49,152 rows of the tied Q8_0 embedding), run alone in the VM by the node program on the real model
  region: its steps and the run's seconds (the boot, which hashes the 99 MB model region, apart).
- peak_rss_mb: the whole process (our weights, transformers' model, the VM with the model region).

Targets: native_generate_s <= 20, token_agreement >= 0.95, largest_node_vm_s <= 60, peak_rss_mb <= 6144.
Prints its figures; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from opml.models.llm import agreement
from opml.models.llm.format import parse_model
from opml.models.llm.generate import Trace, Weights, generate, value_hashes
from opml.models.llm.gguf_import import packaged_gguf, packaged_model_file
from opml.models.llm.node import request_for, run_in_vm
from opml.models.llm.tokenizer import packaged_tokenizer

PROMPT = "Once upon a time, in a small village by the sea, there lived a"  # 16 tokens
PROMPT_TOKENS = 16
NEW_TOKENS = 32


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def multiply_adds(trace: Trace, call) -> int:
    """A rough size of an op call: the multiply-adds of a product, else its output's elements."""
    if call.op == "matmul":
        x, out = trace.values[call.inputs[0]], trace.values[call.output]
        return x.shape[0] * x.shape[1] * out.shape[1]
    if call.op == "attention":
        q, keys = trace.values[call.inputs[0]], trace.values[call.inputs[1]]
        return 2 * q.shape[0] * q.shape[1] * keys.shape[0]
    return trace.values[call.output].size


def honest_generation(weights: Weights, prompt: list[int]) -> tuple[Trace, float]:
    """The generation (no early stop: every step computed) and the hashes of all its values."""
    trace = generate(weights, prompt, NEW_TOKENS, stop_at_eos=False)
    hash_s, _ = timed(lambda: value_hashes(trace))
    return trace, hash_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--quick", action="store_true", help="agreement on the 16-token prompt only")
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

    largest = max(trace.calls, key=lambda call: multiply_adds(trace, call))
    request = request_for(largest, trace, weights.model)
    from opml.guest import LLM_NODE, built
    from opml.vm.elf import Program
    from opml.vm.execution import Execution

    boot_s, execution = timed(
        lambda: Execution(Program.from_file(built(LLM_NODE.name)), model=model_file, input=request.to_bytes())
    )
    result = run_in_vm(model_file, request, execution=execution)
    assert result.exit_code == 0, result.stderr
    bit_exact = result.output.tobytes() == trace.values[largest.output].tobytes()
    say(f"largest op call: {largest.op} {largest.tensors} step {largest.step}: {result.steps:,} steps, "
        f"{result.seconds:.1f} s in the VM (boot {boot_s:.1f} s), bit-exact {bit_exact}")  # fmt: skip

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
        "largest_node": f"{largest.op} {','.join(largest.tensors)} rows {trace.values[largest.inputs[0]].shape[0]}",
        "largest_node_steps": result.steps,
        "largest_node_vm_s": round(result.seconds, 1),
        "largest_node_boot_s": round(boot_s, 1),
        "largest_node_bit_exact": bit_exact,
        "model_root": "0x" + execution.region_roots()["model"].hex(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
