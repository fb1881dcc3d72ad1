"""Model files: the seed's format and our graph format, both big-endian (docs/models.md).

A model file of either format parses to the same `Graph`, which both the guest
inference program and the numpy reference execute. The seed format holds exactly one
network (linear -> relu -> linear -> softmax over raw u8 pixels); the graph format
("OPMG", versioned) holds any graph of the ops in `Op`, so it is a superset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from ..errors import BadInput

SEED_MAGIC = 0x67676D6C  # "ggml"
GRAPH_MAGIC = 0x4F504D47  # "OPMG"
GRAPH_VERSION = 1
MAX_RANK = 4
MAX_NODES = 256
MAX_TENSORS = 512
MAX_NODE_INPUTS = 2
MAX_NODE_TENSORS = 2
MAX_NODE_PARAMS = 8
MAX_ELEMENTS = 1 << 28


class Op(IntEnum):
    """The graph's operations; docs/models.md gives each one's float32 semantics."""

    LINEAR = 1  # tensors: weight [out, in], optional bias [out]; over the last axis (or all of a flat input)
    CONV2D = 2  # tensors: weight [oc, c, kh, kw], optional bias; params: stride_h, stride_w, pad_h, pad_w
    RELU = 3
    MAXPOOL2D = 4  # params: kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w
    AVGPOOL2D = 5  # same params; padding counts in the divisor
    FLATTEN = 6
    ADD = 7  # a + b, broadcasting: b is the second input or the tensor; param 1 puts the tensor first
    SOFTMAX = 8  # over all elements; params [rank - 1]: over each row of the last axis
    SIGMOID = 9
    TANH = 10
    SUB = 11  # as ADD
    MUL = 12  # as ADD
    DIV = 13  # as ADD
    MATMUL = 14  # two inputs [..., M, K] @ [..., K, N], the same leading dims
    TRANSPOSE = 15  # params: a permutation of the axes
    RESHAPE = 16  # params: the new dims (the same values)
    SELECT = 17  # params: index; the sub-tensor at that index of the first axis
    GATHER = 18  # tensors: table [rows, ...]; the input holds row indices
    LAYERNORM = 19  # tensors: gamma [n], beta [n]; params: epsilon (float32 bits); over the last axis
    REDUCE_SUM = 20  # params: axis, keepdims
    REDUCE_L2 = 21  # params: axis, keepdims
    CLIP = 22  # params: min, max (float32 bits)
    SQRT = 23
    ERF = 24


class InputType(IntEnum):
    U8 = 0  # one byte per element, used as its value 0-255
    F32 = 1  # big-endian float32
    I32 = 2  # big-endian int32, used as its value (as a float32: exact up to 2^24), e.g. token ids


# Exit codes of the guest inference program (docs/models.md).
EXIT_BAD_MAGIC = 10
EXIT_BAD_VERSION = 11
EXIT_TRUNCATED_MODEL = 12
EXIT_BAD_SHAPE = 13
EXIT_MODEL_TOO_LARGE = 14
EXIT_UNSUPPORTED_OP = 15
EXIT_TRAILING_BYTES = 16
EXIT_BAD_INPUT_LENGTH = 20
EXIT_OUT_OF_MEMORY = 21
EXIT_BAD_INDEX = 22


class ModelFormatError(BadInput):
    """A model file that cannot be parsed; `exit_code` is the guest's code for the same file."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_SHAPE):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Node:
    op: Op
    inputs: list[int]  # value ids: 0 is the graph input, k is the output of node k-1
    tensors: list[int] = field(default_factory=list)
    params: list[int] = field(default_factory=list)


@dataclass
class Graph:
    input_type: InputType
    input_shape: tuple[int, ...]
    tensors: list[np.ndarray] = field(default_factory=list)  # float32, row-major
    nodes: list[Node] = field(default_factory=list)

    @property
    def input_bytes(self) -> int:
        count = int(np.prod(self.input_shape))
        return count if self.input_type == InputType.U8 else 4 * count

    def input_dtype(self) -> str:
        """The numpy dtype of the input region's elements."""
        return {InputType.U8: "u1", InputType.F32: ">f4", InputType.I32: ">i4"}[self.input_type]

    def to_bytes(self) -> bytes:
        """The graph-format file."""
        out = [struct.pack(">III", GRAPH_MAGIC, GRAPH_VERSION, self.input_type)]
        out.append(_shape_bytes(self.input_shape))
        out.append(struct.pack(">I", len(self.tensors)))
        for tensor in self.tensors:
            out.append(_shape_bytes(tensor.shape))
            out.append(np.ascontiguousarray(tensor, dtype=">f4").tobytes())
        out.append(struct.pack(">I", len(self.nodes)))
        for node in self.nodes:
            out.append(struct.pack(">II", node.op, len(node.inputs)))
            out.append(struct.pack(f">{len(node.inputs)}I", *node.inputs))
            out.append(struct.pack(f">I{len(node.tensors)}I", len(node.tensors), *node.tensors))
            out.append(struct.pack(f">I{len(node.params)}i", len(node.params), *node.params))
        return b"".join(out)


def float_param(bits: int) -> np.float32:
    """A param that holds a float32 (an epsilon, a bound) as its bits."""
    return np.array([bits], dtype=np.int32).view(np.float32)[0]


def param_of_float(value: float) -> int:
    """The param holding float32(value), as float_param reads it."""
    return int(np.array([value], dtype=np.float32).view(np.int32)[0])


def _shape_bytes(shape) -> bytes:
    return struct.pack(f">I{len(shape)}I", len(shape), *shape)


# --- the seed format ------------------------------------------------------------------

SEED_TENSORS = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")


def seed_model_bytes(state_dict) -> bytes:
    """The seed converter's output for a state_dict of the seed's MLP (any hidden width).

    After the magic, each tensor is written as n_dims, its dims innermost first, then
    its values as big-endian float32 in row-major order. (The seed squeezed each
    tensor, which for hidden width 1 dropped dims its own loader needs; writing the
    natural ranks is the same bytes for every other width.)
    """
    names = list(state_dict)
    if sorted(names) != sorted(SEED_TENSORS):
        raise ModelFormatError(f"not the seed MLP: expected tensors {', '.join(SEED_TENSORS)}, got {', '.join(names)}")
    out = [struct.pack(">i", SEED_MAGIC)]
    for name in SEED_TENSORS:
        tensor = state_dict[name]
        data = np.asarray(tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else tensor, dtype=np.float32)
        out.append(struct.pack(">i", data.ndim))
        out.append(struct.pack(f">{data.ndim}i", *reversed(data.shape)))
        out.append(data.astype(">f4").tobytes())
    return b"".join(out)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.position = 0

    def u32(self) -> int:
        if len(self.data) - self.position < 4:
            raise ModelFormatError("model file is truncated", EXIT_TRUNCATED_MODEL)
        value = struct.unpack_from(">I", self.data, self.position)[0]
        self.position += 4
        return value

    def floats(self, count: int) -> np.ndarray:
        if count > MAX_ELEMENTS:
            raise ModelFormatError("model is too large", EXIT_MODEL_TOO_LARGE)
        if len(self.data) - self.position < 4 * count:
            raise ModelFormatError("model file is truncated", EXIT_TRUNCATED_MODEL)
        values = np.frombuffer(self.data, dtype=">f4", count=count, offset=self.position).astype(np.float32)
        self.position += 4 * count
        return values

    def shape(self, max_rank: int = MAX_RANK) -> tuple[int, ...]:
        rank = self.u32()
        if rank == 0 or rank > max_rank:
            raise ModelFormatError(f"a shape of rank {rank}")
        shape = tuple(self.u32() for _ in range(rank))
        if 0 in shape:
            raise ModelFormatError("a shape with a zero dimension")
        if int(np.prod(shape, dtype=object)) > MAX_ELEMENTS:
            raise ModelFormatError("model is too large", EXIT_MODEL_TOO_LARGE)
        return shape


def _parse_seed(reader: _Reader) -> Graph:
    tensors = []
    for rank in (2, 1, 2, 1):
        if reader.u32() != rank:
            raise ModelFormatError("model shapes do not fit together (seed tensors of the wrong rank)")
        dims = tuple(reversed([reader.u32() for _ in range(rank)]))
        if 0 in dims:
            raise ModelFormatError("a seed tensor with a zero dimension")
        if int(np.prod(dims, dtype=object)) > MAX_ELEMENTS:
            raise ModelFormatError("model is too large", EXIT_MODEL_TOO_LARGE)
        tensors.append(reader.floats(int(np.prod(dims))).reshape(dims))
    w1, b1, w2, b2 = tensors
    if b1.shape[0] != w1.shape[0] or w2.shape[1] != w1.shape[0] or b2.shape[0] != w2.shape[0]:
        raise ModelFormatError("model shapes do not fit together")
    nodes = [
        Node(Op.LINEAR, [0], [0, 1]),
        Node(Op.RELU, [1]),
        Node(Op.LINEAR, [2], [2, 3]),
        Node(Op.SOFTMAX, [3]),
    ]
    return Graph(InputType.U8, (w1.shape[1],), tensors, nodes)


def _parse_graph(reader: _Reader) -> Graph:
    """Checks in the order guest/inference/graph_model.c does, so both report the same error."""
    if reader.u32() != GRAPH_VERSION:
        raise ModelFormatError("unsupported graph format version", EXIT_BAD_VERSION)
    input_type = reader.u32()
    if input_type not in InputType._value2member_map_:
        raise ModelFormatError(f"unknown input type {input_type}")
    input_shape = reader.shape()
    count = reader.u32()
    if count > MAX_TENSORS:
        raise ModelFormatError("model is too large", EXIT_MODEL_TOO_LARGE)
    tensors = []
    for _ in range(count):
        shape = reader.shape()
        tensors.append(reader.floats(int(np.prod(shape))).reshape(shape))
    node_count = reader.u32()
    if node_count == 0:
        raise ModelFormatError("a graph without nodes")
    if node_count > MAX_NODES:
        raise ModelFormatError(f"a graph of {node_count} nodes", EXIT_MODEL_TOO_LARGE)
    nodes = []
    for index in range(node_count):
        op = reader.u32()
        inputs = []
        for _ in range(_bounded(reader.u32(), 1, MAX_NODE_INPUTS, "inputs")):
            inputs.append(reader.u32())
            if inputs[-1] > index:
                raise ModelFormatError(f"node {index} uses a later value")
        refs = []
        for _ in range(_bounded(reader.u32(), 0, MAX_NODE_TENSORS, "tensors")):
            refs.append(reader.u32())
            if refs[-1] >= len(tensors):
                raise ModelFormatError(f"node {index} uses a missing tensor")
        count = _bounded(reader.u32(), 0, MAX_NODE_PARAMS, "params")
        params = [struct.unpack(">i", struct.pack(">I", reader.u32()))[0] for _ in range(count)]
        # An unknown op is an error only when the graph runs, as in the guest.
        nodes.append(Node(Op(op) if op in Op._value2member_map_ else op, inputs, refs, params))
    return Graph(InputType(input_type), input_shape, tensors, nodes)


def _bounded(value: int, low: int, high: int, what: str) -> int:
    if not low <= value <= high:
        raise ModelFormatError(f"a node with {value} {what}")
    return value


def parse_model(data: bytes) -> Graph:
    """Parse a model file of either format."""
    reader = _Reader(data)
    magic = reader.u32()
    if magic == SEED_MAGIC:
        graph = _parse_seed(reader)
    elif magic == GRAPH_MAGIC:
        graph = _parse_graph(reader)
    else:
        raise ModelFormatError(f"unknown model format (magic {magic:#010x})", EXIT_BAD_MAGIC)
    if reader.position != len(data):
        raise ModelFormatError("model file has bytes after its end", EXIT_TRAILING_BYTES)
    return graph


# --- the output region ------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    predicted: int
    scores: np.ndarray  # float32

    def to_bytes(self) -> bytes:
        return struct.pack(">II", self.predicted, len(self.scores)) + self.scores.astype(">f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Prediction:
        if len(data) < 8:
            raise ModelFormatError("an output shorter than its header")
        predicted, count = struct.unpack_from(">II", data)
        if len(data) != 8 + 4 * count:
            raise ModelFormatError("an output whose length does not match its score count")
        return cls(predicted, np.frombuffer(data, dtype=">f4", offset=8).astype(np.float32))


def model_root(model: bytes) -> bytes:
    """Root M of the model region holding this model file (docs/vm-spec.md)."""
    from ..vm.layout import MODEL
    from ..vm.machine import length_prefixed
    from ..vm.memory import PagedMemory

    memory = PagedMemory()
    memory.write(MODEL.start, length_prefixed(model))
    return memory.region_root(MODEL)
