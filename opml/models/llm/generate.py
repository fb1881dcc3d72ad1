"""Greedy generation (temperature 0) as a recorded sequence of op calls over values.

Every intermediate result is a value with an id; every op call (`OpCall`) names its op, the
token step and layer it belongs to, the values it reads, the model tensors it reads, its
integer params and the value it makes. The KV caches are values too: step k's cache of a
layer is `kv_append(step k-1's cache, step k's rotated keys)`, and at step 0 it is the
prompt's rotated keys themselves. So the whole generation unrolls into a graph whose nodes
are op calls, each of which the guest can execute alone (guest/inference/llm_node.c).

    weights = Weights(parse_model(packaged_model_file()))
    trace = generate(weights, prompt_ids, max_new_tokens=32)
    trace.tokens                        # the generated ids (ending with eos if it came)
    trace.calls[i], trace.values[id]    # every op call, every value

Step 0 is the prompt's forward pass (its rows at positions 0..P-1); step k >= 1 feeds the k-th
generated token at position P + k - 1. Each step ends with the final norm of the last row,
the LM head (the tied Q8_0 embedding; in chunks of rows when `head_chunk_rows` is set, joined
by `concat`) and `argmax`, whose value is the next step's input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ops
from .format import LlmConfig, LlmModel
from .ops import Matrix

PROMPT_STEP = 0
MATRIX_ROLES = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


class Weights:
    """The model's tensors as the ops take them (matrices dequantized on first use, once)."""

    def __init__(self, model: LlmModel):
        self.model = model
        self.config: LlmConfig = model.config
        self.embedding = model["token_embd"]
        embedding_matrix = Matrix(self.embedding)
        tied = model["output"].data.ctypes.data == self.embedding.data.ctypes.data
        self.head = embedding_matrix if tied else Matrix(model["output"])
        self.rope_table = model.rope_table()
        self.norms = {name: t.floats().reshape(-1) for name, t in model.tensors.items() if t.rows == 1}
        self.matrices = {
            f"blk.{layer}.{role}": Matrix(model.layer(layer, role))
            for layer in range(self.config.layers)
            for role in MATRIX_ROLES
        }
        self.matrices["output"] = self.head
        self.matrices["token_embd"] = embedding_matrix  # the same object when tied: dequantized once

    def prepare(self) -> None:
        """Dequantize every matrix now (else each on its first use)."""
        for matrix in self.matrices.values():
            matrix.transposed()


@dataclass(frozen=True)
class OpCall:
    index: int
    op: str
    step: int  # 0: the prompt's pass; k: the pass of the k-th generated token
    layer: int | None  # None for the ops before and after the layers
    inputs: tuple[int, ...]  # value ids
    tensors: tuple[str, ...]  # model tensors read (weights, norms, the RoPE table)
    params: tuple[int, ...]  # e.g. a first position, heads, a range of weight rows
    output: int  # value id


@dataclass
class Trace:
    """Values (value 0: the prompt's token ids) and the op calls that made the others, in order."""

    values: list[np.ndarray] = field(default_factory=list)
    calls: list[OpCall] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    logits: list[int] = field(default_factory=list)  # per step, the value id of its logits

    def add_value(self, value: np.ndarray) -> int:
        self.values.append(value)
        return len(self.values) - 1


class _Recorder:
    """Runs ops and records them: `run(op, inputs, ...)` returns the output's value id."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.step = PROMPT_STEP
        self.layer: int | None = None

    def run(self, op: str, function, inputs: tuple[int, ...], tensors=(), params=(), *arguments) -> int:
        values = [self.trace.values[i] for i in inputs]
        output = self.trace.add_value(function(*values, *arguments))
        call = OpCall(len(self.trace.calls), op, self.step, self.layer, inputs, tuple(tensors), tuple(params), output)
        self.trace.calls.append(call)
        return output


def _layer(rec: _Recorder, w: Weights, layer: int, x: int, first: int, caches: dict[str, int]) -> int:
    """One decoder layer over the rows of value x (positions first..); updates caches; the output's id."""
    c = w.config
    rec.layer = layer
    name = f"blk.{layer}."
    m = w.matrices
    eps = c.rms_epsilon
    h = rec.run("rms_norm", ops.rms_norm, (x,), [name + "attn_norm"], (), w.norms[name + "attn_norm"], eps)
    q = rec.run("matmul", ops.matmul, (h,), [name + "attn_q"], (), m[name + "attn_q"])
    k = rec.run("matmul", ops.matmul, (h,), [name + "attn_k"], (), m[name + "attn_k"])
    v = rec.run("matmul", ops.matmul, (h,), [name + "attn_v"], (), m[name + "attn_v"])
    q = rec.run("rope", ops.rope, (q,), ["rope"], (first, c.heads), w.rope_table, first, c.heads)
    k = rec.run("rope", ops.rope, (k,), ["rope"], (first, c.kv_heads), w.rope_table, first, c.kv_heads)
    for kind, new in (("k", k), ("v", v)):
        key = f"{layer}.{kind}"
        caches[key] = new if key not in caches else rec.run("kv_append", ops.kv_append, (caches[key], new))
    a = rec.run(
        "attention", ops.attention, (q, caches[f"{layer}.k"], caches[f"{layer}.v"]), (), (c.heads, c.kv_heads),
        c.heads, c.kv_heads,
    )  # fmt: skip
    o = rec.run("matmul", ops.matmul, (a,), [name + "attn_output"], (), m[name + "attn_output"])
    x = rec.run("add", ops.add, (x, o))
    h = rec.run("rms_norm", ops.rms_norm, (x,), [name + "ffn_norm"], (), w.norms[name + "ffn_norm"], eps)
    g = rec.run("matmul", ops.matmul, (h,), [name + "ffn_gate"], (), m[name + "ffn_gate"])
    u = rec.run("matmul", ops.matmul, (h,), [name + "ffn_up"], (), m[name + "ffn_up"])
    s = rec.run("swiglu", ops.swiglu, (g, u))
    d = rec.run("matmul", ops.matmul, (s,), [name + "ffn_down"], (), m[name + "ffn_down"])
    return rec.run("add", ops.add, (x, d))


def _head(rec: _Recorder, w: Weights, x: int, chunk_rows: int | None) -> int:
    """Final norm of the last row, LM head (maybe in chunks of weight rows), argmax: the next token's value id."""
    rec.layer = None
    if rec.trace.values[x].shape[0] > 1:
        x = rec.run("last_row", ops.last_row, (x,))
    n = rec.run("rms_norm", ops.rms_norm, (x,), ["output_norm"], (), w.norms["output_norm"], w.config.rms_epsilon)
    vocab = w.head.rows
    step = chunk_rows or vocab
    parts = []
    for start in range(0, vocab, step):
        rows = (start, min(start + step, vocab))
        if rows == (0, vocab):
            parts.append(rec.run("matmul", ops.matmul, (n,), ["output"], (), w.head))
        else:
            parts.append(rec.run("matmul", ops.matmul, (n,), ["output"], rows, w.head, rows))
    logits = parts[0] if len(parts) == 1 else rec.run("concat", lambda *p: ops.concat(list(p)), tuple(parts))
    rec.trace.logits.append(logits)
    return rec.run("argmax", ops.argmax, (logits,))


def forward_step(rec: _Recorder, w: Weights, ids: int, first: int, caches: dict, chunk_rows: int | None) -> int:
    """One pass over the token ids of value `ids` at positions first..: the id of the next token's value."""
    rec.layer = None
    x = rec.run("embed", lambda t: ops.embed(w.embedding, t), (ids,), ["token_embd"])
    for layer in range(w.config.layers):
        x = _layer(rec, w, layer, x, first, caches)
    return _head(rec, w, x, chunk_rows)


def generate(
    weights: Weights,
    prompt: list[int],
    max_new_tokens: int,
    head_chunk_rows: int | None = None,
    stop_at_eos: bool = True,
) -> Trace:
    """Greedy tokens after `prompt`: stops after eos (unless not `stop_at_eos`) or `max_new_tokens` tokens.
    `head_chunk_rows` splits the LM head into op calls of that many vocabulary rows (joined by `concat`):
    for a vocabulary whose head would be too long a node for the VM (SmolLM2's is not: 3.4e9 steps)."""
    config = weights.config
    if not prompt:
        raise ops.OpError("an empty prompt")
    if len(prompt) + max_new_tokens > config.positions:
        raise ops.OpError(f"{len(prompt)} + {max_new_tokens} tokens exceed the context of {config.positions}")
    trace = Trace()
    rec = _Recorder(trace)
    ids = trace.add_value(np.asarray(prompt, dtype=np.int32))
    caches: dict[str, int] = {}
    first = 0
    with np.errstate(all="ignore"):
        for step in range(max_new_tokens):
            rec.step = step
            ids_next = forward_step(rec, weights, ids, first, caches, head_chunk_rows)
            first += trace.values[ids].size
            ids = ids_next
            token = int(trace.values[ids][0])
            trace.tokens.append(token)
            if stop_at_eos and token == config.eos:
                break
    return trace


def value_data(value: np.ndarray) -> bytes:
    """A value as the VM holds it: big-endian float32 (or int32 token ids), row-major."""
    return value.astype(">i4" if value.dtype.kind in "iu" else ">f4").tobytes()


def value_hashes(trace: Trace) -> list[bytes]:
    """keccak256 of every value's bytes (what a claim commits to, node by node)."""
    from Crypto.Hash import keccak

    return [keccak.new(digest_bits=256, data=value_data(v)).digest() for v in trace.values]
