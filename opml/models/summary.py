"""What a model file holds, layer by layer: ops, shapes and parameter counts.

The shapes are worked out from the graph alone, with the checks the reference executor
(and the guest) make when they run it, and the same errors: a graph whose shapes do not
fit together fails here, at upload, instead of in the VM later. Nothing is computed, so a
small file that describes huge activations costs no memory or time here;
tests/models/test_summary.py checks that this accepts exactly what the reference runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..vm.layout import MAX_INPUT_BYTES
from .formats import MAX_ELEMENTS, Graph, InputType, Node, Op
from .reference import EXIT_BAD_INPUT_LENGTH, EXIT_BAD_SHAPE, EXIT_MODEL_TOO_LARGE, EXIT_UNSUPPORTED_OP
from .reference import InferenceError, _window_count

Shape = tuple[int, ...]

ATTRIBUTE_NAMES = {
    Op.CONV2D: ("stride_h", "stride_w", "pad_h", "pad_w"),
    Op.MAXPOOL2D: ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"),
    Op.AVGPOOL2D: ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"),
}
ELEMENTWISE = {Op.RELU, Op.SIGMOID, Op.TANH}


@dataclass(frozen=True)
class Layer:
    index: int
    op: str  # the Op's name in lower case: linear, conv2d, relu, ...
    inputs: list[int]  # value ids: 0 is the model's input, k the output of layer k-1
    input_shapes: list[Shape]
    output_shape: Shape
    parameters: int  # elements of its weight and bias tensors
    attributes: dict[str, int]  # strides, paddings and kernel sizes, by name


@dataclass(frozen=True)
class ModelSummary:
    input_type: str  # "u8" (bytes used as 0-255) or "f32" (big-endian float32)
    input_shape: Shape
    input_bytes: int
    output_size: int  # number of scores the model writes
    parameter_count: int
    layers: list[Layer]


def summarize(graph: Graph) -> ModelSummary:
    """The summary of a parsed model; raises InferenceError (bad input) if the model cannot run."""
    shapes = value_shapes(graph)
    layers = [
        Layer(
            index=index,
            op=node.op.name.lower(),
            inputs=list(node.inputs),
            input_shapes=[shapes[value] for value in node.inputs],
            output_shape=shapes[index + 1],
            parameters=sum(graph.tensors[tensor].size for tensor in node.tensors),
            attributes=dict(zip(ATTRIBUTE_NAMES.get(node.op, ()), node.params, strict=False)),
        )
        for index, node in enumerate(graph.nodes)
    ]
    return ModelSummary(
        input_type="u8" if graph.input_type == InputType.U8 else "f32",
        input_shape=tuple(graph.input_shape),
        input_bytes=graph.input_bytes,
        output_size=math.prod(shapes[-1]),
        parameter_count=sum(tensor.size for tensor in graph.tensors),
        layers=layers,
    )


def value_shapes(graph: Graph) -> list[Shape]:
    """The shape of every value (the input, then each node's output), checked as the reference checks."""
    _require(
        graph.input_bytes <= MAX_INPUT_BYTES, "the input does not fit the VM's input region", EXIT_BAD_INPUT_LENGTH
    )
    shapes = [tuple(graph.input_shape)]
    for node in graph.nodes:
        shapes.append(_output_shape(graph, node, [shapes[value] for value in node.inputs]))
    return shapes


def _require(condition: bool, message: str, exit_code: int = EXIT_BAD_SHAPE) -> None:
    if not condition:
        raise InferenceError(message, exit_code)


def _output_shape(graph: Graph, node: Node, inputs: list[Shape]) -> Shape:
    x = inputs[0]
    if node.op == Op.LINEAR:
        return _linear(graph, node, x)
    if node.op == Op.CONV2D:
        return _conv2d(graph, node, x)
    if node.op in (Op.MAXPOOL2D, Op.AVGPOOL2D):
        return _pool2d(node, x)
    if node.op in ELEMENTWISE:
        return x
    if node.op in (Op.FLATTEN, Op.SOFTMAX):  # softmax runs over all elements and writes them as a vector
        return (math.prod(x),)
    if node.op == Op.ADD:
        _require(len(inputs) == 2, "add needs two inputs")
        _require(inputs[1] == x, f"add of shapes {x} and {inputs[1]}")
        return x
    raise InferenceError(f"unsupported op {node.op}", EXIT_UNSUPPORTED_OP)


def _bias_fits(graph: Graph, node: Node, size: int) -> None:
    if len(node.tensors) >= 2:
        bias = graph.tensors[node.tensors[1]]
        _require(bias.ndim == 1 and bias.shape[0] == size, f"bias {bias.shape} for {size} outputs")


def _linear(graph: Graph, node: Node, x: Shape) -> Shape:
    _require(len(node.tensors) >= 1, "linear without a weight")
    weight = graph.tensors[node.tensors[0]]
    size = math.prod(x)
    _require(weight.ndim == 2 and weight.shape[1] == size, f"linear weight {weight.shape} for {size} inputs")
    _bias_fits(graph, node, weight.shape[0])
    return (weight.shape[0],)


def _conv2d(graph: Graph, node: Node, x: Shape) -> Shape:
    _require(
        len(node.tensors) >= 1 and len(node.params) == 4 and len(x) == 3, "conv2d needs a weight, 4 params, [C,H,W]"
    )
    weight = graph.tensors[node.tensors[0]]
    sh, sw, ph, pw = node.params
    _require(weight.ndim == 4 and weight.shape[1] == x[0], "conv2d weight does not fit its input")
    oc, _, kh, kw = weight.shape
    oh, ow = _window_count(x[1], kh, sh, ph), _window_count(x[2], kw, sw, pw)
    _require(oh > 0 and ow > 0, "conv2d has no output positions")
    _bias_fits(graph, node, oc)
    _require(oc * oh * ow <= MAX_ELEMENTS, "conv2d output is too large", EXIT_MODEL_TOO_LARGE)
    return (oc, oh, ow)


def _pool2d(node: Node, x: Shape) -> Shape:
    _require(len(node.params) == 6 and len(x) == 3, "pooling needs 6 params and a [C, H, W] input")
    kh, kw, sh, sw, ph, pw = node.params
    oh, ow = _window_count(x[1], kh, sh, ph), _window_count(x[2], kw, sw, pw)
    _require(bool(oh and ow) and 2 * ph <= kh and 2 * pw <= kw, "pooling window does not fit")
    return (x[0], oh, ow)
