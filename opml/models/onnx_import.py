"""ONNX -> our graph format, for the ops the graph supports (docs/models.md, "ONNX models").

ONNX is what every framework exports to (and what zkML systems take), so a model trained
anywhere can run in the VM. `graph_from_onnx` walks the ONNX graph in its (topological)
node order and maps each node to at most one `Op`:

- Gemm, and MatMul by a constant, become LINEAR (over the last axis); Conv becomes CONV2D.
  An Add of a constant bias or a BatchNormalization right after one of them is folded into
  its weights (when nothing else reads the value in between).
- Relu, Sigmoid, Tanh, Erf, Sqrt, Clip, MaxPool, AveragePool, GlobalAveragePool, Softmax,
  MatMul of two values, Transpose, Gather from a constant table (an embedding),
  LayerNormalization, ReduceSum and ReduceL2 map one to one; Add, Sub, Mul and Div broadcast,
  between two values or a value and a constant; Flatten, Reshape, Unsqueeze and Squeeze become
  FLATTEN or RESHAPE (views), or nothing when the shape stays.
- Identity, Dropout and Cast to float vanish; initializers and Constant nodes are weights.
- Shape arithmetic vanishes too: Shape of a value is known here (its batch is 1), and small
  integer ops on constants (Gather, Unsqueeze, Concat, ...: what an exporter emits to compute
  the target of a Reshape) are computed here by ONNX's own reference implementation. So the
  guest sees only tensors of fixed shapes.

An ONNX value of shape [1, *s] (batch of one) is our value of shape s. Several inputs of one
type and one shape (a transformer's token ids and attention mask) are stacked into the graph's
one input, in the model's order: each is a SELECT of it. Anything the graph cannot express
fails with an UnsupportedModelError naming the op type and the node; a file that is not a
valid ONNX model fails with an OnnxFormatError (bad input) giving the reason.
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
from .formats import MAX_RANK, Graph, InputType, Node, Op, param_of_float

INPUT_TYPES = {
    onnx.TensorProto.FLOAT: InputType.F32,
    onnx.TensorProto.UINT8: InputType.U8,
    onnx.TensorProto.INT32: InputType.I32,
    onnx.TensorProto.INT64: InputType.I32,  # token ids: the request holds them as int32
}
ELEMENTWISE = {"Relu": Op.RELU, "Sigmoid": Op.SIGMOID, "Tanh": Op.TANH, "Erf": Op.ERF, "Sqrt": Op.SQRT}
BINARY = {"Add": Op.ADD, "Sub": Op.SUB, "Mul": Op.MUL, "Div": Op.DIV}
COMMUTATIVE = {Op.ADD, Op.MUL}
REDUCTIONS = {"ReduceSum": Op.REDUCE_SUM, "ReduceL2": Op.REDUCE_L2}
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


def _per_channel(constant: np.ndarray, shape: tuple[int, ...], axis: int = 0) -> np.ndarray | None:
    """`constant` as one number per index of our `axis` of the ONNX value [1, *shape], if it broadcasts
    to that value and is the same across everything else (a conv bias: axis 0; a linear bias: the last)."""
    try:
        full = np.broadcast_to(constant, (1, *shape))
    except ValueError:
        return None
    channels = np.moveaxis(full[0], axis, 0).reshape(shape[axis], -1)
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


NO_SUCH_OP = "the graph format has no such op"


@dataclass(frozen=True)
class _Problem:
    """A node the graph cannot run: an op it does not have (`missing`), or one it has used in a way it cannot
    follow (`why`). `from_data`: the node computes on the model's input, not only on constants and shapes."""

    op: str
    node: str
    why: str
    from_data: bool
    missing: bool
    message: str | None = None  # the whole message, when the reason came without its node

    def sentence(self) -> str:
        return self.message or f"{self.op} at node '{self.node}' is not supported: {self.why}"


def _refusal(problems: list[_Problem]) -> UnsupportedModelError:
    """One error naming every node the graph cannot run: first the ops it does not have (those computing on
    the input's data before those only building constants, such as the zero state of an LSTM), grouped by op,
    then the supported ops used in ways it cannot follow."""
    details = {"unsupported": [{"op": p.op, "node": p.node, "reason": p.why} for p in problems]}
    if len(problems) == 1:
        return UnsupportedModelError(problems[0].sentence(), details=details)
    missing: dict[str, list[_Problem]] = {}
    for problem in sorted((p for p in problems if p.missing), key=lambda p: not p.from_data):  # stable: node order
        missing.setdefault(problem.op, []).append(problem)
    sentences = []
    if missing:
        groups = []
        for op, nodes in missing.items():
            names = ", ".join(f"'{p.node}'" for p in nodes)
            groups.append(f"{op} at node{'s' if len(nodes) > 1 else ''} {names}")
        sentences.append(f"The graph format has no such op: {'; '.join(groups)}.")
    sentences += [p.sentence() + "." for p in problems if not p.missing]
    return UnsupportedModelError(
        f"{len(problems)} nodes of this model are not supported. {' '.join(sentences)}", details=details
    )


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
            "Unsqueeze": self.unsqueeze, "Squeeze": self.squeeze, "Transpose": self.transpose,
            "Softmax": self.softmax, "Identity": self.pass_through, "Dropout": self.pass_through,
            "Cast": self.cast, "Constant": self.constant_node, "Shape": self.shape, "Gather": self.gather,
            "LayerNormalization": self.layer_norm, "Clip": self.clip,
            **dict.fromkeys(ELEMENTWISE, self.elementwise), **dict.fromkeys(("Sub", "Mul", "Div"), self.binary),
            **dict.fromkeys(REDUCTIONS, self.reduce),
        }  # fmt: skip

    def run(self) -> Graph:
        """Every node in order. A node the graph cannot run is noted and the walk goes on (what it would
        have computed is unknown, and nodes reading it are skipped), so that one refusal lists every
        operator of the model that cannot be served, not the first node that fails."""
        input_type, input_shape = self.graph_input()
        problems: list[_Problem] = []
        unknown: dict[str, bool] = {}  # outputs of refused or skipped nodes -> derived from the input's data
        for node in self.onnx_graph.node:
            unknown_inputs = [name for name in node.input if name in unknown]
            handler = self.handlers.get(node.op_type) if node.domain in DEFAULT_DOMAINS else None
            # (a Shape of the data is a shape: what is built from it only sizes things, like an LSTM's zero state)
            from_data = node.op_type != "Shape" and any(unknown.get(n, n in self.values) for n in node.input if n)
            if not unknown_inputs and self.is_shape_arithmetic(node):
                self.compute_constants(node)
                continue
            if handler is None and not (unknown_inputs and node.op_type in SHAPE_ARITHMETIC):
                op = node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"
                problems.append(_Problem(op, self.node_name(node), NO_SUCH_OP, from_data, missing=True))
            elif not unknown_inputs:
                try:
                    handler(node)
                    continue
                except UnsupportedModelError as error:
                    why = getattr(error, "why", None)
                    problems.append(_Problem(node.op_type, self.node_name(node), why or str(error), from_data,
                                             missing=False, message=None if why else str(error)))  # fmt: skip
            unknown.update(dict.fromkeys((name for name in node.output if name), from_data))
        if problems:
            raise _refusal(problems)
        self.check_output()
        return Graph(input_type, input_shape, self.tensors, self.nodes)

    # --- the graph's input and output ------------------------------------------------------------

    def graph_input(self) -> tuple[InputType, tuple[int, ...]]:
        """The graph's input: the model's one input, or its inputs stacked (each then a SELECT of it)."""
        inputs = [item for item in self.onnx_graph.input if item.name not in self.constants]
        if not inputs:
            raise UnsupportedModelError("the model has no input")
        described = [self.input_description(item) for item in inputs]
        if len(set(described)) != 1:
            shown = ", ".join(
                f"{item.name} ({kind.name.lower()} {list(shape)})" for item, (kind, shape) in zip(inputs, described)
            )
            raise UnsupportedModelError(
                f"the model has {len(inputs)} inputs of different types or shapes ({shown}); "
                "several inputs must have one type and one shape"
            )
        input_type, shape = described[0]
        if len(inputs) == 1:
            self.values[inputs[0].name] = _Value(0, shape)
            return input_type, shape
        if len(shape) + 1 > MAX_RANK:
            raise UnsupportedModelError(
                f"the model has {len(inputs)} inputs of rank {len(shape) + 1}; stacked they are too many axes"
            )
        for index, item in enumerate(inputs):
            self.nodes.append(Node(Op.SELECT, [0], [], [index]))
            self.values[item.name] = _Value(len(self.nodes), shape)
        return input_type, (len(inputs), *shape)

    @staticmethod
    def input_description(item: onnx.ValueInfoProto) -> tuple[InputType, tuple[int, ...]]:
        """(type, shape without the batch) of one of the model's inputs."""
        tensor_type = item.type.tensor_type
        if tensor_type.elem_type not in INPUT_TYPES:
            name = _type_name(tensor_type.elem_type)
            raise UnsupportedModelError(
                f"the model's input {item.name} is of type {name}; only FLOAT, UINT8, INT32 and INT64 are supported"
            )
        dims = list(tensor_type.shape.dim)
        if not 2 <= len(dims) <= MAX_RANK:
            raise UnsupportedModelError(f"the model's input has rank {len(dims)}; give [1, N] or [1, C, H, W]")
        if dims[0].HasField("dim_value") and dims[0].dim_value != 1:
            raise UnsupportedModelError(f"the model's input has a batch of {dims[0].dim_value}; export it for 1")
        shape = []
        for dim in dims[1:]:
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                raise UnsupportedModelError(f"the model's input dimension '{dim.dim_param}' is not a fixed size")
            shape.append(dim.dim_value)
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
        error = UnsupportedModelError(f"{node.op_type} at node '{self.node_name(node)}' is not supported: {why}")
        error.why = why
        return error

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
        if not shape:
            raise self.unsupported(node, "an output of shape [1] (its batch axis alone)")
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
        """LINEAR over the last axis of x."""
        if weight.shape[1] != x.shape[-1]:
            raise self.misfit(node, f"weight {list(weight.shape)} does not fit an input of {x.shape[-1]} values")
        shape = (*x.shape[:-1], weight.shape[0])
        self.emit(node, Op.LINEAR, [x], shape, [weight] if bias is None else [weight, bias])
        self.foldable[node.output[0]] = len(self.nodes) - 1

    def gemm(self, node: onnx.NodeProto) -> None:
        attributes = _attributes(node)
        if attributes.get("transA", 0):
            raise self.unsupported(node, "transA=1")
        x, b = self.value(node, 0), self.constant(node, 1)
        if len(x.shape) != 1:
            raise self.unsupported(node, f"an input of shape {[1, *x.shape]} (flatten it to [1, N] first)")
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
        """By a constant matrix: LINEAR. Of two values: MATMUL, their leading axes the same."""
        x = self.value(node, 0)
        if node.input[1] not in self.constants:
            b = self.value(node, 1)
            if len(x.shape) < 2 or len(b.shape) != len(x.shape) or x.shape[:-2] != b.shape[:-2]:
                raise self.unsupported(node, f"a MatMul of {[1, *x.shape]} and {[1, *b.shape]} (broadcasting)")
            if x.shape[-1] != b.shape[-2]:
                raise self.misfit(node, f"a MatMul of {[1, *x.shape]} and {[1, *b.shape]}")
            self.emit(node, Op.MATMUL, [x, b], (*x.shape[:-1], b.shape[-1]))
            return
        b = self.constant(node, 1)
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
        """The bias of the Gemm, MatMul or Conv before it goes into its weights; any other Add is ADD."""
        constant_inputs = [name for name in node.input if name in self.constants]
        if len(constant_inputs) != 1:
            self.binary(node)
            return
        source = next(name for name in node.input if name not in self.constants)
        target = self.fold_target(source)
        shape = self.values[source].shape
        axis = len(shape) - 1 if target is not None and target.op == Op.LINEAR else 0
        shift = _per_channel(self.constants[constant_inputs[0]], shape, axis)
        if target is None or shift is None:
            self.binary(node)
            return
        weight, bias = self.weights(target)
        base = np.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64)
        self.set_weights(target, weight, base + shift.astype(np.float64))
        self.alias(node.output[0], source)

    def binary(self, node: onnx.NodeProto) -> None:
        """Add, Sub, Mul or Div, broadcasting as ONNX does, of two values or of a value and a constant."""
        op = BINARY[node.op_type]
        names = list(node.input)
        if all(name in self.constants for name in names):
            raise self.unsupported(node, f"a {node.op_type} of two constants larger than shape arithmetic")
        if not any(name in self.constants for name in names):
            a, b = self.value(node, 0), self.value(node, 1)
            self.emit(node, op, [a, b], self.broadcast(node, (1, *a.shape), (1, *b.shape)))
            return
        tensor_first = names[0] in self.constants
        x = self.value(node, 1 if tensor_first else 0)
        constant = self.constant(node, 0 if tensor_first else 1).astype(np.float32)
        shape = self.broadcast(node, (1, *x.shape), constant.shape)
        while constant.ndim > len(shape):  # leading axes of size one, over the batch
            constant = constant[0]
        constant = constant.reshape(constant.shape or (1,))
        params = [1] if tensor_first and op not in COMMUTATIVE else []
        self.emit(node, op, [x], shape, [constant], params)

    def broadcast(self, node: onnx.NodeProto, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
        """Our shape of the ONNX broadcast of `a` and `b`, if the batch stays one and apart."""
        try:
            full = np.broadcast_shapes(a, b)
        except ValueError:
            raise self.misfit(node, f"shapes {list(a)} and {list(b)} do not broadcast") from None
        ours = [shape[1:] if len(shape) == len(full) else shape for shape in (a, b)]
        if full[0] != 1 or np.broadcast_shapes(*[s for s in ours if s]) != full[1:]:
            raise self.unsupported(node, f"a broadcast of {list(a)} and {list(b)} across the batch")
        return full[1:]

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
        if shape is None or shape[0] != 1:
            raise self.unsupported(node, f"a Reshape of {list(full)} to {target.tolist()} (the batch must stay first)")
        self.view(node, x, shape)

    def unsqueeze(self, node: onnx.NodeProto) -> None:
        """Of a value: a view with axes of size one inserted (the axes from an input since opset 13); the
        batch is one, so whichever axis of size one comes first stands for it."""
        x = self.value(node, 0)
        axes = self.constant(node, 1).reshape(-1) if self.opset >= 13 else _attributes(node).get("axes", [])
        rank = len(x.shape) + 1 + len(axes)
        positions = sorted(self.axis(node, int(axis), rank, highest=rank - 1) for axis in axes)
        shape = list((1, *x.shape))
        for position in positions:
            shape.insert(position, 1)
        self.view(node, x, tuple(shape))

    def squeeze(self, node: onnx.NodeProto) -> None:
        """Of a value: a view without the given axes of size one (never the batch's)."""
        x = self.value(node, 0)
        full = (1, *x.shape)
        axes = self.constant(node, 1, required=False) if self.opset >= 13 else _attributes(node).get("axes")
        if axes is None:
            raise self.unsupported(node, "a Squeeze without axes (it would drop the batch)")
        positions = {self.axis(node, int(axis), len(full), highest=len(full) - 1) for axis in np.reshape(axes, -1)}
        if 0 in positions or any(full[position] != 1 for position in positions):
            raise self.unsupported(node, f"a Squeeze of axes {sorted(positions)} of {list(full)}")
        self.view(node, x, tuple(d for i, d in enumerate(full) if i not in positions))

    def view(self, node: onnx.NodeProto, x: _Value, full: tuple[int, ...]) -> None:
        """x as the ONNX shape `full` ([1, *ours]): nothing if it stays, FLATTEN to a vector, else RESHAPE."""
        shape = full[1:]
        if shape == x.shape:
            self.alias(node.output[0], node.input[0])
        elif len(shape) == 1:
            self.emit(node, Op.FLATTEN, [x], shape)
        elif len(shape) > MAX_RANK:
            raise self.unsupported(node, f"a shape of rank {len(full)}")
        else:
            self.emit(node, Op.RESHAPE, [x], shape, params=shape)

    def flatten_to_vector(self, node: onnx.NodeProto, x: _Value) -> None:
        self.view(node, x, (1, math.prod(x.shape)))

    def softmax(self, node: onnx.NodeProto) -> None:
        """The graph's softmax runs over all elements, or over each row of the last axis."""
        x = self.value(node, 0)
        full = (1, *x.shape)
        default = -1 if self.opset >= 13 else 1
        axis = self.axis(node, _attributes(node).get("axis", default), len(full), highest=len(full) - 1)
        covered = full[axis] if self.opset >= 13 else math.prod(full[axis:])  # opset < 13 coerces to 2-D
        if covered == math.prod(full):
            self.emit(node, Op.SOFTMAX, [x], x.shape)
        elif covered == full[-1] and axis == len(full) - 1:
            self.emit(node, Op.SOFTMAX, [x], x.shape, params=[len(x.shape) - 1])
        else:
            raise self.unsupported(node, f"Softmax(axis={axis}) of {list(full)} (only over all or the last axis)")

    # --- transformer ops ---------------------------------------------------------------------------

    def transpose(self, node: onnx.NodeProto) -> None:
        x = self.value(node, 0)
        rank = len(x.shape) + 1
        perm = [int(axis) for axis in _attributes(node).get("perm", range(rank - 1, -1, -1))]
        if sorted(perm) != list(range(rank)):
            raise self.misfit(node, f"perm {perm} for a value of rank {rank}")
        if perm[0] != 0:
            raise self.unsupported(node, f"a Transpose {perm} that moves the batch axis")
        ours = [axis - 1 for axis in perm[1:]]
        if ours == sorted(ours):
            self.alias(node.output[0], node.input[0])
        else:
            self.emit(node, Op.TRANSPOSE, [x], tuple(x.shape[axis] for axis in ours), params=ours)

    def gather(self, node: onnx.NodeProto) -> None:
        """Rows of a constant table picked by a value of indices: an embedding lookup."""
        table, indices = self.constant(node, 0), self.value(node, 1)
        if _attributes(node).get("axis", 0) != 0:
            raise self.unsupported(node, "a Gather along another axis than the table's first")
        if table.ndim < 1 or len(indices.shape) + table.ndim > MAX_RANK:
            raise self.unsupported(node, f"a Gather from a table of {list(table.shape)} by {[1, *indices.shape]}")
        self.emit(node, Op.GATHER, [indices], (*indices.shape, *table.shape[1:]), [table])

    def layer_norm(self, node: onnx.NodeProto) -> None:
        attributes = _attributes(node)
        x = self.value(node, 0)
        self.require_unused_extra_outputs(node, "mean and deviation")
        if self.axis(node, attributes.get("axis", -1), len(x.shape) + 1, highest=len(x.shape)) != len(x.shape):
            raise self.unsupported(node, f"axis={attributes['axis']} (only over the last axis)")
        scale = self.constant(node, 1).astype(np.float32)
        bias = self.constant(node, 2, required=False)
        bias = np.zeros_like(scale) if bias is None else bias.astype(np.float32)
        for tensor in (scale, bias):
            if tensor.size != x.shape[-1]:
                raise self.misfit(node, f"a scale or bias of {list(tensor.shape)} for rows of {x.shape[-1]}")
        epsilon = param_of_float(attributes.get("epsilon", 1e-5))
        self.emit(node, Op.LAYERNORM, [x], x.shape, [scale.reshape(-1), bias.reshape(-1)], [epsilon])

    def reduce(self, node: onnx.NodeProto) -> None:
        """ReduceSum or ReduceL2 over one axis (the axes from an input: ReduceSum since opset 13, ReduceL2 since 18)."""
        attributes = _attributes(node)
        x = self.value(node, 0)
        full = (1, *x.shape)
        axes_from_input = self.opset >= (13 if node.op_type == "ReduceSum" else 18)
        axes = self.constant(node, 1, required=False) if axes_from_input else attributes.get("axes")
        axes = [] if axes is None else [int(axis) for axis in np.reshape(axes, -1)]
        if len(axes) != 1:
            raise self.unsupported(node, f"a reduction over axes {axes} (only over one axis)")
        axis = self.axis(node, axes[0], len(full), highest=len(full) - 1)
        keep = int(attributes.get("keepdims", 1))
        if axis == 0 or (not keep and len(x.shape) == 1):
            raise self.unsupported(node, f"a reduction over axis {axis} of {list(full)} (it would reduce the batch)")
        shape = (*x.shape[: axis - 1], *([1] if keep else []), *x.shape[axis:])
        self.emit(node, REDUCTIONS[node.op_type], [x], shape, params=[axis - 1, keep])

    def clip(self, node: onnx.NodeProto) -> None:
        """Bounds from constant inputs (attributes before opset 11); a missing one is infinite."""
        x = self.value(node, 0)
        if self.opset >= 11:
            bounds = [self.constant(node, index, required=False) for index in (1, 2)]
        else:
            attributes = _attributes(node)
            bounds = [attributes.get("min"), attributes.get("max")]
        low, high = (
            float(np.reshape(b, -1)[0]) if b is not None else default for b, default in zip(bounds, (-np.inf, np.inf))
        )
        self.emit(node, Op.CLIP, [x], x.shape, params=[param_of_float(low), param_of_float(high)])

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
