"""A graph claim computed natively (docs/two-phase.md): every value, its root, the value tree; and the node
program's checks and result for one node, natively.

    run = evaluate(graph, input)          # every value of the run, their roots, the value tree
    run.final_state, run.node_count       # the claim: S_n and n
    run.state(t), run.tree.siblings(...)  # phase 1's states and the link's proofs

Node j's value is computed by the reference kernels (opml/models/reference.py) from the *decoded canonical*
values of its operands, exactly what the node program (guest/inference/node_main.c) computes from the
operand regions the link fills; so each value fed forward here is the canonical one, not the kernel's raw
output (a -0 or a NaN payload can change what a later node computes).

`node_program(...)` makes the node program's checks in its order and gives its exit code and output: what a
VM node run must give, bit for bit (tests/graph/test_node_program.py).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BadInput
from ..models.formats import EXIT_BAD_SHAPE, EXIT_MODEL_TOO_LARGE, Graph, ModelFormatError, Node, parse_model
from ..models.reference import KERNELS, InferenceError, decode_input, output_shape
from ..vm import layout as L
from .run import ValueRun
from .tree import ValueTree
from .values import (
    KIND_F32,
    MAX_VALUE_BYTES,
    ValueFormatError,
    canonical,
    decode_value,
    encode_value,
    encoded_size,
    value_root,
)

# The node program's exit codes beyond the inference program's (guest/inference/node.h).
EXIT_WRONG_NODE_COUNT = 30  # the header's node count is not the graph's
EXIT_BAD_NODE_INDEX = 31  # the header's node index is not below the node count
EXIT_WRONG_OPERANDS = 32  # the header's operand slots are not exactly the node's inputs
EXIT_BAD_OPERAND = 33  # an operand is not a value the node can take (malformed, wrong kind or shape)

INPUT_SLOT = 0


class NodeRefused(BadInput):
    """The node program refuses this node run; `exit_code` is its exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message, details={"exit_code": exit_code})
        self.exit_code = exit_code


# --- one node -----------------------------------------------------------------------------------------------


def decode_operand(graph: Graph, slot: int, data: bytes) -> np.ndarray:
    """An operand region's bytes as the node program reads them: value 0 decoded as the model's input (its
    floats as they are), any other slot as a well-formed float32 value of rank 1 to 4 without a zero
    dimension. NodeRefused(EXIT_BAD_OPERAND) otherwise."""
    if len(data) > L.MAX_REGION_DATA_BYTES:
        raise NodeRefused(f"operand of slot {slot} is {len(data)} bytes: more than its region", EXIT_BAD_OPERAND)
    if slot == INPUT_SLOT:
        try:
            return decode_input(graph, data)
        except InferenceError as error:
            raise NodeRefused(f"value 0 as an operand: {error}", EXIT_BAD_OPERAND) from None
    try:
        value = decode_value(data)
    except ValueFormatError as error:
        raise NodeRefused(f"operand of slot {slot}: {error}", EXIT_BAD_OPERAND) from None
    if value.kind != KIND_F32:
        raise NodeRefused(f"operand of slot {slot} is not float32 (kind {value.kind})", EXIT_BAD_OPERAND)
    if len(value.shape) == 0 or 0 in value.shape:
        raise NodeRefused(
            f"operand of slot {slot} has shape {list(value.shape)}: no graph value does", EXIT_BAD_OPERAND
        )
    return value.elements


def compute_node(graph: Graph, index: int, operands: Sequence[np.ndarray]) -> np.ndarray:
    """Node `index`'s value from its operands (arrays in the order of its inputs), canonical float32.

    NodeRefused with the node program's code when it cannot: operands of shapes the node does not take
    (EXIT_BAD_OPERAND), an unknown op, a value too large for a region, a gather index off its table."""
    node = graph.nodes[index]
    try:
        shape = output_shape(graph, node, [x.shape for x in operands])
        if encoded_size(shape) > MAX_VALUE_BYTES:
            raise InferenceError(f"node {index}'s value {list(shape)} does not fit in a region", EXIT_MODEL_TOO_LARGE)
        with np.errstate(all="ignore"):
            result = KERNELS[node.op].compute(graph, node, list(operands), shape)
    except InferenceError as error:
        # The model parsed, so a shape check that fails is about these operands.
        code = EXIT_BAD_OPERAND if error.exit_code == EXIT_BAD_SHAPE else error.exit_code
        raise NodeRefused(f"node {index} ({_op_name(node)}): {error}", code) from None
    return canonical(result).reshape(shape)


def _op_name(node: Node) -> str:
    return node.op.name.lower() if hasattr(node.op, "name") else f"op {node.op}"


@dataclass(frozen=True)
class NodeOutcome:
    """What the node program ends with: its exit code, and on 0 the node's value (the output region)."""

    exit_code: int
    value: bytes = b""
    message: str = ""


def node_program(
    model: bytes | Graph, node: int, node_count: int, operands: Sequence[tuple[int, bytes]]
) -> NodeOutcome:
    """The node program's outcome for this node run, natively, its checks in its order: the model parses,
    the node count is the graph's, the node index is below it, the operand slots are the node's inputs,
    each operand is a value the node can take; then the node's value. `operands` are (slot, value bytes)
    in the order of the header's slots (slot 0: the request's input)."""
    try:
        graph = model if isinstance(model, Graph) else parse_model(model)
    except ModelFormatError as error:
        return NodeOutcome(error.exit_code, message=str(error))
    if node_count != len(graph.nodes):
        return NodeOutcome(EXIT_WRONG_NODE_COUNT, message=f"the graph has {len(graph.nodes)} nodes, not {node_count}")
    if not 0 <= node < node_count:
        return NodeOutcome(EXIT_BAD_NODE_INDEX, message=f"node {node} of {node_count}")
    inputs = graph.nodes[node].inputs
    slots = [slot for slot, _ in operands]
    if slots != list(inputs):
        return NodeOutcome(EXIT_WRONG_OPERANDS, message=f"node {node} reads slots {inputs}, not {slots}")
    try:
        # In region order; a node reading one value twice has it in two regions, and the later is used, as
        # in the guest (a link proves both against the same slot, so they are equal there).
        by_slot = {slot: decode_operand(graph, slot, data) for slot, data in operands}
        value = compute_node(graph, node, [by_slot[slot] for slot in inputs])
    except NodeRefused as refused:
        return NodeOutcome(refused.exit_code, message=str(refused))
    return NodeOutcome(0, encode_value(value))


# --- a whole run --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphRun(ValueRun):
    """Every value of a run of a graph on an input, their roots and the value tree: an honest graph claim."""

    graph: Graph
    values: list[bytes]  # value j's bytes, j = 0..n (value 0: the input as sent)
    roots: list[bytes]  # value j's root
    tree: ValueTree

    def operand_slots(self, node: int) -> tuple[int, ...]:
        """The slots the model file lists as node `node`'s inputs."""
        return tuple(self.graph.nodes[node].inputs)


def evaluate(graph: Graph | bytes, input: bytes, replaced: dict[int, bytes] | None = None) -> GraphRun:
    """Every value of the run of `graph` (or a model file) on `input`, their roots and the value tree.

    NodeRefused names the first node the node program would refuse with these honest operands (an input of
    the wrong length, a gather index off its table, a value too large for a region). `replaced` puts other bytes
    in some slots, and every later node computes on them (a lying player's run that follows from its lie)."""
    if not isinstance(graph, Graph):
        graph = parse_model(graph)
    for index, node in enumerate(graph.nodes):
        if any(slot > index for slot in node.inputs):
            raise BadInput(f"node {index} reads a later value")
    arrays = [decode_operand(graph, INPUT_SLOT, input)]
    values = [input]
    for index, node in enumerate(graph.nodes):
        array = compute_node(graph, index, [arrays[slot] for slot in node.inputs])
        if replaced and index + 1 in replaced:
            data = replaced[index + 1]
            kind, rank = struct.unpack_from(">II", data)  # not decode_value: a lie need not be canonical
            dims = struct.unpack_from(f">{rank}I", data, 8)
            element = (">f4", np.float32) if kind == KIND_F32 else (">i4", np.int32)
            array = np.frombuffer(data, element[0], offset=8 + 4 * rank).astype(element[1]).reshape(dims)
            arrays.append(array)
            values.append(data)
            continue
        arrays.append(array)
        values.append(encode_value(array))
    roots = [value_root(value) for value in values]
    return GraphRun(graph, values, roots, ValueTree(roots))
