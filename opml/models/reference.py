"""The native reference executor: a model `Graph` in numpy, bit-exact with the guest.

Every kernel does the float32 operations of guest/inference/ops.c in the same order
(numpy rounds each float32 operation exactly as the guest's soft float does); only
the loops run over whole arrays at once. `opml predict` uses it, and a future
graph-level dispute phase would too.

Each op is one `Kernel`: `shape` makes the guest's checks, in the guest's order and with
its exit codes, and gives the output shape (opml.models.summary uses it alone, so a graph
is checked without computing anything); `compute` does the arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import BadInput
from .formats import (
    EXIT_BAD_INDEX,
    EXIT_BAD_INPUT_LENGTH,
    EXIT_BAD_SHAPE,
    EXIT_MODEL_TOO_LARGE,
    EXIT_UNSUPPORTED_OP,
    MAX_ELEMENTS,
    MAX_RANK,
    Graph,
    Node,
    Op,
    Prediction,
    float_param,
)

F32 = np.float32
LOG2E = F32(1.44269504088896341)
LN2_HI = F32(0.693145751953125)
LN2_LO = F32(1.42860682030941723212e-6)
EXP_OVERFLOW = F32(88.72283935546875)
EXP_UNDERFLOW = F32(-103.972084045410)
EXP_TAYLOR = [
    F32(c) for c in (1.98412698e-4, 1.38888889e-3, 8.33333333e-3, 4.16666667e-2, 1.66666667e-1, 0.5, 1.0, 1.0)
]
# erf: x + x P(x^2) below 1, 1 - exp(-x^2) Q(1/x) below 4 (guest/inference/mathf.c says where they come from).
ERF_SMALL = [F32(c) for c in (
    1.2837917e-01, -3.7612638e-01, 1.1283792e-01, -2.6866172e-02, 5.223978e-03, -8.548327e-04, 1.20553326e-04,
    -1.492565e-05, 1.6462114e-06, -1.6365844e-07, 1.4807193e-08,
)]  # fmt: skip
ERF_LARGE = [F32(c) for c in (
    0.00027267227, 0.55901647, 0.042087357, -0.47150075, 0.49553958, -0.23834717, 0.01941438, 0.031199962,
    -0.010098984,
)]  # fmt: skip
MAX_GATHER_ROWS = 1 << 24  # a row index is a float32, exact up to 2^24

Shape = tuple[int, ...]


class InferenceError(BadInput):
    """The model cannot run on this input (the guest exits with the matching code)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _require(condition: bool, message: str, exit_code: int = EXIT_BAD_SHAPE) -> None:
    if not condition:
        raise InferenceError(message, exit_code)


def _sized(shape: Shape, what: str) -> Shape:
    """`shape`, if it has at most MAX_ELEMENTS elements (else the model is too large)."""
    _require(math.prod(shape) <= MAX_ELEMENTS, f"{what} output {shape} is too large", EXIT_MODEL_TOO_LARGE)
    return tuple(shape)


def _u32(value: int) -> int:
    """A param as the guest reads it for an unsigned comparison."""
    return value & 0xFFFFFFFF


# --- math (guest/inference/mathf.c) -------------------------------------------------------------


def _power_of_two(n: np.ndarray) -> np.ndarray:
    return ((n.astype(np.int64) + 127) << 23).astype(np.uint32).view(F32)


def expf(x: np.ndarray) -> np.ndarray:
    """opml_expf of guest/inference/mathf.c, elementwise."""
    x = np.asarray(x, dtype=F32)
    with np.errstate(all="ignore"):
        kf = x * LOG2E
        k = (kf + np.where(kf >= 0, F32(0.5), F32(-0.5))).astype(np.int32)
        k = np.where(np.isfinite(x) & (x <= EXP_OVERFLOW) & (x >= EXP_UNDERFLOW), k, 0)
        kf32 = k.astype(F32)
        r = x - kf32 * LN2_HI
        r = r - kf32 * LN2_LO
        p = EXP_TAYLOR[0]
        for coefficient in EXP_TAYLOR[1:]:
            p = p * r + coefficient
        half = np.where(k >= 0, k // 2, -((-k) // 2))  # C division truncates toward zero
        result = (p * _power_of_two(half)) * _power_of_two(k - half)
        result = np.where(x < EXP_UNDERFLOW, F32(0), result)
        result = np.where(x > EXP_OVERFLOW, F32(np.inf), result)
        return np.where(np.isnan(x), x, result).astype(F32)


def sigmoidf(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where(np.isnan(x), x, F32(1) / (F32(1) + expf(-x))).astype(F32)


def tanhf(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        magnitude = np.where(x < 0, -x, x)
        t = expf(F32(-2) * magnitude)
        y = (F32(1) - t) / (F32(1) + t)
        y = np.where(x < 0, -y, y)
        y = np.where(magnitude > F32(9), np.where(x < 0, F32(-1), F32(1)), y)
        return np.where(np.isnan(x), x, y).astype(F32)


def _horner(coefficients: list[np.float32], t: np.ndarray) -> np.ndarray:
    """coefficients[0] + t (coefficients[1] + t (...)), the highest first, as the guest's loop."""
    result = np.full_like(t, coefficients[-1])
    for coefficient in coefficients[-2::-1]:
        result = result * t + coefficient
    return result


def erff(x: np.ndarray) -> np.ndarray:
    """opml_erff of guest/inference/mathf.c, elementwise (within 1.5 ulp of erf)."""
    x = np.asarray(x, dtype=F32)
    with np.errstate(all="ignore"):
        magnitude = np.where(x < 0, -x, x)
        square = magnitude * magnitude
        small = magnitude + magnitude * _horner(ERF_SMALL, square)
        large = F32(1) - expf(-square) * _horner(ERF_LARGE, F32(1) / magnitude)
        y = np.where(magnitude < 1, small, np.where(magnitude < 4, large, F32(1)))
        y = np.where(x < 0, -y, y)
        return np.where(np.isnan(x), x, y).astype(F32)


def sqrtf(x: np.ndarray) -> np.ndarray:
    """opml_sqrtf: the correctly rounded root, which numpy's is (NaNs included, on x86)."""
    with np.errstate(all="ignore"):
        return np.sqrt(np.asarray(x, dtype=F32))


# --- ops ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kernel:
    shape: Callable[[Graph, Node, list[Shape]], Shape]
    compute: Callable[[Graph, Node, list[np.ndarray], Shape], np.ndarray]


def _bias(graph: Graph, node: Node, size: int) -> np.ndarray | None:
    """The optional bias of linear and conv2d: their second tensor, [size]."""
    if len(node.tensors) < 2:
        return None
    bias = graph.tensors[node.tensors[1]]
    _require(bias.ndim == 1 and bias.shape[0] == size, f"bias {bias.shape} for {size} outputs")
    return bias


def _linear_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    x = inputs[0]
    _require(len(node.tensors) >= 1, "linear without a weight")
    weight = graph.tensors[node.tensors[0]]
    _require(weight.ndim == 2, f"linear weight of shape {weight.shape}")
    out, size = weight.shape
    if x[-1] != size:
        _require(math.prod(x) == size, f"linear weight {weight.shape} for {math.prod(x)} inputs")
        x = (size,)
    _bias(graph, node, out)
    return _sized((*x[:-1], out), "linear")


def _linear(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    weight = graph.tensors[node.tensors[0]]
    out, size = weight.shape
    rows = values[0].reshape(-1, size)
    bias = _bias(graph, node, out)
    acc = np.zeros((rows.shape[0], out), F32) if bias is None else np.tile(bias, (rows.shape[0], 1))
    for i in range(size):
        acc = acc + weight[:, i] * rows[:, i : i + 1]
    return acc.reshape(shape)


def _window_count(size: int, k: int, s: int, p: int) -> int:
    if k <= 0 or s <= 0 or p < 0 or size + 2 * p - k < 0:
        return 0
    return (size + 2 * p - k) // s + 1


def _taps(x: np.ndarray, oh: int, ow: int, ky: int, kx: int, sh: int, sw: int, ph: int, pw: int):
    """x[:, oy*sh + ky - ph, ox*sw + kx - pw] for every output position, and where that is inside x."""
    rows = np.arange(oh) * sh + ky - ph
    cols = np.arange(ow) * sw + kx - pw
    valid = ((rows >= 0) & (rows < x.shape[1]))[:, None] & ((cols >= 0) & (cols < x.shape[2]))[None, :]
    values = x[:, np.clip(rows, 0, x.shape[1] - 1)][:, :, np.clip(cols, 0, x.shape[2] - 1)]
    return values, valid


def _conv2d_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    x = inputs[0]
    _require(
        len(node.tensors) >= 1 and len(node.params) == 4 and len(x) == 3, "conv2d needs a weight, 4 params, [C,H,W]"
    )
    weight = graph.tensors[node.tensors[0]]
    sh, sw, ph, pw = node.params
    _require(weight.ndim == 4 and weight.shape[1] == x[0], "conv2d weight does not fit its input")
    oc, _, kh, kw = weight.shape
    oh, ow = _window_count(x[1], kh, sh, ph), _window_count(x[2], kw, sw, pw)
    _require(oh > 0 and ow > 0, "conv2d has no output positions")
    _bias(graph, node, oc)
    return _sized((oc, oh, ow), "conv2d")


def _conv2d(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    x = values[0]
    weight = graph.tensors[node.tensors[0]]
    sh, sw, ph, pw = node.params
    oc, c, kh, kw = weight.shape
    bias = _bias(graph, node, oc)
    acc = np.zeros(shape, F32) if bias is None else np.broadcast_to(bias[:, None, None], shape).astype(F32)
    for i in range(c):
        for ky in range(kh):
            for kx in range(kw):
                taps, valid = _taps(x[i : i + 1], shape[1], shape[2], ky, kx, sh, sw, ph, pw)
                acc = np.where(valid, acc + weight[:, i, ky, kx][:, None, None] * taps, acc)
    return acc


def _pool2d_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    x = inputs[0]
    _require(len(node.params) == 6 and len(x) == 3, "pooling needs 6 params and a [C, H, W] input")
    kh, kw, sh, sw, ph, pw = node.params
    oh, ow = _window_count(x[1], kh, sh, ph), _window_count(x[2], kw, sw, pw)
    _require(bool(oh and ow) and 2 * ph <= kh and 2 * pw <= kw, "pooling window does not fit")
    return _sized((x[0], oh, ow), "pooling")


def _pool2d(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    x, is_max = values[0], node.op == Op.MAXPOOL2D
    kh, kw, sh, sw, ph, pw = node.params
    acc = np.full(shape, -np.inf if is_max else 0, dtype=F32)
    for ky in range(kh):
        for kx in range(kw):
            taps, valid = _taps(x, shape[1], shape[2], ky, kx, sh, sw, ph, pw)
            if is_max:
                acc = np.where(valid & (taps > acc), taps, acc)
            else:
                acc = np.where(valid, acc + taps, acc)
    return acc if is_max else acc / F32(kh * kw)


def _same_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    return inputs[0]


ELEMENTWISE = {
    Op.RELU: lambda x: np.where(x < 0, F32(0), x),
    Op.SIGMOID: sigmoidf,
    Op.TANH: tanhf,
    Op.SQRT: sqrtf,
    Op.ERF: erff,
}


def _elementwise(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    return ELEMENTWISE[node.op](values[0])


def _clip_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    _require(len(node.params) == 2, "clip needs 2 params: min and max")
    return inputs[0]


def _clip(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    low, high = (float_param(param) for param in node.params)
    x = values[0]
    return np.where(x < low, low, np.where(x > high, high, x))


def _flat_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    return (math.prod(inputs[0]),)


def _flatten(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    return values[0].reshape(shape)


def _softmax_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    x = inputs[0]
    if not node.params:
        return (math.prod(x),)
    _require(len(node.params) == 1 and node.params[0] == len(x) - 1, f"softmax params {node.params} for {x}")
    return x


def _softmax(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    rows = values[0].reshape(-1, shape[-1])
    largest = rows[:, 0]
    for i in range(1, rows.shape[1]):
        largest = np.where(rows[:, i] > largest, rows[:, i], largest)
    exps = expf(rows - largest[:, None])
    total = np.zeros(rows.shape[0], F32)
    for i in range(rows.shape[1]):  # in order, as the guest adds them
        total = total + exps[:, i]
    return (exps / total[:, None]).reshape(shape)


# --- binary ops with broadcasting ---


BINARY = {Op.ADD: np.add, Op.SUB: np.subtract, Op.MUL: np.multiply, Op.DIV: np.divide}


def _operands(graph: Graph, node: Node, inputs: list, shapes: bool) -> tuple:
    """(a, b) of a binary op: the two inputs, or the input and the tensor (param 1: the tensor first);
    as shapes or as values."""
    if len(node.inputs) == 2 and not node.tensors:
        pair = [inputs[0], inputs[1]]
    elif len(node.inputs) == 1 and len(node.tensors) == 1:
        tensor = graph.tensors[node.tensors[0]]
        pair = [inputs[0], tensor.shape if shapes else tensor]
    else:
        raise InferenceError(f"{node.op.name.lower()} needs two inputs, or one input and one tensor", EXIT_BAD_SHAPE)
    _require(len(node.params) <= 1 and all(_u32(p) <= 1 for p in node.params), f"params {node.params}")
    return (pair[1], pair[0]) if node.params == [1] else (pair[0], pair[1])


def _binary_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    a, b = _operands(graph, node, inputs, shapes=True)
    padded_a, padded_b = ((1,) * (MAX_RANK - len(s)) + tuple(s) for s in (a, b))
    _require(
        all(p == q or p == 1 or q == 1 for p, q in zip(padded_a, padded_b)), f"shapes {a} and {b} do not broadcast"
    )
    shape = tuple(q if p == 1 else p for p, q in zip(padded_a, padded_b))
    return _sized(shape[MAX_RANK - max(len(a), len(b)) :], node.op.name.lower())


def _binary(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    a, b = _operands(graph, node, values, shapes=False)
    return BINARY[node.op](a, b)


# --- transformer ops ---


def _matmul_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    _require(len(node.inputs) == 2, "matmul needs two inputs")
    a, b = inputs
    _require(len(a) >= 2 and len(b) == len(a) and a[:-2] == b[:-2], f"matmul of {a} and {b}")
    _require(b[-2] == a[-1], f"matmul of {a} and {b}")
    return _sized((*a[:-1], b[-1]), "matmul")


def _matmul(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    a, b = values
    acc = np.zeros(shape, F32)
    for p in range(a.shape[-1]):
        acc = acc + a[..., :, p : p + 1] * b[..., p : p + 1, :]
    return acc


def _transpose_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    x = inputs[0]
    _require(sorted(_u32(p) for p in node.params) == list(range(len(x))), f"transpose {node.params} of {x}")
    return tuple(x[axis] for axis in node.params)


def _transpose(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(values[0], node.params))


def _reshape_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    _require(1 <= len(node.params) <= MAX_RANK and min(node.params) > 0, f"reshape to {node.params}")
    _require(math.prod(node.params) == math.prod(inputs[0]), f"reshape of {inputs[0]} to {node.params}")
    return tuple(node.params)


def _reshape(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    return values[0].reshape(shape)


def _select_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    x = inputs[0]
    _require(len(node.params) == 1 and len(x) >= 2, "select needs one param and an input of rank 2 or more")
    _require(0 <= node.params[0] < x[0], f"select {node.params[0]} of {x}")
    return x[1:]


def _select(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    return values[0][node.params[0]]


def _gather_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    _require(len(node.tensors) == 1, "gather needs one tensor, its table")
    table = graph.tensors[node.tensors[0]].shape
    rank = len(inputs[0]) + len(table) - 1
    _require(table[0] <= MAX_GATHER_ROWS and rank <= MAX_RANK, f"gather from a table of {table}")
    return _sized((*inputs[0], *table[1:]), "gather")


def _gather(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    table, indices = graph.tensors[node.tensors[0]], values[0].reshape(-1)
    with np.errstate(invalid="ignore"):
        valid = (indices >= 0) & (indices < F32(table.shape[0])) & (np.floor(indices) == indices)
    _require(bool(valid.all()), f"a gather index is not a row of a table of {table.shape[0]}", EXIT_BAD_INDEX)
    return table[indices.astype(np.int64)].reshape(shape)


def _layernorm_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    x = inputs[0]
    _require(len(node.tensors) == 2 and len(node.params) == 1, "layernorm needs gamma, beta and epsilon")
    for tensor in node.tensors:
        _require(
            graph.tensors[tensor].shape == (x[-1],), f"layernorm of {x} with a tensor of {graph.tensors[tensor].shape}"
        )
    return x


def _layernorm(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    gamma, beta = (graph.tensors[tensor] for tensor in node.tensors)
    size, epsilon = F32(shape[-1]), float_param(node.params[0])
    rows = values[0].reshape(-1, shape[-1])
    mean = np.zeros(rows.shape[0], F32)
    for i in range(rows.shape[1]):
        mean = mean + rows[:, i]
    mean = mean / size
    variance = np.zeros(rows.shape[0], F32)
    for i in range(rows.shape[1]):
        deviation = rows[:, i] - mean
        variance = variance + deviation * deviation
    variance = variance / size
    deviation = sqrtf(variance + epsilon)
    return ((rows - mean[:, None]) / deviation[:, None] * gamma + beta).reshape(shape)


def _reduce_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    x = inputs[0]
    _require(len(node.params) == 2, "a reduction needs 2 params: axis and keepdims")
    axis, keep = (_u32(param) for param in node.params)
    _require(axis < len(x) and keep <= 1, f"a reduction over axis {node.params[0]} of {x}")
    if keep:
        return (*x[:axis], 1, *x[axis + 1 :])
    return (*x[:axis], *x[axis + 1 :]) or (1,)


def _reduce(graph: Graph, node: Node, values: list[np.ndarray], shape: Shape) -> np.ndarray:
    along = np.moveaxis(values[0], node.params[0], 0)
    acc = np.zeros(along.shape[1:], F32)
    for item in along:
        acc = acc + (item if node.op == Op.REDUCE_SUM else item * item)
    return (acc if node.op == Op.REDUCE_SUM else sqrtf(acc)).reshape(shape)


KERNELS: dict[Op, Kernel] = {
    Op.LINEAR: Kernel(_linear_shape, _linear),
    Op.CONV2D: Kernel(_conv2d_shape, _conv2d),
    Op.MAXPOOL2D: Kernel(_pool2d_shape, _pool2d),
    Op.AVGPOOL2D: Kernel(_pool2d_shape, _pool2d),
    **{op: Kernel(_same_shape, _elementwise) for op in ELEMENTWISE},
    Op.CLIP: Kernel(_clip_shape, _clip),
    Op.SOFTMAX: Kernel(_softmax_shape, _softmax),
    Op.FLATTEN: Kernel(_flat_shape, _flatten),
    **{op: Kernel(_binary_shape, _binary) for op in BINARY},
    Op.MATMUL: Kernel(_matmul_shape, _matmul),
    Op.TRANSPOSE: Kernel(_transpose_shape, _transpose),
    Op.RESHAPE: Kernel(_reshape_shape, _reshape),
    Op.SELECT: Kernel(_select_shape, _select),
    Op.GATHER: Kernel(_gather_shape, _gather),
    Op.LAYERNORM: Kernel(_layernorm_shape, _layernorm),
    Op.REDUCE_SUM: Kernel(_reduce_shape, _reduce),
    Op.REDUCE_L2: Kernel(_reduce_shape, _reduce),
}


def output_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    """The shape of `node`'s value for inputs of these shapes, after the guest's checks."""
    kernel = KERNELS.get(node.op)
    if kernel is None:
        raise InferenceError(f"unsupported op {node.op}", EXIT_UNSUPPORTED_OP)
    return kernel.shape(graph, node, inputs)


def decode_input(graph: Graph, data: bytes) -> np.ndarray:
    if len(data) != graph.input_bytes:
        raise InferenceError(
            f"input is {len(data)} bytes; this model takes {graph.input_bytes} "
            f"({graph.input_type.name.lower()} {list(graph.input_shape)})",
            EXIT_BAD_INPUT_LENGTH,
        )
    return np.frombuffer(data, dtype=graph.input_dtype()).astype(F32).reshape(graph.input_shape)


def run(graph: Graph, input: bytes) -> Prediction:
    """What the guest writes to the output region for this input."""
    values = [decode_input(graph, input)]
    with np.errstate(all="ignore"):
        for node in graph.nodes:
            inputs = [values[value] for value in node.inputs]
            shape = output_shape(graph, node, [x.shape for x in inputs])
            values.append(KERNELS[node.op].compute(graph, node, inputs, shape).astype(F32, copy=False))
    scores = values[-1].reshape(-1)
    best = 0
    for i in range(1, scores.size):
        if scores[i] > scores[best]:
            best = i
    return Prediction(best, scores)


def predict(model: bytes, input: bytes) -> Prediction:
    """Parse the model file (either format) and run it."""
    from .formats import parse_model

    return run(parse_model(model), input)
