"""ONNX -> our graph format, for the ops the graph supports (docs/models.md, "ONNX models").

ONNX is what every framework exports to (and what zkML systems take), so a model trained
anywhere can run in the VM. `graph_from_onnx` walks the ONNX graph in its (topological)
node order and maps each node to at most one `Op`:

- Gemm, and MatMul by a constant, become LINEAR; Conv becomes CONV2D. An Add of a
  per-channel constant or a BatchNormalization right after one of them is folded into
  its weights (when nothing else reads the value in between).
- Relu, Sigmoid, Tanh, MaxPool, AveragePool, GlobalAveragePool, Softmax and an Add of two
  values of one shape map one to one; Flatten and Reshape to [1, N] become FLATTEN.
- Identity, Dropout and Cast to float vanish; initializers and Constant nodes are weights.
- Shape arithmetic vanishes too: Shape of a value is known here (its batch is 1), and small
  integer ops on constants (Gather, Unsqueeze, Concat, ...: what an exporter emits to compute
  the target of a Reshape) are computed here by ONNX's own reference implementation.

An ONNX value of shape [1, *s] (batch of one) is our value of shape s. Anything the graph
cannot express fails with an UnsupportedModelError naming the op type and the node; a file
that is not a valid ONNX model fails with an OnnxFormatError (bad input) giving the reason.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ..errors import BadInput
from .convert import UnsupportedModelError, fold_batch_norm
from .formats import Graph, InputType, Node, Op

INPUT_TYPES = {onnx.TensorProto.FLOAT: InputType.F32, onnx.TensorProto.UINT8: InputType.U8}
ELEMENTWISE = {"Relu": Op.RELU, "Sigmoid": Op.SIGMOID, "Tanh": Op.TANH}
DEFAULT_DOMAINS = ("", "ai.onnx")
# Ops computed at import time when every input is a constant: the shape arithmetic exporters emit.
SHAPE_ARITHMETIC = {"Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Add", "Sub", "Mul", "Div"}
MAX_SHAPE_ELEMENTS = 64  # so that computing a constant here is shape arithmetic, never a model's work


class OnnxFormatError(BadInput):
    """The file is not a valid ONNX model: garbage, truncated, failing the ONNX checker, or
    weights whose shapes do not fit together."""


def graph_from_onnx(data: bytes) -> Graph:
    """Our graph for a serialized ONNX model (a ModelProto holding its weights)."""
    return _Importer(load_onnx(data)).run()


def load_onnx(data: bytes) -> onnx.ModelProto:
    """Parse and check a serialized ONNX model. Weights in external files are refused before
    anything reads them: a path in an uploaded model must never be opened."""
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError) as error:
        raise OnnxFormatError(f"not an ONNX model: {error or 'cannot decode the protobuf'}") from None
    if _has_external_data(model.graph):
        raise OnnxFormatError("the model keeps its weights in external files; export it with the weights inside")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise OnnxFormatError(f"not a valid ONNX model: {str(error).strip().splitlines()[0]}") from None
    return model


def _has_external_data(graph: onnx.GraphProto) -> bool:
    tensors = list(graph.initializer)
    for node in graph.node:
        for attribute in node.attribute:
            tensors.extend([attribute.t] if attribute.HasField("t") else attribute.tensors)
    return any(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in tensors)


def _opset(model: onnx.ModelProto) -> int:
    return next((entry.version for entry in model.opset_import if entry.domain in DEFAULT_DOMAINS), 1)


def _attributes(node: onnx.NodeProto) -> dict:
    values = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
    return {name: value.decode() if isinstance(value, bytes) else value for name, value in values.items()}


def _type_name(data_type: int) -> str:
    known = data_type in onnx.TensorProto.DataType.values()
    return onnx.TensorProto.DataType.Name(data_type) if known else f"type {data_type}"


def _array(tensor: onnx.TensorProto) -> np.ndarray:
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as error:
        raise OnnxFormatError(f"tensor '{tensor.name}' cannot be read: {error}") from None


def _window_count(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output positions of a convolution or pooling window along one axis (0 if it does not fit)."""
    if kernel <= 0 or stride <= 0 or size + 2 * pad < kernel:
        return 0
    return (size + 2 * pad - kernel) // stride + 1


def _per_channel(constant: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """`constant` as one number per channel (axis 1 of the ONNX value [1, *shape]), if it broadcasts
    to that value and is the same across everything but the channel."""
    try:
        full = np.broadcast_to(constant, (1, *shape))
    except ValueError:
        return None
    channels = full.reshape(shape[0], -1)
    return channels[:, 0] if (channels == channels[:, :1]).all() else None


def _resolve_reshape(shape: tuple[int, ...], target: list[int], allow_zero: bool) -> tuple[int, ...] | None:
    """The shape ONNX Reshape gives `shape` for `target` (0 copies a dimension, -1 is inferred), or None."""
    dims = [shape[i] if d == 0 and not allow_zero and i < len(shape) else d for i, d in enumerate(target)]
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        return None
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        if known == 0 or math.prod(shape) % known:
            return None
        dims[dims.index(-1)] = math.prod(shape) // known
    return tuple(dims) if math.prod(dims) == math.prod(shape) else None


@dataclass(frozen=True)
class _Value:
    """A value of our graph: its id (0 is the input, k the output of node k-1) and its shape
    without the batch dimension."""

    id: int
    shape: tuple[int, ...]


class _Importer:
    """One pass over the ONNX nodes, building our nodes and tensors."""

    def __init__(self, model: onnx.ModelProto):
        self.onnx_graph = model.graph
        self.opset = _opset(model)
        self.constants: dict[str, np.ndarray] = {t.name: _array(t) for t in model.graph.initializer}
        self.values: dict[str, _Value] = {}
        self.nodes: list[Node] = []
        self.tensors: list[np.ndarray] = []
        # How many node inputs and graph outputs read each value: a value read once can be folded into.
        # (Shape reads only the shape, which folding keeps.)
        readers = [node for node in model.graph.node if node.op_type != "Shape"]
        self.uses = Counter(name for node in readers for name in node.input if name)
        self.uses.update(output.name for output in model.graph.output)
        # Values computed by a LINEAR or CONV2D node (index in self.nodes) whose weights can absorb what follows.
        self.foldable: dict[str, int] = {}
        self.handlers = {
            "Gemm": self.gemm, "MatMul": self.matmul, "Conv": self.conv, "BatchNormalization": self.batch_norm,
            "Add": self.add, "MaxPool": self.pool, "AveragePool": self.pool,
            "GlobalAveragePool": self.global_average_pool, "Flatten": self.flatten, "Reshape": self.reshape,
            "Softmax": self.softmax, "Identity": self.pass_through, "Dropout": self.pass_through,
            "Cast": self.cast, "Constant": self.constant_node, "Shape": self.shape,
            **dict.fromkeys(ELEMENTWISE, self.elementwise),
        }  # fmt: skip

    def run(self) -> Graph:
        input_type, input_shape = self.graph_input()
        for node in self.onnx_graph.node:
            if self.is_shape_arithmetic(node):
                self.compute_constants(node)
                continue
            handler = self.handlers.get(node.op_type) if node.domain in DEFAULT_DOMAINS else None
            if handler is None:
                op = node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"
                raise UnsupportedModelError(
                    f"{op} at node '{self.node_name(node)}' is not supported: the graph format has no such op"
                )
            handler(node)
        self.check_output()
        return Graph(input_type, input_shape, self.tensors, self.nodes)

    # --- the graph's input and output ------------------------------------------------------------

    def graph_input(self) -> tuple[InputType, tuple[int, ...]]:
        inputs = [item for item in self.onnx_graph.input if item.name not in self.constants]
        if len(inputs) != 1:
            names = ", ".join(item.name for item in inputs)
            raise UnsupportedModelError(f"the model has {len(inputs)} inputs ({names}); only one is supported")
        tensor_type = inputs[0].type.tensor_type
        if tensor_type.elem_type not in INPUT_TYPES:
            name = _type_name(tensor_type.elem_type)
            raise UnsupportedModelError(f"the model's input is of type {name}; only FLOAT and UINT8 are supported")
        dims = list(tensor_type.shape.dim)
        if not 2 <= len(dims) <= 4:
            raise UnsupportedModelError(f"the model's input has rank {len(dims)}; give [1, N] or [1, C, H, W]")
        if dims[0].HasField("dim_value") and dims[0].dim_value != 1:
            raise UnsupportedModelError(f"the model's input has a batch of {dims[0].dim_value}; export it for 1")
        shape = []
        for dim in dims[1:]:
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                raise UnsupportedModelError(f"the model's input dimension '{dim.dim_param}' is not a fixed size")
            shape.append(dim.dim_value)
        self.values[inputs[0].name] = _Value(0, tuple(shape))
        return INPUT_TYPES[tensor_type.elem_type], tuple(shape)

    def check_output(self) -> None:
        outputs = list(self.onnx_graph.output)
        if len(outputs) != 1:
            raise UnsupportedModelError(f"the model has {len(outputs)} outputs; only one is supported")
        value = self.values.get(outputs[0].name)
        if value is None:
            raise UnsupportedModelError("the model's output is a constant")
        if value.id == 0:
            raise UnsupportedModelError("the model has no operations")
        if value.id != len(self.nodes):
            raise UnsupportedModelError("the model's output must be computed by its last operation")

    # --- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def node_name(node: onnx.NodeProto) -> str:
        return node.name or f"producing {node.output[0]}"

    def unsupported(self, node: onnx.NodeProto, why: str) -> UnsupportedModelError:
        return UnsupportedModelError(f"{node.op_type} at node '{self.node_name(node)}' is not supported: {why}")

    def misfit(self, node: onnx.NodeProto, why: str) -> OnnxFormatError:
        return OnnxFormatError(f"{node.op_type} at node '{self.node_name(node)}': {why}")

    def value(self, node: onnx.NodeProto, index: int = 0) -> _Value:
        """Input `index` of `node`, which must be computed from the model's input."""
        name = node.input[index]
        if name not in self.values:
            raise self.unsupported(node, f"its input '{name}' is a constant; the graph computes only from its input")
        return self.values[name]

    def constant(self, node: onnx.NodeProto, index: int, required: bool = True) -> np.ndarray | None:
        """Input `index` of `node`, which must be a constant (an initializer or a Constant node)."""
        name = node.input[index] if index < len(node.input) else ""
        if not name and not required:
            return None
        if name not in self.constants:
            raise self.unsupported(node, f"its input '{name}' must be a constant (an initializer)")
        array = self.constants[name]
        if not np.issubdtype(array.dtype, np.number):
            raise self.misfit(node, f"its input '{name}' is not numeric")
        return array

    def emit(self, node: onnx.NodeProto, op: Op, inputs: list[_Value], shape, tensors=(), params=()) -> None:
        references = []
        for tensor in tensors:
            self.tensors.append(np.ascontiguousarray(tensor, dtype=np.float32))
            references.append(len(self.tensors) - 1)
        self.nodes.append(Node(op, [value.id for value in inputs], references, [int(p) for p in params]))
        self.values[node.output[0]] = _Value(len(self.nodes), tuple(int(d) for d in shape))

    def alias(self, output: str, source: str) -> None:
        """`output` is the same value (or constant) as `source`."""
        if source in self.constants:
            self.constants[output] = self.constants[source]
        else:
            self.values[output] = self.values[source]
            if source in self.foldable and self.uses[source] == 1:
                self.foldable[output] = self.foldable[source]

    def fold_target(self, name: str) -> Node | None:
        """The LINEAR or CONV2D node computing `name`, if the one reader of `name` is the node folding into it."""
        index = self.foldable.get(name)
        return self.nodes[index] if index is not None and self.uses[name] == 1 else None

    def weights(self, target: Node) -> tuple[np.ndarray, np.ndarray | None]:
        bias = self.tensors[target.tensors[1]] if len(target.tensors) > 1 else None
        return self.tensors[target.tensors[0]], bias

    def set_weights(self, target: Node, weight: np.ndarray, bias: np.ndarray) -> None:
        self.tensors[target.tensors[0]] = weight.astype(np.float32)
        if len(target.tensors) == 1:
            self.tensors.append(bias.astype(np.float32))
            target.tensors.append(len(self.tensors) - 1)
        else:
            self.tensors[target.tensors[1]] = bias.astype(np.float32)

    def padding(self, node: onnx.NodeProto, attributes: dict) -> tuple[int, int]:
        """(pad_h, pad_w) of a 2-D Conv or pool; the graph pads both sides of an axis alike."""
        auto = attributes.get("auto_pad", "NOTSET")
        if auto == "VALID":
            return 0, 0
        if auto != "NOTSET":
            raise self.unsupported(node, f"auto_pad={auto} (export with explicit pads)")
        pads = list(attributes.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4 or min(pads) < 0 or pads[:2] != pads[2:]:
            raise self.unsupported(node, f"pads {pads} (only the same padding on both sides of each axis)")
        return pads[0], pads[1]

    def strides(self, node: onnx.NodeProto, attributes: dict) -> tuple[int, int]:
        strides = list(attributes.get("strides", [1, 1]))
        if len(strides) != 2 or min(strides) < 1:
            raise self.misfit(node, f"strides {strides} for a 2-D window")
        return strides[0], strides[1]

    def axis(self, node: onnx.NodeProto, axis: int, rank: int, highest: int) -> int:
        """`axis` (at most `highest`) of a value of `rank` dimensions, a negative one counted from the end."""
        if not -rank <= axis <= highest:
            raise self.misfit(node, f"axis {axis} of a value of rank {rank}")
        return axis + rank if axis < 0 else axis

    def require_image(self, node: onnx.NodeProto, value: _Value) -> None:
        if len(value.shape) != 3:
            raise self.unsupported(node, f"an input of shape {[1, *value.shape]} (only [1, C, H, W])")

    def require_plain(self, node: onnx.NodeProto, attributes: dict) -> None:
        """No dilation and no ceil_mode: the graph's windows are dense and floor-rounded."""
        if any(d != 1 for d in attributes.get("dilations", [1, 1])):
            raise self.unsupported(node, f"dilations {attributes['dilations']}")
        if attributes.get("ceil_mode", 0):
            raise self.unsupported(node, "ceil_mode=1")

    def require_unused_extra_outputs(self, node: onnx.NodeProto, what: str) -> None:
        if any(self.uses[name] for name in node.output[1:] if name):
            raise self.unsupported(node, f"its {what} output is used")

    # --- weighted layers -----------------------------------------------------------------------------

    def linear(self, node: onnx.NodeProto, x: _Value, weight: np.ndarray, bias: np.ndarray | None) -> None:
        if len(x.shape) != 1:
            raise self.unsupported(node, f"an input of shape {[1, *x.shape]} (flatten it to [1, N] first)")
        if weight.shape[1] != x.shape[0]:
            raise self.misfit(node, f"weight {list(weight.shape)} does not fit an input of {x.shape[0]} values")
        self.emit(node, Op.LINEAR, [x], (weight.shape[0],), [weight] if bias is None else [weight, bias])
        self.foldable[node.output[0]] = len(self.nodes) - 1

    def gemm(self, node: onnx.NodeProto) -> None:
        attributes = _attributes(node)
        if attributes.get("transA", 0):
            raise self.unsupported(node, "transA=1")
        x, b = self.value(node, 0), self.constant(node, 1)
        if b.ndim != 2:
            raise self.misfit(node, f"B has shape {list(b.shape)}, not a matrix")
        weight = (b if attributes.get("transB", 0) else b.T) * np.float32(attributes.get("alpha", 1.0))
        c = self.constant(node, 2, required=False)
        bias = None
        if c is not None:
            bias = _per_channel(c * np.float32(attributes.get("beta", 1.0)), (weight.shape[0],))
            if bias is None:
                raise self.misfit(node, f"C of shape {list(c.shape)} is not a bias for {weight.shape[0]} outputs")
        self.linear(node, x, weight, bias)

    def matmul(self, node: onnx.NodeProto) -> None:
        x, b = self.value(node, 0), self.constant(node, 1)
        if b.ndim != 2:
            raise self.unsupported(node, f"a MatMul by a tensor of shape {list(b.shape)} (only by a matrix)")
        self.linear(node, x, b.T, None)

    def conv(self, node: onnx.NodeProto) -> None:
        attributes = _attributes(node)
        x, weight = self.value(node, 0), self.constant(node, 1)
        self.require_image(node, x)
        if weight.ndim != 4:
            raise self.unsupported(node, f"a weight of shape {list(weight.shape)} (only 2-D convolutions)")
        if attributes.get("group", 1) != 1:
            raise self.unsupported(node, f"group={attributes['group']}")
        self.require_plain(node, attributes)
        (stride_h, stride_w), (pad_h, pad_w) = self.strides(node, attributes), self.padding(node, attributes)
        if weight.shape[1] != x.shape[0]:
            raise self.misfit(node, f"weight {list(weight.shape)} does not fit {x.shape[0]} input channels")
        kernel_h, kernel_w = weight.shape[2:]
        height = _window_count(x.shape[1], kernel_h, stride_h, pad_h)
        width = _window_count(x.shape[2], kernel_w, stride_w, pad_w)
        if not height or not width:
            raise self.misfit(node, f"a {kernel_h}x{kernel_w} kernel does not fit an input of {list(x.shape)}")
        bias = self.constant(node, 2, required=False)
        if bias is not None and bias.shape != (weight.shape[0],):
            raise self.misfit(node, f"bias {list(bias.shape)} for {weight.shape[0]} output channels")
        tensors = [weight] if bias is None else [weight, bias]
        self.emit(node, Op.CONV2D, [x], (weight.shape[0], height, width), tensors, (stride_h, stride_w, pad_h, pad_w))
        self.foldable[node.output[0]] = len(self.nodes) - 1

    def batch_norm(self, node: onnx.NodeProto) -> None:
        attributes = _attributes(node)
        if attributes.get("training_mode", 0):
            raise self.unsupported(node, "training_mode=1")
        self.require_unused_extra_outputs(node, "running statistics")
        target = self.fold_target(node.input[0])
        if target is None:
            raise self.unsupported(node, "it does not directly follow a Conv, Gemm or MatMul, so it cannot be folded")
        weight, bias = self.weights(target)
        statistics = [self.constant(node, index).reshape(-1) for index in range(1, 5)]
        if any(item.size != weight.shape[0] for item in statistics):
            raise self.misfit(node, f"its statistics do not have {weight.shape[0]} channels")
        self.set_weights(target, *fold_batch_norm(weight, bias, *statistics, attributes.get("epsilon", 1e-5)))
        self.alias(node.output[0], node.input[0])

    def add(self, node: onnx.NodeProto) -> None:
        constant_inputs = [name for name in node.input if name in self.constants]
        if not constant_inputs:
            a, b = self.value(node, 0), self.value(node, 1)
            if a.shape != b.shape:
                raise self.unsupported(node, f"an Add of shapes {[1, *a.shape]} and {[1, *b.shape]} (broadcasting)")
            self.emit(node, Op.ADD, [a, b], a.shape)
            return
        if len(constant_inputs) == 2:
            raise self.unsupported(node, "an Add of two constants")
        source = next(name for name in node.input if name not in self.constants)
        target = self.fold_target(source)
        shift = _per_channel(self.constants[constant_inputs[0]], self.values[source].shape)
        if target is None or shift is None:
            raise self.unsupported(
                node, "an Add of a constant that is not the bias of the Gemm, MatMul or Conv before it"
            )
        weight, bias = self.weights(target)
        base = np.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64)
        self.set_weights(target, weight, base + shift.astype(np.float64))
        self.alias(node.output[0], source)

    # --- one-to-one ops ----------------------------------------------------------------------------------

    def elementwise(self, node: onnx.NodeProto) -> None:
        x = self.value(node, 0)
        self.emit(node, ELEMENTWISE[node.op_type], [x], x.shape)

    def pool(self, node: onnx.NodeProto) -> None:
        attributes = _attributes(node)
        x = self.value(node, 0)
        self.require_image(node, x)
        self.require_plain(node, attributes)
        kernel = list(attributes.get("kernel_shape", []))
        if len(kernel) != 2:
            raise self.unsupported(node, f"kernel_shape {kernel} (only 2-D pooling)")
        (stride_h, stride_w), (pad_h, pad_w) = self.strides(node, attributes), self.padding(node, attributes)
        if node.op_type == "MaxPool":
            self.require_unused_extra_outputs(node, "Indices")
            op = Op.MAXPOOL2D
        else:
            if (pad_h or pad_w) and not attributes.get("count_include_pad", 0):
                raise self.unsupported(node, "count_include_pad=0 with padding (the graph divides by the whole window)")
            op = Op.AVGPOOL2D
        height = _window_count(x.shape[1], kernel[0], stride_h, pad_h)
        width = _window_count(x.shape[2], kernel[1], stride_w, pad_w)
        if not height or not width or 2 * pad_h > kernel[0] or 2 * pad_w > kernel[1]:
            raise self.misfit(node, f"a {kernel[0]}x{kernel[1]} window does not fit an input of {list(x.shape)}")
        params = (*kernel, stride_h, stride_w, pad_h, pad_w)
        self.emit(node, op, [x], (x.shape[0], height, width), params=params)

    def global_average_pool(self, node: onnx.NodeProto) -> None:
        x = self.value(node, 0)
        self.require_image(node, x)
        channels, height, width = x.shape
        self.emit(node, Op.AVGPOOL2D, [x], (channels, 1, 1), params=(height, width, 1, 1, 0, 0))

    def flatten(self, node: onnx.NodeProto) -> None:
        x = self.value(node, 0)
        full = (1, *x.shape)
        axis = self.axis(node, _attributes(node).get("axis", 1), len(full), highest=len(full))
        if math.prod(full[:axis]) != 1:
            raise self.unsupported(node, f"Flatten(axis={axis}) of {list(full)} (only to [1, N])")
        self.flatten_to_vector(node, x)

    def reshape(self, node: onnx.NodeProto) -> None:
        x, target = self.value(node, 0), self.constant(node, 1)
        full = (1, *x.shape)
        shape = _resolve_reshape(full, [int(d) for d in target.reshape(-1)], bool(_attributes(node).get("allowzero")))
        if shape is None or len(shape) != 2 or shape[0] != 1:
            raise self.unsupported(node, f"a Reshape of {list(full)} to {target.tolist()} (only to [1, N])")
        self.flatten_to_vector(node, x)

    def flatten_to_vector(self, node: onnx.NodeProto, x: _Value) -> None:
        if len(x.shape) == 1:
            self.alias(node.output[0], node.input[0])  # already [1, N]
        else:
            self.emit(node, Op.FLATTEN, [x], (math.prod(x.shape),))

    def softmax(self, node: onnx.NodeProto) -> None:
        """The graph's softmax runs over all elements: fine when the ONNX one covers them all."""
        x = self.value(node, 0)
        full = (1, *x.shape)
        default = -1 if self.opset >= 13 else 1
        axis = self.axis(node, _attributes(node).get("axis", default), len(full), highest=len(full) - 1)
        covered = full[axis] if self.opset >= 13 else math.prod(full[axis:])  # opset < 13 coerces to 2-D
        if covered != math.prod(full):
            raise self.unsupported(node, f"Softmax(axis={axis}) of {list(full)} (only over all elements)")
        self.emit(node, Op.SOFTMAX, [x], x.shape)

    # --- ops that vanish -------------------------------------------------------------------------------

    def pass_through(self, node: onnx.NodeProto) -> None:
        """Identity, and Dropout at inference time."""
        self.require_unused_extra_outputs(node, "mask")
        self.alias(node.output[0], node.input[0])

    def cast(self, node: onnx.NodeProto) -> None:
        """Every value of the graph is float32 (a u8 input is read as 0-255), so a cast to float is none."""
        to = _attributes(node).get("to")
        if to != onnx.TensorProto.FLOAT:
            raise self.unsupported(node, f"a Cast to {_type_name(to)} (only to FLOAT)")
        source = node.input[0]
        if source in self.constants:
            self.constants[node.output[0]] = self.constants[source].astype(np.float32)
        else:
            self.alias(node.output[0], source)

    def shape(self, node: onnx.NodeProto) -> None:
        """The shape of a value is known here: [1, *its shape], sliced by start and end as ONNX does."""
        attributes = _attributes(node)
        full = np.array((1, *self.value(node, 0).shape), dtype=np.int64)
        self.constants[node.output[0]] = full[attributes.get("start", 0) : attributes.get("end")]

    def is_shape_arithmetic(self, node: onnx.NodeProto) -> bool:
        if node.domain not in DEFAULT_DOMAINS or node.op_type not in SHAPE_ARITHMETIC:
            return False
        names = [name for name in node.input if name]
        return all(name in self.constants and self.constants[name].size <= MAX_SHAPE_ELEMENTS for name in names)

    def compute_constants(self, node: onnx.NodeProto) -> None:
        """Run a node of constants with ONNX's reference implementation; its outputs are constants."""
        inputs = {name: self.constants[name] for name in node.input if name}
        try:
            outputs = ReferenceEvaluator(node, opsets={"": self.opset}).run(None, inputs)
        except Exception as error:  # the reference raises whatever numpy raises for bad operands
            raise self.misfit(node, f"cannot compute it from its constants: {error}") from None
        for name, output in zip(node.output, outputs, strict=False):
            self.constants[name] = np.asarray(output)

    def constant_node(self, node: onnx.NodeProto) -> None:
        if len(node.attribute) != 1:
            raise self.misfit(node, f"{len(node.attribute)} attributes where a Constant has one")
        attribute = node.attribute[0]
        if attribute.name == "value":
            self.constants[node.output[0]] = _array(attribute.t)
        elif attribute.name in ("value_float", "value_floats", "value_int", "value_ints"):
            self.constants[node.output[0]] = np.array(helper.get_attribute_value(attribute))
        else:
            raise self.unsupported(node, f"a Constant given as {attribute.name}")
