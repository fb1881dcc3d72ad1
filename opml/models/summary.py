"""What a model file holds, layer by layer: ops, shapes and parameter counts.

The shapes are worked out from the graph alone by the reference executor's shape checks
(the guest's, with the same errors): a graph whose shapes do not fit together fails here,
at upload, instead of in the VM later. Nothing is computed, so a small file that describes
huge activations costs no memory or time here. Only what depends on the input's values
(a gather index out of its table) shows when the model runs; tests/models/test_summary.py
checks that this accepts exactly what the reference runs otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..vm.layout import MAX_INPUT_BYTES
from .formats import EXIT_BAD_INPUT_LENGTH, Graph, Op
from .reference import InferenceError, output_shape

Shape = tuple[int, ...]

# Names of the integer params of the ops that have any (float params, as LAYERNORM's, are left out).
ATTRIBUTE_NAMES = {
    Op.CONV2D: ("stride_h", "stride_w", "pad_h", "pad_w"),
    Op.MAXPOOL2D: ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"),
    Op.AVGPOOL2D: ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"),
    Op.SOFTMAX: ("axis",),
    **dict.fromkeys((Op.ADD, Op.SUB, Op.MUL, Op.DIV), ("tensor_first",)),
    Op.SELECT: ("index",),
    **dict.fromkeys((Op.REDUCE_SUM, Op.REDUCE_L2), ("axis", "keepdims")),
}


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
    input_type: str  # "u8" (bytes used as 0-255), "f32" (big-endian float32) or "i32" (big-endian int32)
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
        input_type=graph.input_type.name.lower(),
        input_shape=tuple(graph.input_shape),
        input_bytes=graph.input_bytes,
        output_size=math.prod(shapes[-1]),
        parameter_count=sum(tensor.size for tensor in graph.tensors),
        layers=layers,
    )


def value_shapes(graph: Graph) -> list[Shape]:
    """The shape of every value (the input, then each node's output), checked as the reference checks."""
    if graph.input_bytes > MAX_INPUT_BYTES:
        raise InferenceError("the input does not fit the VM's input region", EXIT_BAD_INPUT_LENGTH)
    shapes = [tuple(graph.input_shape)]
    for node in graph.nodes:
        shapes.append(output_shape(graph, node, [shapes[value] for value in node.inputs]))
    return shapes
