"""How many VM steps a generation's longest node run takes: what a request's step limit must cover, since for the
two-phase game the step limit bounds each node's run (docs/llm-graph.md).

Measured on SmolLM2-135M-Instruct with the LLM node program (bench/llm_graph.py and the node runs of
tests/e2e/test_llm_e2e.py), a product of R rows by a matrix of W weights takes

    W x (DEQUANTIZE[type] + 92 R) steps

(each weight dequantized once, then one `opml_dot` multiply-add per row): the FFN gate of layer 0, 576 x 1,536
Q4_1, is 163,518,224 steps for one row, 733,946,846 for 8, 1,385,568,444 for 16 and 3,096,299,427 for 37 (the
estimate: 1.64e8, 7.33e8, 1.385e9, 3.094e9); an LM head chunk, 14,563 x 576 Q8_0 for one row, is 1,017,809,644
(the estimate 1.02e9). The prompt's attention over 37 rows is 9.4e7 steps (the estimate, 150 steps per
multiply-add of its query-key and weight-value products, 1.2e8); every other node (norms, RoPE, the caches,
SwiGLU, the argmax) is a few million steps at most (an 8-row SwiGLU: 2.9e7).

So a request's longest node is the prompt's largest product (it grows by 8.2e7 steps per prompt token for
SmolLM2's FFN matrices) or an LM head chunk (about 1.02e9 steps whatever the prompt), and `step_limit_for`
gives a request a quarter more than the estimate.
"""

from __future__ import annotations

import math

from .format import LlmModel, TensorType

# Steps to dequantize one weight, by tensor type (Q4_1 and Q8_0 measured; F16 and F32, which SmolLM2 does not
# use for its matrices, taken high).
DEQUANTIZE_STEPS = {TensorType.Q4_1: 93, TensorType.Q8_0: 30, TensorType.F16: 60, TensorType.F32: 20}
MULTIPLY_ADD_STEPS = 92  # one opml_dot multiply-add
ATTENTION_STEPS = 150  # per multiply-add of a head's query-key and weight-value products (130 measured), exp included
OTHER_NODE_STEPS = 20_000_000  # any node without a product: the largest measured is 2.9e7 for a 8-row SwiGLU...
OTHER_STEPS_PER_ELEMENT = 600  # ... so elementwise nodes are sized by their elements too
STEP_LIMIT_MARGIN = 1.25  # a request's step limit over the estimate of its longest node
STEP_LIMIT_ROUNDING = 1 << 24  # limits are rounded up to a multiple of this


def largest_node_steps(model: LlmModel, prompt_length: int, max_new_tokens: int = 1) -> int:
    """An estimate of the VM steps of the longest node run of a generation of `max_new_tokens` after a prompt of
    `prompt_length` ids (see the module docstring): the prompt's largest product, an LM head chunk, or the
    attention of the longest sequence."""
    from .graph import HEAD_CHUNK_WEIGHTS

    c = model.config
    rows = prompt_length
    products = [
        _product(model.tensors[f"blk.{layer}.{role}"], rows)
        for layer in range(c.layers)
        for role in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    ]
    head = model.tensors["output"]
    head_rows = min(c.vocab, HEAD_CHUNK_WEIGHTS // c.width)
    products.append(head_rows * head.cols * (DEQUANTIZE_STEPS[head.type] + MULTIPLY_ADD_STEPS))
    sequence = prompt_length + max_new_tokens
    attention = ATTENTION_STEPS * c.heads * c.head_dim * max(prompt_length * (prompt_length + 1), 2 * sequence)
    elementwise = OTHER_NODE_STEPS + OTHER_STEPS_PER_ELEMENT * rows * max(c.ffn, c.width)
    return max(*products, attention, elementwise)


def _product(tensor, rows: int) -> int:
    return tensor.rows * tensor.cols * (DEQUANTIZE_STEPS[tensor.type] + MULTIPLY_ADD_STEPS * rows)


def step_limit_for(model: LlmModel, prompt_length: int, max_new_tokens: int) -> int:
    """The step limit of a generation request: STEP_LIMIT_MARGIN over its longest node's estimate, rounded up."""
    needed = STEP_LIMIT_MARGIN * largest_node_steps(model, prompt_length, max_new_tokens)
    return math.ceil(needed / STEP_LIMIT_ROUNDING) * STEP_LIMIT_ROUNDING


def longest_prompt_for(model: LlmModel, step_limit: int, max_new_tokens: int) -> int:
    """The longest prompt whose requests' step limit (`step_limit_for`) fits `step_limit`: 0 if none does."""
    low, high = 0, model.config.positions
    while low < high:  # the step limit grows with the prompt's length
        middle = (low + high + 1) // 2
        if step_limit_for(model, middle, max_new_tokens) <= step_limit:
            low = middle
        else:
            high = middle - 1
    return low
