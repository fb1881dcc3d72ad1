"""PyTorch -> model files: the seed format for the seed MLP, our graph format for the rest.

`graph_from_module` traces an nn.Module with torch.fx, folds each BatchNorm into the
Conv2d or Linear before it, and maps every other node to one `Op`. Anything it cannot
map is an `UnsupportedModelError` naming the op and the node it is at.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import BadInput
from .formats import Graph, InputType, Node, Op


class UnsupportedModelError(BadInput):
    pass


ELEMENTWISE_MODULES = {nn.ReLU: Op.RELU, nn.Sigmoid: Op.SIGMOID, nn.Tanh: Op.TANH}
ELEMENTWISE_FUNCTIONS = {
    torch.relu: Op.RELU, F.relu: Op.RELU, torch.sigmoid: Op.SIGMOID, F.sigmoid: Op.SIGMOID,
    torch.tanh: Op.TANH, F.tanh: Op.TANH,
}  # fmt: skip
ELEMENTWISE_METHODS = {"relu": Op.RELU, "sigmoid": Op.SIGMOID, "tanh": Op.TANH}
ADD_FUNCTIONS = {operator.add, torch.add}
FLATTEN_FUNCTIONS = {torch.flatten}
SOFTMAX_FUNCTIONS = {torch.softmax, F.softmax}


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _f32(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().to(torch.float32).numpy().copy()


class _Builder:
    """Turns traced fx nodes into graph nodes, one value id per fx node."""

    def __init__(self, module: nn.Module, traced: fx.GraphModule):
        self.module = module
        self.traced = traced
        self.modules = dict(traced.named_modules())
        self.graph_nodes: list[Node] = []
        self.tensors: list[np.ndarray] = []
        self.value_of: dict[fx.Node, int] = {}

    def add_tensor(self, array: np.ndarray) -> int:
        self.tensors.append(array.astype(np.float32))
        return len(self.tensors) - 1

    def emit(self, fx_node: fx.Node, op: Op, inputs, tensors=(), params=()) -> None:
        self.graph_nodes.append(Node(op, [self.value_of[i] for i in inputs], list(tensors), [int(p) for p in params]))
        self.value_of[fx_node] = len(self.graph_nodes)

    def alias(self, fx_node: fx.Node, source: fx.Node) -> None:
        self.value_of[fx_node] = self.value_of[source]

    def fail(self, fx_node: fx.Node, what: str) -> None:
        raise UnsupportedModelError(f"{what} at node '{fx_node.name}' ({fx_node.format_node()}) is not supported")

    @staticmethod
    def rank(fx_node: fx.Node) -> int:
        return len(fx_node.meta["tensor_meta"].shape)

    # --- modules ------------------------------------------------------------------------

    def weighted(self, fx_node: fx.Node, layer: nn.Module, source: fx.Node) -> None:
        weight = _f32(layer.weight)
        bias = _f32(layer.bias) if layer.bias is not None else None
        batch_norm = self.following_batch_norm(fx_node)
        if batch_norm is not None:
            weight, bias = _fold(weight, bias, batch_norm)
        tensors = [self.add_tensor(weight)] + ([self.add_tensor(bias)] if bias is not None else [])
        if isinstance(layer, nn.Linear):
            self.emit(fx_node, Op.LINEAR, [source], tensors)
            return
        if layer.groups != 1 or _pair(layer.dilation) != (1, 1) or isinstance(layer.padding, str):
            self.fail(fx_node, "Conv2d with groups, dilation or string padding")
        if layer.padding_mode != "zeros":
            self.fail(fx_node, f"Conv2d padding_mode={layer.padding_mode!r}")
        self.emit(fx_node, Op.CONV2D, [source], tensors, (*_pair(layer.stride), *_pair(layer.padding)))

    def following_batch_norm(self, fx_node: fx.Node) -> nn.Module | None:
        users = list(fx_node.users)
        if len(users) == 1 and users[0].op == "call_module":
            candidate = self.modules[users[0].target]
            if isinstance(candidate, (nn.BatchNorm1d, nn.BatchNorm2d)):
                return candidate
        return None

    def pool(self, fx_node: fx.Node, layer: nn.Module, source: fx.Node) -> None:
        kernel = _pair(layer.kernel_size)
        stride = _pair(layer.stride if layer.stride is not None else layer.kernel_size)
        padding = _pair(layer.padding)
        if layer.ceil_mode:
            self.fail(fx_node, f"{type(layer).__name__} with ceil_mode=True")
        if isinstance(layer, nn.MaxPool2d):
            if _pair(layer.dilation) != (1, 1) or layer.return_indices:
                self.fail(fx_node, "MaxPool2d with dilation or return_indices")
            op = Op.MAXPOOL2D
        else:
            if not layer.count_include_pad or layer.divisor_override is not None:
                self.fail(fx_node, "AvgPool2d with count_include_pad=False or divisor_override")
            op = Op.AVGPOOL2D
        self.emit(fx_node, op, [source], params=(*kernel, *stride, *padding))

    def call_module(self, fx_node: fx.Node) -> None:
        layer = self.modules[fx_node.target]
        source = fx_node.args[0]
        kind = type(layer)
        if kind in (nn.Linear, nn.Conv2d):
            self.weighted(fx_node, layer, source)
        elif kind in (nn.BatchNorm1d, nn.BatchNorm2d):
            producer = self.modules.get(source.target) if source.op == "call_module" else None
            if not isinstance(producer, (nn.Linear, nn.Conv2d)) or len(source.users) != 1:
                self.fail(fx_node, f"{kind.__name__} that does not directly follow a Conv2d or Linear")
            self.alias(fx_node, source)  # folded into the producer's weights
        elif kind in ELEMENTWISE_MODULES:
            self.emit(fx_node, ELEMENTWISE_MODULES[kind], [source])
        elif kind in (nn.MaxPool2d, nn.AvgPool2d):
            self.pool(fx_node, layer, source)
        elif kind is nn.Flatten:
            self.flatten(fx_node, source, layer.start_dim, layer.end_dim)
        elif kind is nn.Softmax:
            self.softmax(fx_node, source, layer.dim)
        elif kind in (nn.Dropout, nn.Identity):
            self.alias(fx_node, source)  # no-ops at inference time
        else:
            self.fail(fx_node, f"module {kind.__name__}")

    # --- functions and methods -------------------------------------------------------------

    def flatten(self, fx_node: fx.Node, source: fx.Node, start_dim: int = 1, end_dim: int = -1) -> None:
        if start_dim not in (0, 1) or end_dim != -1:
            self.fail(fx_node, f"flatten(start_dim={start_dim}, end_dim={end_dim})")
        self.emit(fx_node, Op.FLATTEN, [source])

    def softmax(self, fx_node: fx.Node, source: fx.Node, dim) -> None:
        if self.rank(source) != 2 or dim not in (1, -1):
            self.fail(fx_node, f"softmax over dim {dim} of a rank-{self.rank(source)} tensor")
        self.emit(fx_node, Op.SOFTMAX, [source])

    def call_function(self, fx_node: fx.Node) -> None:
        target, args, kwargs = fx_node.target, fx_node.args, fx_node.kwargs
        if target in ELEMENTWISE_FUNCTIONS:
            self.emit(fx_node, ELEMENTWISE_FUNCTIONS[target], [args[0]])
        elif target in ADD_FUNCTIONS and len(args) == 2 and all(isinstance(a, fx.Node) for a in args) and not kwargs:
            if fx_node.args[0].meta["tensor_meta"].shape != fx_node.args[1].meta["tensor_meta"].shape:
                self.fail(fx_node, "add with broadcasting")
            self.emit(fx_node, Op.ADD, list(args))
        elif target in FLATTEN_FUNCTIONS:
            self.flatten(fx_node, args[0], *(args[1:] or [kwargs.get("start_dim", 0)]))
        elif target in SOFTMAX_FUNCTIONS:
            self.softmax(fx_node, args[0], args[1] if len(args) > 1 else kwargs.get("dim"))
        elif target is operator.getitem or getattr(target, "__name__", "") == "size":
            self.value_of[fx_node] = -1  # shape arithmetic for view(); never a tensor value
        else:
            self.fail(fx_node, f"function {getattr(target, '__name__', target)}")

    def call_method(self, fx_node: fx.Node) -> None:
        method, source = fx_node.target, fx_node.args[0]
        if method in ELEMENTWISE_METHODS:
            self.emit(fx_node, ELEMENTWISE_METHODS[method], [source])
        elif method in ("view", "reshape", "flatten"):
            shape = fx_node.meta["tensor_meta"].shape
            if method == "flatten" or (len(shape) == 2 and shape[0] == 1):
                self.emit(fx_node, Op.FLATTEN, [source])
            else:
                self.fail(fx_node, f"{method} to shape {tuple(shape)} (only flattening to [1, N])")
        elif method == "size":
            self.value_of[fx_node] = -1
        elif method == "softmax":
            self.softmax(fx_node, source, fx_node.args[1] if len(fx_node.args) > 1 else fx_node.kwargs.get("dim"))
        else:
            self.fail(fx_node, f"method .{method}()")


def _fold(weight: np.ndarray, bias: np.ndarray | None, batch_norm: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias of the layer followed by `batch_norm` (in eval mode)."""
    statistics = (batch_norm.weight, batch_norm.bias, batch_norm.running_mean, batch_norm.running_var)
    return fold_batch_norm(weight, bias, *(_f32(tensor) for tensor in statistics), batch_norm.eps)


def fold_batch_norm(
    weight: np.ndarray,
    bias: np.ndarray | None,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    variance: np.ndarray,
    eps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias of a Conv2d or Linear followed by an inference-time BatchNorm, computed in
    float64 and rounded once (the PyTorch and the ONNX converters fold the same way)."""
    scale = gamma.astype(np.float64) / np.sqrt(variance.astype(np.float64) + eps)
    shift = beta.astype(np.float64) - mean.astype(np.float64) * scale
    folded = weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    base = bias.astype(np.float64) if bias is not None else np.zeros(weight.shape[0])
    return folded.astype(np.float32), (base * scale + shift).astype(np.float32)


def graph_from_module(module: nn.Module, input_shape: tuple[int, ...], input_type: InputType = InputType.F32) -> Graph:
    """Trace `module` (in eval mode) for one input of `input_shape` ([N] or [C, H, W])."""
    if not 1 <= len(input_shape) <= 3:
        raise UnsupportedModelError(f"input shape {input_shape}: give [N] or [C, H, W]")
    module = module.eval()
    try:
        traced = fx.symbolic_trace(module)
    except Exception as error:
        raise UnsupportedModelError(f"cannot trace the model with torch.fx: {error}") from error
    ShapeProp(traced).propagate(torch.zeros((1, *input_shape)))
    builder = _Builder(module, traced)
    output = None
    for fx_node in traced.graph.nodes:
        if fx_node.op == "placeholder":
            if builder.value_of:
                builder.fail(fx_node, "a second input")
            builder.value_of[fx_node] = 0
        elif fx_node.op == "call_module":
            builder.call_module(fx_node)
        elif fx_node.op == "call_function":
            builder.call_function(fx_node)
        elif fx_node.op == "call_method":
            builder.call_method(fx_node)
        elif fx_node.op == "output":
            output = fx_node.args[0]
        else:
            builder.fail(fx_node, f"{fx_node.op} {fx_node.target}")
    if not isinstance(output, fx.Node) or builder.value_of.get(output, -1) != len(builder.graph_nodes):
        raise UnsupportedModelError("the model's output must be one tensor computed by its last operation")
    if not builder.graph_nodes:
        raise UnsupportedModelError("the model has no operations")
    return Graph(input_type, tuple(input_shape), builder.tensors, builder.graph_nodes)
