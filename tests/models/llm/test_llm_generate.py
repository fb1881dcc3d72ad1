"""Greedy generation on SmolLM2 as recorded op calls over values: the trace's structure, its determinism,
the reference kernels against plain sequential numpy on the real model's shapes, and real op calls of a
generation re-run in the VM (each boots the 99 MB model region: a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from opml.models.llm import ops
from opml.models.llm.generate import generate, value_hashes
from opml.models.llm.node import request_for, run_in_vm, value_bytes

PROMPT = [1, 9690, 198, 2683, 359, 253, 5356]  # "<|im_start|>system\nYou are a helpful"
LAYER_OPS = ["rms_norm", "matmul", "matmul", "matmul", "rope", "rope", "attention", "matmul", "add", "rms_norm",
             "matmul", "matmul", "swiglu", "matmul", "add"]  # fmt: skip
DECODE_LAYER_OPS = LAYER_OPS[:6] + ["kv_append", "kv_append"] + LAYER_OPS[6:]


@pytest.fixture(scope="module")
def trace(llm_weights):
    return generate(llm_weights, PROMPT, max_new_tokens=3)


def test_the_trace_is_the_forward_pass_op_by_op(trace, llm_weights):
    layers = llm_weights.config.layers
    prompt_ops = ["embed"] + LAYER_OPS * layers + ["last_row", "rms_norm", "matmul", "argmax"]
    decode_ops = ["embed"] + DECODE_LAYER_OPS * layers + ["rms_norm", "matmul", "argmax"]
    assert [c.op for c in trace.calls] == prompt_ops + decode_ops * 2
    assert [c.step for c in trace.calls] == [0] * len(prompt_ops) + [1] * len(decode_ops) + [2] * len(decode_ops)
    assert len(trace.tokens) == 3
    for call in trace.calls:  # a DAG in order: each call reads earlier values and makes the next one
        assert call.output == call.index + 1 and all(i < call.output for i in call.inputs)
    last = trace.calls[-1]
    assert last.op == "argmax" and int(trace.values[last.output][0]) == trace.tokens[-1]


def test_kv_caches_are_values_that_grow_by_one_row_a_step(trace, llm_weights):
    appends = [c for c in trace.calls if c.op == "kv_append" and c.layer == 29]
    kv_width = llm_weights.config.kv_heads * llm_weights.config.head_dim
    assert [trace.values[c.output].shape for c in appends] == [(8, kv_width)] * 2 + [(9, kv_width)] * 2
    attention = [c for c in trace.calls if c.op == "attention" and c.layer == 29][-1]
    assert attention.inputs[1:] == (appends[2].output, appends[3].output)
    step_one = [c for c in trace.calls if c.op == "embed"][1]
    assert step_one.inputs == (trace.calls[next(i for i, c in enumerate(trace.calls) if c.op == "argmax")].output,)


def test_generation_is_deterministic_to_the_bit(trace, llm_weights):
    again = generate(llm_weights, PROMPT, max_new_tokens=3)
    assert value_hashes(again) == value_hashes(trace)
    assert all(v.dtype == np.int32 or not np.signbit(v[v == 0]).any() for v in trace.values)  # canonical zeros


def test_generation_stops_at_eos(llm_weights):
    from opml.models.llm.tokenizer import packaged_tokenizer

    tokenizer = packaged_tokenizer()
    chat = tokenizer.chat_ids([{"role": "user", "content": "What is the capital of France?"}])
    trace = generate(llm_weights, chat, max_new_tokens=32)
    assert trace.tokens[-1] == llm_weights.config.eos and len(trace.tokens) < 32
    assert tokenizer.decode(trace.tokens) == "The capital of France is Paris.<|im_end|>"


def test_the_matmul_kernel_is_a_sequential_sum(llm_weights):
    """The vectorized numba product equals acc += w[j][i] * x[i] in plain numpy, on the LM head and an FFN."""
    rng = np.random.default_rng(4)
    for name, rows in (("output", 1), ("blk.3.ffn_down", 5)):
        matrix = llm_weights.matrices[name]
        x = rng.standard_normal((rows, matrix.cols)).astype(np.float32)
        weights_t = matrix.transposed()
        acc = np.zeros((rows, matrix.rows), np.float32)
        for i in range(matrix.cols):
            acc = acc + weights_t[i][None, :] * x[:, i : i + 1]
        assert value_bytes(ops.matmul(x, matrix)) == value_bytes(ops.canonical(acc))


def test_attention_is_the_stated_order(trace, llm_weights):
    """ops.attention against a loop over numpy float32 scalars in the order docs/llm.md states."""
    call = [c for c in trace.calls if c.op == "attention"][-1]
    q, keys, values = (trace.values[i] for i in call.inputs)
    heads, kv_heads = call.params
    head_dim = q.shape[1] // heads
    scale = np.float32(1) / np.sqrt(np.float32(head_dim))
    expected = np.empty_like(q)
    for h in range(heads):
        g = h // (heads // kv_heads)
        k, v = keys[:, g * head_dim : (g + 1) * head_dim], values[:, g * head_dim : (g + 1) * head_dim]
        scores = []
        for t in range(keys.shape[0]):
            acc = np.float32(0)
            for d in range(head_dim):
                acc = np.float32(acc + q[0, h * head_dim + d] * k[t, d])
            scores.append(np.float32(acc * scale))
        largest = scores[0]
        for s in scores[1:]:
            largest = s if s > largest else largest
        exps = [ops.expf(np.float32(s - largest)) for s in scores]
        total = np.float32(0)
        for e in exps:
            total = np.float32(total + e)
        weights = [np.float32(e / total) for e in exps]
        for d in range(head_dim):
            acc = np.float32(0)
            for t, w in enumerate(weights):
                acc = np.float32(acc + w * v[t, d])
            expected[0, h * head_dim + d] = acc
    assert value_bytes(trace.values[call.output]) == value_bytes(ops.canonical(expected))


def test_op_calls_of_a_generation_run_in_the_vm_bit_for_bit(trace, llm_weights, llm_model_file):
    """The last step's embedding, a decode matmul, the deepest attention and the argmax over the real
    vocabulary, each as a node of the node program over the real model region."""
    last_step = [c for c in trace.calls if c.step == 2]
    chosen = [
        last_step[0],  # embed of the token step 1 chose
        next(c for c in last_step if c.op == "matmul" and c.tensors == ("blk.0.attn_k",)),
        [c for c in last_step if c.op == "attention"][-1],
        last_step[-1],  # argmax over 49152 logits
    ]
    for call in chosen:
        result = run_in_vm(llm_model_file, request_for(call, trace, llm_weights.model))
        assert result.exit_code == 0, (call.op, result.stderr)
        assert value_bytes(result.output) == value_bytes(trace.values[call.output]), call


def test_the_command_line_generates_and_converts(tmp_path):
    import json
    import subprocess
    import sys

    from .tiny_gguf import write_gguf

    run = [sys.executable, "-m", "opml.cli", "llm"]
    result = subprocess.run(
        [*run, "generate", "--raw", "--max-new-tokens", "3", "--json", "Once upon a time"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tokens"] == [28, 260, 2240]
    gguf = write_gguf(tmp_path / "tiny.gguf")
    result = subprocess.run(
        [*run, "convert", "--gguf", str(gguf), "-o", str(tmp_path / "m.bin")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    from opml.models.formats import model_root

    assert json.loads(result.stdout)["model_root"] == "0x" + model_root((tmp_path / "m.bin").read_bytes()).hex()
    bad = write_gguf(tmp_path / "bad.gguf", architecture="gpt2")
    result = subprocess.run(
        [*run, "convert", "--gguf", str(bad), "-o", str(tmp_path / "x.bin")], capture_output=True, text=True
    )
    assert result.returncode == 2 and "only 'llama' is supported" in result.stderr
