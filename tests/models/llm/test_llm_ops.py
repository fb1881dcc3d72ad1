"""The LLM ops in the VM (the node program, guest/inference/llm_*.c) against the reference (opml/models/llm/ops.py),
byte for byte, on small random models and values full of edge cases: NaN, infinities, subnormals, -0, and
Q4_1 / Q8_0 / F16 blocks whose f16 scales are subnormal, infinite or NaN. Every op's output is canonical
(one NaN, no -0), so outputs compare as bytes with no exception.

Each VM run is one op on a model of a few kilobytes: tens of milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from opml.models.llm import ops
from opml.models.llm.format import TensorType, parse_model
from opml.models.llm.generate import Weights
from opml.models.llm.node import NodeError, NodeOp, NodeRequest, run_in_vm, run_reference, value_bytes

from .tiny import EDGE_FLOATS, floats, tiny_config, tiny_model

MATRIX_TYPES = (TensorType.Q4_1, TensorType.Q8_0, TensorType.F16, TensorType.F32)
CONFIGS = {
    "gqa": tiny_config(),  # 4 heads of 16 over 2 kv heads
    "mqa": tiny_config(layers=2, width=96, ffn=64, heads=3, kv_heads=1, head_dim=32, vocab=70, positions=30),
    "mha": tiny_config(width=32, ffn=32, heads=2, kv_heads=2, head_dim=16, vocab=33, positions=12),
}


class Tiny:
    def __init__(self, name: str, seed: int):
        self.config = CONFIGS[name]
        self.rng = np.random.default_rng(seed)
        self.file = tiny_model(self.rng, self.config, MATRIX_TYPES)
        self.weights = Weights(parse_model(self.file))
        self.names = self.config.tensor_names()

    def index(self, name: str) -> int:
        return self.names.index(name)

    def check(self, request: NodeRequest) -> np.ndarray:
        """The VM's output equals the reference's, byte for byte; the reference's output."""
        expected = run_reference(self.weights, request)
        result = run_in_vm(self.file, request)
        assert result.exit_code == 0, result.stderr
        assert value_bytes(result.output) == value_bytes(expected), _first_difference(result.output, expected)
        return expected

    def refused(self, request: NodeRequest) -> int:
        """The VM and the reference refuse the request with the same exit code; the code."""
        with pytest.raises(NodeError) as raised:
            run_reference(self.weights, request)
        result = run_in_vm(self.file, request)
        assert result.exit_code == raised.value.exit_code, (result.stderr, raised.value)
        return result.exit_code


def _first_difference(got: np.ndarray, expected: np.ndarray) -> str:
    bits_got, bits_expected = got.reshape(-1).view(np.uint32), expected.reshape(-1).view(np.uint32)
    where = np.flatnonzero(bits_got != bits_expected)
    i = where[0]
    return f"{where.size} differ; first at {i}: {bits_got[i]:#010x} != {bits_expected[i]:#010x}"


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def tiny(request) -> Tiny:
    return Tiny(request.param, seed=sorted(CONFIGS).index(request.param))


def test_matmul_of_every_weight_type(tiny):
    """Every matrix of layer 0 (the types cycle Q4_1, Q8_0, F16, F32) and the Q8_0 LM head, 1 and 3 rows."""
    roles = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    seen = set()
    for name in [f"blk.0.{role}" for role in roles] + ["output"]:
        matrix = tiny.weights.model[name]
        seen.add(matrix.type)
        for rows in (1, 3):
            x = floats(tiny.rng, (rows, matrix.cols), edge=True)
            tiny.check(NodeRequest(NodeOp.MATMUL, [], [tiny.index(name)], [x]))
    assert seen == set(MATRIX_TYPES)


def test_matmul_of_a_range_of_rows_is_that_part_of_the_whole(tiny):
    head = tiny.weights.model["output"]
    x = floats(tiny.rng, (2, head.cols), edge=True)
    whole = tiny.check(NodeRequest(NodeOp.MATMUL, [], [tiny.index("output")], [x]))
    first, stop = 5, head.rows - 3
    part = tiny.check(NodeRequest(NodeOp.MATMUL, [first, stop], [tiny.index("output")], [x]))
    assert value_bytes(part) == value_bytes(np.ascontiguousarray(whole[:, first:stop]))


def test_embed(tiny):
    ids = np.array([0, tiny.config.vocab - 1, *tiny.rng.integers(0, tiny.config.vocab, 6)], np.int32)
    out = tiny.check(NodeRequest(NodeOp.EMBED, [], [0], [ids]))
    assert out.shape == (ids.size, tiny.config.width)


@pytest.mark.parametrize("token", [-1, "vocab"])
def test_embed_of_a_token_outside_the_vocabulary_is_refused(tiny, token):
    token = tiny.config.vocab if token == "vocab" else token
    assert tiny.refused(NodeRequest(NodeOp.EMBED, [], [0], [np.array([3, token], np.int32)])) == 22


def test_rms_norm(tiny):
    width = tiny.config.width
    x = np.concatenate(
        [
            floats(tiny.rng, (3, width), edge=True),
            floats(tiny.rng, (1, width), edge=False, scale=1e-22),  # a sum of squares that underflows
            floats(tiny.rng, (1, width), edge=False, scale=1e20),  # one that overflows
            np.zeros((1, width), np.float32),
        ]
    )
    for name in ("blk.0.attn_norm", "blk.0.ffn_norm", "output_norm"):
        tiny.check(NodeRequest(NodeOp.RMS_NORM, [], [tiny.index(name)], [x]))


def test_rope(tiny):
    config = tiny.config
    for heads in (config.heads, config.kv_heads):
        for first, rows in ((0, 3), (config.positions - 1, 1), (int(tiny.rng.integers(0, config.positions - 4)), 4)):
            x = floats(tiny.rng, (rows, heads * config.head_dim), edge=True)
            tiny.check(NodeRequest(NodeOp.ROPE, [first, heads], [tiny.index("rope")], [x]))


def test_rope_beyond_the_table_is_refused(tiny):
    config = tiny.config
    x = floats(tiny.rng, (2, config.width), edge=False)
    assert tiny.refused(NodeRequest(NodeOp.ROPE, [config.positions - 1, config.heads], [tiny.index("rope")], [x])) == 13


@pytest.mark.parametrize("rows, positions", [(1, 1), (1, 9), (4, 4), (3, 11)])
def test_attention(tiny, rows, positions):
    config = tiny.config
    q = floats(tiny.rng, (rows, config.width), edge=True, scale=2)
    kv_width = config.kv_heads * config.head_dim
    keys, values = floats(tiny.rng, (positions, kv_width), edge=True), floats(tiny.rng, (positions, kv_width), True)
    tiny.check(NodeRequest(NodeOp.ATTENTION, [config.heads, config.kv_heads], [], [q, keys, values]))
    # ordinary values, where softmax weights are spread out (no edge value swamps them)
    q, keys, values = (floats(tiny.rng, a.shape, edge=False) for a in (q, keys, values))
    tiny.check(NodeRequest(NodeOp.ATTENTION, [config.heads, config.kv_heads], [], [q, keys, values]))


def test_swiglu_and_add(tiny):
    a, b = floats(tiny.rng, (3, 40), edge=True, scale=30), floats(tiny.rng, (3, 40), edge=True)
    a[0, :4] = [-100.0, 100.0, -88.0, -1e-42]  # exp(100) overflows: g / inf is -0, canonical +0
    tiny.check(NodeRequest(NodeOp.SWIGLU, [], [], [a, b]))
    tiny.check(NodeRequest(NodeOp.ADD, [], [], [a, b]))
    tiny.check(NodeRequest(NodeOp.ADD, [], [], [a, -a]))  # x + -x: +0


def test_value_moves(tiny):
    cache, rows = floats(tiny.rng, (5, 24), edge=True), floats(tiny.rng, (2, 24), edge=True)
    tiny.check(NodeRequest(NodeOp.KV_APPEND, [], [], [ops.canonical(cache), ops.canonical(rows)]))
    tiny.check(NodeRequest(NodeOp.LAST_ROW, [], [], [ops.canonical(cache)]))
    parts = [ops.canonical(floats(tiny.rng, (2, n), edge=True)) for n in (3, 1, 7)]
    tiny.check(NodeRequest(NodeOp.CONCAT, [], [], parts))


def test_argmax_takes_the_first_largest_and_never_a_nan(tiny):
    cases = [
        [1.0, 3.0, 3.0, 2.0],  # a tie: the first
        [np.nan, 5.0, 7.0],  # a NaN first is kept: nothing is larger than it
        [1.0, np.nan, 0.5, np.nan],  # NaNs are never larger
        [-np.inf, -np.inf],
        [0.0, 1e-45, np.inf, np.inf],
    ]
    expected = [1, 0, 0, 0, 2]
    for values, best in zip(cases, expected):
        x = ops.canonical(np.array([values], np.float32))
        assert int(tiny.check(NodeRequest(NodeOp.ARGMAX, [], [], [x]))[0]) == best
    x = ops.canonical(floats(tiny.rng, (1, 300), edge=True))
    tiny.check(NodeRequest(NodeOp.ARGMAX, [], [], [x]))


def test_malformed_requests_are_refused_the_same_way(tiny):
    width = tiny.config.width
    x = floats(tiny.rng, (2, width), edge=False)
    cases = [
        NodeRequest(NodeOp.MATMUL, [], [tiny.index("blk.0.attn_q")], [floats(tiny.rng, (2, width + 32), False)]),
        NodeRequest(NodeOp.MATMUL, [4, 4], [tiny.index("output")], [x]),  # an empty range of rows
        NodeRequest(NodeOp.MATMUL, [], [len(tiny.names)], [x]),  # no such tensor
        NodeRequest(NodeOp.RMS_NORM, [], [tiny.index("blk.0.attn_q")], [x]),  # not a norm
        NodeRequest(NodeOp.ADD, [], [], [x, x[:1]]),
        NodeRequest(NodeOp.ATTENTION, [tiny.config.heads, tiny.config.heads + 1], [], [x, x, x]),
        NodeRequest(NodeOp.ARGMAX, [], [], [x]),  # two rows
        NodeRequest(NodeOp.EMBED, [], [tiny.index("output_norm")], [np.array([1], np.int32)]),
        NodeRequest(99, [], [], [x]),
    ]
    codes = {tiny.refused(request) for request in cases}
    assert codes == {13, 15}


def test_a_truncated_request_is_refused():
    tiny = Tiny("gqa", seed=5)
    request = NodeRequest(NodeOp.ADD, [], [], [np.ones((1, 4), np.float32)] * 2)
    from opml.guest import LLM_NODE, built
    from opml.vm.elf import Program
    from opml.vm.execution import Execution

    execution = Execution(Program.from_file(built(LLM_NODE.name)), model=tiny.file, input=request.to_bytes()[:-4])
    assert execution.run().exit_code == 20


def test_edge_values_are_in_play():
    """The tiny models really hold the edge cases the tests claim: f16 scales that are subnormal, inf, NaN."""
    tiny = Tiny("gqa", seed=0)
    blocks = tiny.weights.model["blk.0.attn_q"].blocks()  # Q4_1
    scales = blocks[..., :2].reshape(-1, 2).view("<u2").reshape(-1)
    exponents = (scales >> 10) & 0x1F
    assert (exponents == 0x1F).any() and ((exponents == 0) & (scales & 0x3FF != 0)).any()
    assert np.isnan(EDGE_FLOATS).any()


def test_the_reference_ops_refuse_values_that_do_not_fit():
    tiny = Tiny("gqa", seed=6)
    config, weights = tiny.config, tiny.weights
    x = np.zeros((2, config.width), np.float32)
    table = weights.rope_table
    with pytest.raises(ops.OpError, match="beyond the table"):
        ops.rope(x, table, config.positions - 1, config.heads)
    with pytest.raises(ops.OpError, match="rope of"):
        ops.rope(x, table, 0, config.heads + 1)
    with pytest.raises(ops.OpError, match="matmul input"):
        ops.matmul(np.zeros((2, config.width + 32), np.float32), weights.matrices["blk.0.attn_q"])
    with pytest.raises(ops.OpError, match="rows 3..3"):
        ops.matmul(x, weights.head, (3, 3))
    with pytest.raises(ops.OpError, match="outside the vocabulary"):
        ops.embed(weights.embedding, np.array([config.vocab], np.int32))
    with pytest.raises(ops.OpError, match="a cache of"):
        ops.attention(x, x[:1, :32], x[:1, :32], config.heads, config.kv_heads)
    with pytest.raises(ops.OpError, match="swiglu"):
        ops.swiglu(x, x[:1])
    with pytest.raises(ops.OpError, match="one row"):
        ops.argmax(x)


def test_a_whole_generation_of_a_tiny_model_runs_in_the_vm_call_by_call():
    """Every op call of a greedy generation on a 2-layer random model (the LM head in chunks joined by concat)
    re-run as a node in the VM: each output equal to the recorded value, byte for byte."""
    from opml.models.llm.generate import generate
    from opml.models.llm.node import request_for

    rng = np.random.default_rng(8)
    config = tiny_config(layers=2, vocab=70)
    model_file = tiny_model(rng, config, MATRIX_TYPES, edge=False)
    weights = Weights(parse_model(model_file))
    trace = generate(weights, [5, 17, 3], max_new_tokens=3, head_chunk_rows=32, stop_at_eos=False)
    assert len(trace.tokens) == 3 and {"concat", "kv_append", "last_row"} <= {c.op for c in trace.calls}
    for call in trace.calls:
        result = run_in_vm(model_file, request_for(call, trace, weights.model))
        assert result.exit_code == 0, (call, result.stderr)
        assert value_bytes(result.output) == value_bytes(trace.values[call.output]), call
    whole = generate(weights, [5, 17, 3], max_new_tokens=3, stop_at_eos=False)
    assert whole.tokens == trace.tokens
