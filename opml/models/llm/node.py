"""One op call as a node the guest runs alone: guest/inference/llm_node.c (the "node program").

The model region holds the OPLM file; the input region holds the request, big-endian u32 words:

    op, param count, params[], tensor count, tensors[] (directory indices), value count,
    per value: kind (0 float32, 1 int32), rows, cols, rows * cols words (row-major)

and the program writes the output value the same way (kind, rows, cols, words). Token ids are
int32 values of one row; every other value is float32 [rows, cols] (ops.py).

`request_for(call, trace, model)` makes the request of a recorded op call (generate.py),
`run_reference(model, request)` computes its output with the reference ops (what the guest must
give, bit for bit), `run_in_vm(model_file, request)` runs the node program.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from . import ops
from .format import LlmModel
from .generate import OpCall, Trace, Weights

KIND_F32 = 0
KIND_I32 = 1
EXIT_BAD_SHAPE = 13
EXIT_UNSUPPORTED_OP = 15
EXIT_BAD_INDEX = 22


class NodeOp(IntEnum):
    EMBED = 1  # tensors: token_embd; values: ids (int32 [1, R]) -> [R, width]
    RMS_NORM = 2  # tensors: a norm; values: x [R, width]; epsilon from the model's header
    MATMUL = 3  # tensors: W; params: () or (first row, stop row); values: x [R, W.cols]
    ROPE = 4  # tensors: rope; params: first position, heads; values: x [R, heads * head_dim]
    KV_APPEND = 5  # values: cache [T, C], rows [R, C]
    ATTENTION = 6  # params: heads, kv_heads; values: q, keys, values
    SWIGLU = 7  # values: gate, up
    ADD = 8  # values: a, b
    LAST_ROW = 9  # values: x
    CONCAT = 10  # values: the parts
    ARGMAX = 11  # values: logits [1, n] -> int32 [1, 1]


@dataclass
class NodeRequest:
    op: int
    params: list[int] = field(default_factory=list)
    tensors: list[int] = field(default_factory=list)  # directory indices
    values: list[np.ndarray] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        words = [struct.pack(">II", self.op, len(self.params)), struct.pack(f">{len(self.params)}i", *self.params)]
        words.append(struct.pack(f">I{len(self.tensors)}I", len(self.tensors), *self.tensors))
        words.append(struct.pack(">I", len(self.values)))
        for value in self.values:
            words.append(value_bytes(value))
        return b"".join(words)


class NodeError(ValueError):
    """A request the node program refuses; `exit_code` is its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_SHAPE):
        super().__init__(message)
        self.exit_code = exit_code


def value_bytes(value: np.ndarray) -> bytes:
    """kind, rows, cols, words: an int vector is one row."""
    if value.dtype.kind in "iu":
        return struct.pack(">III", KIND_I32, 1, value.size) + value.astype(">i4").tobytes()
    rows, cols = value.shape
    return struct.pack(">III", KIND_F32, rows, cols) + value.astype(">f4").tobytes()


def decode_value(data: bytes) -> np.ndarray:
    kind, rows, cols = struct.unpack_from(">III", data)
    if len(data) != 12 + 4 * rows * cols:
        raise ValueError(f"an output of {len(data)} bytes for [{rows}, {cols}]")
    if kind == KIND_I32:
        return np.frombuffer(data, ">i4", offset=12).astype(np.int32)
    return np.frombuffer(data, ">f4", offset=12).astype(np.float32).reshape(rows, cols)


TENSOR_ROLE_OPS = {"embed": NodeOp.EMBED, "rms_norm": NodeOp.RMS_NORM, "matmul": NodeOp.MATMUL, "rope": NodeOp.ROPE}
VALUE_OPS = {
    "kv_append": NodeOp.KV_APPEND,
    "attention": NodeOp.ATTENTION,
    "swiglu": NodeOp.SWIGLU,
    "add": NodeOp.ADD,
    "last_row": NodeOp.LAST_ROW,
    "concat": NodeOp.CONCAT,
    "argmax": NodeOp.ARGMAX,
}


def request_for(call: OpCall, trace: Trace, model: LlmModel) -> NodeRequest:
    """The node request of a recorded op call: its op, params, tensors and input values."""
    names = model.config.tensor_names()
    op = TENSOR_ROLE_OPS.get(call.op) or VALUE_OPS[call.op]
    return NodeRequest(
        int(op), list(call.params), [names.index(t) for t in call.tensors], [trace.values[i] for i in call.inputs]
    )


def _require(condition: bool, message: str, code: int = EXIT_BAD_SHAPE) -> None:
    if not condition:
        raise NodeError(message, code)


def _floats(request: NodeRequest, count: int, tensors: int, params: int) -> list[np.ndarray]:
    _require(
        len(request.values) == count and len(request.tensors) == tensors and len(request.params) == params,
        f"op {request.op} takes {count} values, {tensors} tensors, {params} params",
    )
    _require(all(v.dtype == np.float32 for v in request.values), "a value of the wrong kind")
    return request.values


def run_reference(weights: Weights, request: NodeRequest) -> np.ndarray:
    """The node's output by the reference ops, after the node program's checks (NodeError if it refuses)."""
    model, config = weights.model, weights.config
    names = config.tensor_names()
    for index in request.tensors:
        _require(0 <= index < len(names), f"tensor {index} of {len(names)}")
    tensors = [model[names[i]] for i in request.tensors]
    op = request.op
    if op == NodeOp.EMBED:
        _require(len(request.values) == 1 and request.tensors == [0] and not request.params, "embed")
        ids = request.values[0]
        _require(ids.dtype.kind in "iu", "embed of float values")
        _require(bool(((ids >= 0) & (ids < config.vocab)).all()), "a token id outside the vocabulary", EXIT_BAD_INDEX)
        return ops.embed(weights.embedding, ids)
    if op == NodeOp.RMS_NORM:
        (x,) = _floats(request, 1, 1, 0)
        _require(tensors[0].rows == 1 and x.shape[1] == tensors[0].cols, "rms_norm shapes")
        return ops.rms_norm(x, tensors[0].floats().reshape(-1), config.rms_epsilon)
    if op == NodeOp.MATMUL:
        _require(len(request.values) == 1 and len(request.tensors) == 1 and len(request.params) in (0, 2), "matmul")
        (x,) = _floats(request, 1, 1, len(request.params))
        matrix = weights.matrices.get(names[request.tensors[0]]) or ops.Matrix(tensors[0])
        first, stop = request.params or (0, matrix.rows)
        _require(x.shape[1] == matrix.cols and 0 <= first < stop <= matrix.rows, "matmul shapes")
        return ops.matmul(x, matrix, (first, stop) if request.params else None)
    if op == NodeOp.ROPE:
        (x,) = _floats(request, 1, 1, 2)
        first, heads = request.params
        _require(request.tensors == [names.index("rope")], "rope of another tensor")
        _require(0 < heads <= x.shape[1] and x.shape[1] == heads * config.head_dim, "rope shapes")
        _require(0 <= first < config.positions and x.shape[0] <= config.positions - first, "rope positions")
        return ops.rope(x, weights.rope_table, first, heads)
    if op == NodeOp.KV_APPEND:
        cache, new = _floats(request, 2, 0, 0)
        _require(cache.shape[1] == new.shape[1], "kv_append shapes")
        return ops.kv_append(cache, new)
    if op == NodeOp.ATTENTION:
        q, keys, values = _floats(request, 3, 0, 2)
        heads, kv_heads = request.params
        _require(
            0 < heads <= q.shape[1] and kv_heads > 0 and heads % kv_heads == 0 and q.shape[1] % heads == 0, "heads"
        )
        head_dim = q.shape[1] // heads
        _require(keys.shape == values.shape and keys.shape[1] == kv_heads * head_dim, "attention caches")
        _require(keys.shape[0] >= q.shape[0], "attention: fewer keys than queries")
        return ops.attention(q, keys, values, heads, kv_heads)
    if op in (NodeOp.SWIGLU, NodeOp.ADD):
        a, b = _floats(request, 2, 0, 0)
        _require(a.shape == b.shape, "elementwise shapes")
        return ops.swiglu(a, b) if op == NodeOp.SWIGLU else ops.add(a, b)
    if op == NodeOp.LAST_ROW:
        (x,) = _floats(request, 1, 0, 0)
        return ops.last_row(x)
    if op == NodeOp.CONCAT:
        parts = _floats(request, max(len(request.values), 1), 0, 0)
        _require(len({p.shape[0] for p in parts}) == 1, "concat rows")
        return ops.concat(parts)
    if op == NodeOp.ARGMAX:
        (x,) = _floats(request, 1, 0, 0)
        _require(x.shape[0] == 1, "argmax of several rows")
        return ops.argmax(x)
    raise NodeError(f"unknown op {op}", EXIT_UNSUPPORTED_OP)


@dataclass(frozen=True)
class VmNodeResult:
    exit_code: int
    output: np.ndarray | None
    steps: int
    stderr: bytes
    seconds: float


def run_in_vm(model_file: bytes, request: NodeRequest, max_steps: int = 1 << 36, execution=None) -> VmNodeResult:
    """Run the node program on this request (a fresh Execution, or `execution` made by `vm_execution`)."""
    import time

    from ...guest import LLM_NODE, built
    from ...vm.elf import Program
    from ...vm.execution import Execution

    if execution is None:
        execution = Execution(Program.from_file(built(LLM_NODE.name)), model=model_file, input=request.to_bytes())
    start = time.perf_counter()
    result = execution.run(max_steps=max_steps)
    seconds = time.perf_counter() - start
    output = decode_value(result.output) if result.exit_code == 0 else None
    return VmNodeResult(result.exit_code, output, result.steps, result.stderr, seconds)
