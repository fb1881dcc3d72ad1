"""The native reference executor: a model `Graph` in numpy, bit-exact with the guest.

Every kernel does the float32 operations of guest/inference/ops.c in the same order
(numpy rounds each float32 operation exactly as the guest's soft float does); only
the loops run over whole arrays at once. `opml predict` uses it, and a future
graph-level dispute phase would too.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadInput
from .formats import MAX_ELEMENTS, Graph, InputType, Node, Op, Prediction

F32 = np.float32
LOG2E = F32(1.44269504088896341)
LN2_HI = F32(0.693145751953125)
LN2_LO = F32(1.42860682030941723212e-6)
EXP_OVERFLOW = F32(88.72283935546875)
EXP_UNDERFLOW = F32(-103.972084045410)
EXP_TAYLOR = [F32(c) for c in (1.98412698e-4, 1.38888889e-3, 8.33333333e-3, 4.16666667e-2, 1.66666667e-1, 0.5, 1.0, 1.0)]


class InferenceError(BadInput):
    """The model cannot run on this input (the guest exits with the matching code)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


EXIT_BAD_SHAPE = 13
EXIT_MODEL_TOO_LARGE = 14
EXIT_UNSUPPORTED_OP = 15
EXIT_BAD_INPUT_LENGTH = 20


def _require(condition: bool, message: str, exit_code: int = EXIT_BAD_SHAPE) -> None:
    if not condition:
        raise InferenceError(message, exit_code)


def _bias(graph: Graph, node: Node, size: int) -> np.ndarray:
    if len(node.tensors) < 2:
        return np.zeros(size, F32)
    bias = graph.tensors[node.tensors[1]]
    _require(bias.ndim == 1 and bias.shape[0] == size, f"bias {bias.shape} for {size} outputs")
    return bias


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


def _linear(graph: Graph, node: Node, x: np.ndarray) -> np.ndarray:
    _require(len(node.tensors) >= 1, "linear without a weight")
    weight = graph.tensors[node.tensors[0]]
    flat = x.reshape(-1)
    _require(weight.ndim == 2 and weight.shape[1] == flat.size, f"linear weight {weight.shape} for {flat.size} inputs")
    acc = _bias(graph, node, weight.shape[0]).copy()
    for i in range(flat.size):
        acc = acc + weight[:, i] * flat[i]
    return acc


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


def _conv2d(graph: Graph, node: Node, x: np.ndarray) -> np.ndarray:
    _require(len(node.tensors) >= 1 and len(node.params) == 4 and x.ndim == 3, "conv2d needs a weight, 4 params, [C,H,W]")
    weight = graph.tensors[node.tensors[0]]
    sh, sw, ph, pw = node.params
    _require(weight.ndim == 4 and weight.shape[1] == x.shape[0], "conv2d weight does not fit its input")
    oc, c, kh, kw = weight.shape
    oh, ow = _window_count(x.shape[1], kh, sh, ph), _window_count(x.shape[2], kw, sw, pw)
    _require(oh > 0 and ow > 0, "conv2d has no output positions")
    bias = _bias(graph, node, oc)
    _require(oc * oh * ow <= MAX_ELEMENTS, "conv2d output is too large", EXIT_MODEL_TOO_LARGE)
    acc = np.broadcast_to(bias[:, None, None], (oc, oh, ow)).astype(F32)
    for i in range(c):
        for ky in range(kh):
            for kx in range(kw):
                values, valid = _taps(x[i : i + 1], oh, ow, ky, kx, sh, sw, ph, pw)
                acc = np.where(valid, acc + weight[:, i, ky, kx][:, None, None] * values, acc)
    return acc


def _pool2d(node: Node, x: np.ndarray, is_max: bool) -> np.ndarray:
    _require(len(node.params) == 6 and x.ndim == 3, "pooling needs 6 params and a [C, H, W] input")
    kh, kw, sh, sw, ph, pw = node.params
    oh, ow = _window_count(x.shape[1], kh, sh, ph), _window_count(x.shape[2], kw, sw, pw)
    if not oh or not ow or 2 * ph > kh or 2 * pw > kw:
        raise InferenceError("pooling window does not fit", EXIT_BAD_SHAPE)
    acc = np.full((x.shape[0], oh, ow), -np.inf if is_max else 0, dtype=F32)
    for ky in range(kh):
        for kx in range(kw):
            values, valid = _taps(x, oh, ow, ky, kx, sh, sw, ph, pw)
            if is_max:
                acc = np.where(valid & (values > acc), values, acc)
            else:
                acc = np.where(valid, acc + values, acc)
    return acc if is_max else acc / F32(kh * kw)


def _softmax(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(-1)
    largest = flat[0]
    for value in flat[1:]:
        if value > largest:
            largest = value
    exps = expf(flat - largest)
    total = F32(0)
    for value in exps:  # in order, as the guest adds them
        total = F32(total + value)
    return exps / total


def _run_node(graph: Graph, node: Node, values: list[np.ndarray]) -> np.ndarray:
    x = values[node.inputs[0]]
    if node.op == Op.LINEAR:
        return _linear(graph, node, x)
    if node.op == Op.CONV2D:
        return _conv2d(graph, node, x)
    if node.op in (Op.MAXPOOL2D, Op.AVGPOOL2D):
        return _pool2d(node, x, node.op == Op.MAXPOOL2D)
    if node.op == Op.RELU:
        return np.where(x < 0, F32(0), x)
    if node.op == Op.SIGMOID:
        return sigmoidf(x)
    if node.op == Op.TANH:
        return tanhf(x)
    if node.op == Op.SOFTMAX:
        return _softmax(x)
    if node.op == Op.FLATTEN:
        return x.reshape(-1)
    if node.op == Op.ADD:
        _require(len(node.inputs) == 2, "add needs two inputs")
        other = values[node.inputs[1]]
        _require(other.shape == x.shape, f"add of shapes {x.shape} and {other.shape}")
        return x + other
    raise InferenceError(f"unsupported op {node.op}", EXIT_UNSUPPORTED_OP)


def decode_input(graph: Graph, data: bytes) -> np.ndarray:
    if len(data) != graph.input_bytes:
        raise InferenceError(
            f"input is {len(data)} bytes; this model takes {graph.input_bytes} "
            f"({'u8' if graph.input_type == InputType.U8 else 'f32'} {list(graph.input_shape)})",
            EXIT_BAD_INPUT_LENGTH,
        )
    dtype = np.uint8 if graph.input_type == InputType.U8 else ">f4"
    return np.frombuffer(data, dtype=dtype).astype(F32).reshape(graph.input_shape)


def run(graph: Graph, input: bytes) -> Prediction:
    """What the guest writes to the output region for this input."""
    values = [decode_input(graph, input)]
    with np.errstate(all="ignore"):
        for node in graph.nodes:
            values.append(_run_node(graph, node, values).astype(F32, copy=False))
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
