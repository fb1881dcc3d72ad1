"""The node program in the VM against the native node program, bit for bit: every op of the graph format on
random shapes and edge values, each refusal with its exit code, and whole models node by node.

Every comparison (conftest.vm_equals_native) asserts the same exit code, the same value bytes, and that the
output region's root in the VM's final memory is the natively computed value root.

A node decides node i on whatever operands the agreed state holds, so the single-op graphs below feed their
op values of the shapes each case names (through placeholder nodes) rather than what a run would compute.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from opml.graph.native import (
    EXIT_BAD_NODE_INDEX,
    EXIT_BAD_OPERAND,
    EXIT_WRONG_NODE_COUNT,
    EXIT_WRONG_OPERANDS,
    evaluate,
)
from opml.graph.values import decode_value, encode_value, value_root
from opml.models.convert import graph_from_module
from opml.models.formats import (
    EXIT_BAD_INDEX,
    EXIT_BAD_MAGIC,
    EXIT_TRUNCATED_MODEL,
    Graph,
    InputType,
    Node,
    Op,
    param_of_float,
)
from opml.models.reference import run as reference_run
from opml.models.training import SmallCNN, with_softmax
from opml.vm import layout as L

from ..models.test_errors import mutations
from .conftest import run_node_in_vm, vm_equals_native

# Zeros of both signs, subnormals, huge and tiny magnitudes, the limits of exp, infinities, and NaNs of
# several payloads and signs (as raw bits: an input keeps them, a value makes them canonical).
EDGE_BITS = np.array(
    [0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000, 0x3F800000, 0xBF800000, 0x3F000000,
     0x7F7FFFFF, 0xFF7FFFFF, 0x42B00000, 0xC2D00000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7FC00001, 0xFFC00000,
     0x7F800001, 0xFFFFFFFF, 0x1E3CE508, 0x40900000, 0xC0900000],
    dtype=np.uint32,
)  # fmt: skip
# A few edge values leave most rows of a sum or a softmax finite; many exercise every special case.
EDGE_SHARES = {"few edge values": 0.03, "many edge values": 0.3}


def edge_floats(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0, share: float = 0.3) -> np.ndarray:
    """Normal values times `scale`, a `share` of them replaced by edge values."""
    values = (rng.standard_normal(shape) * scale).astype(np.float32)
    flat = values.reshape(-1)
    where = rng.random(flat.size) < share
    flat[where] = rng.choice(EDGE_BITS, int(where.sum())).view(np.float32)
    return values


@dataclass
class Case:
    """One op: the shapes of its operands, its tensors (made from their shapes) and params."""

    op: Op
    shapes: list[tuple[int, ...]]
    tensors: list[tuple[int, ...]] = field(default_factory=list)
    params: list[int] = field(default_factory=list)
    scale: float = 1.0
    same_slot: bool = False  # both operands are one value (x op x)

    def operand_count(self) -> int:
        return 1 if self.same_slot else len(self.shapes)


CASES = {
    "linear": Case(Op.LINEAR, [(3, 5)], [(4, 5), (4,)]),
    "linear flattening, no bias": Case(Op.LINEAR, [(2, 3, 2)], [(4, 12)]),
    "conv2d": Case(Op.CONV2D, [(2, 6, 7)], [(3, 2, 3, 3), (3,)], [1, 1, 1, 1]),
    "conv2d strided": Case(Op.CONV2D, [(1, 7, 7)], [(2, 1, 3, 2)], [2, 2, 0, 1]),
    "relu": Case(Op.RELU, [(6, 7)]),
    "sigmoid": Case(Op.SIGMOID, [(6, 7)], scale=8),
    "tanh": Case(Op.TANH, [(6, 7)], scale=8),
    "sqrt": Case(Op.SQRT, [(6, 7)], scale=50),
    "erf": Case(Op.ERF, [(6, 7)], scale=3),
    "maxpool2d": Case(Op.MAXPOOL2D, [(2, 6, 6)], params=[2, 2, 2, 2, 0, 0]),
    "maxpool2d padded": Case(Op.MAXPOOL2D, [(2, 5, 6)], params=[3, 3, 1, 2, 1, 1]),
    "avgpool2d": Case(Op.AVGPOOL2D, [(2, 6, 6)], params=[2, 2, 2, 2, 0, 0]),
    "avgpool2d padded": Case(Op.AVGPOOL2D, [(2, 5, 6)], params=[3, 3, 1, 2, 1, 1]),
    "flatten": Case(Op.FLATTEN, [(2, 3, 4)]),
    "add of two values, broadcast": Case(Op.ADD, [(2, 3, 4), (3, 1)]),
    "add of a value to itself": Case(Op.ADD, [(3, 4)], same_slot=True),
    "sub of a tensor": Case(Op.SUB, [(3, 4)], [(4,)], [0]),
    "sub from a tensor": Case(Op.SUB, [(3, 4)], [(3, 1)], [1]),
    "mul of two values, broadcast": Case(Op.MUL, [(2, 1, 3), (4, 1)]),
    "div of two values": Case(Op.DIV, [(5,), (1,)]),
    "div of a tensor by a value": Case(Op.DIV, [(2, 3, 2, 2)], [(3, 1, 1)], [1]),
    "softmax over everything": Case(Op.SOFTMAX, [(3, 7)], scale=4),
    "softmax over rows": Case(Op.SOFTMAX, [(2, 3, 5)], params=[2], scale=4),
    "matmul": Case(Op.MATMUL, [(2, 3, 4), (2, 4, 5)]),
    "matmul of a value by itself": Case(Op.MATMUL, [(4, 4)], same_slot=True),
    "transpose": Case(Op.TRANSPOSE, [(2, 3, 4)], params=[2, 0, 1]),
    "reshape": Case(Op.RESHAPE, [(2, 3, 4)], params=[4, 6]),
    "select": Case(Op.SELECT, [(3, 2, 4)], params=[1]),
    "gather": Case(Op.GATHER, [(2, 3)], [(10, 4)]),
    "layernorm": Case(Op.LAYERNORM, [(3, 8)], [(8,), (8,)], [param_of_float(1e-5)]),
    "reduce_sum": Case(Op.REDUCE_SUM, [(3, 4, 5)], params=[1, 0]),
    "reduce_sum of a vector, keepdims": Case(Op.REDUCE_SUM, [(7,)], params=[0, 1]),
    "reduce_l2": Case(Op.REDUCE_L2, [(3, 4, 5)], params=[2, 1]),
    "clip": Case(Op.CLIP, [(40,)], params=[param_of_float(-1.0), param_of_float(2.0)], scale=3),
    "clip unbounded above": Case(Op.CLIP, [(40,)], params=[param_of_float(1e-9), param_of_float(np.inf)]),
}


def test_every_op_has_a_case():
    assert {case.op for case in CASES.values()} == set(Op)


def operand_floats(case: Case, rng: np.random.Generator, shape: tuple[int, ...], share: float) -> np.ndarray:
    if case.op == Op.GATHER:  # row indices of the table
        return rng.integers(0, case.tensors[0][0], shape).astype(np.float32)
    return edge_floats(rng, shape, case.scale, share)


def case_graph(case: Case, rng: np.random.Generator, from_input: bool) -> tuple[Graph, list[int]]:
    """The graph whose last node is the case's op, and the slots it reads: the first operand the input itself
    (`from_input`) or a value, every other operand a value, each value made by a placeholder node."""
    tensors = [edge_floats(rng, shape) if case.op != Op.GATHER else rng.standard_normal(shape).astype(np.float32)
               for shape in case.tensors]  # fmt: skip
    placeholders = case.operand_count() - (1 if from_input else 0)
    nodes = [Node(Op.RELU, [0]) for _ in range(placeholders)]
    slots = ([0] if from_input else []) + list(range(1, placeholders + 1))
    if case.same_slot:
        slots = slots * 2
    nodes.append(Node(case.op, slots, list(range(len(tensors))), list(case.params)))
    return Graph(InputType.F32, case.shapes[0], tensors, nodes), slots


@pytest.mark.parametrize("edges", EDGE_SHARES)
@pytest.mark.parametrize("from_input", [False, True], ids=["values", "raw input"])
@pytest.mark.parametrize("name", CASES)
def test_vm_node_equals_native_node(node_elf, name, from_input, edges):
    case, share = CASES[name], EDGE_SHARES[edges]
    rng = np.random.default_rng([sum(map(ord, name)), from_input, int(share * 100)])
    graph, slots = case_graph(case, rng, from_input)
    model = graph.to_bytes()
    # The input as sent: raw floats, -0 and NaN payloads kept; the values: canonical.
    input = operand_floats(case, rng, case.shapes[0], share).astype(">f4").tobytes()
    values = {0: input}
    for position, slot in enumerate(slots):
        if slot not in values:
            values[slot] = encode_value(operand_floats(case, rng, case.shapes[position], share))
    operands = [(slot, values[slot]) for slot in slots]
    outcome = vm_equals_native(node_elf, model, input, len(graph.nodes) - 1, len(graph.nodes), operands)
    assert outcome.exit_code == 0, outcome.message
    assert decode_value(outcome.value).elements.size > 0


def test_the_input_is_decoded_as_the_model_declares_it(node_elf):
    """Value 0 as an operand: u8 bytes and int32 (token ids) become floats, as the inference program reads
    its input region."""
    table = np.random.default_rng(4).standard_normal((300, 3)).astype(np.float32)
    ids = Graph(InputType.I32, (2, 4), [table], [Node(Op.SELECT, [0], [], [0]), Node(Op.GATHER, [1], [0])])
    input = np.array([[5, 299, 0, 17], [1, 1, 0, 0]], ">i4").tobytes()
    run = evaluate(ids, input)
    for node in range(2):
        outcome = vm_equals_native(node_elf, ids.to_bytes(), input, node, 2, run.operands(node))
        assert outcome.value == run.values[node + 1]
    assert np.array_equal(decode_value(run.output).elements, table[[5, 299, 0, 17]])
    pixels = Graph(InputType.U8, (4, 3), [], [Node(Op.REDUCE_SUM, [0], [], [0, 0])])
    input = bytes([0, 255, 7, 1, 2, 3, 128, 0, 9, 250, 250, 250])
    outcome = vm_equals_native(node_elf, pixels.to_bytes(), input, 0, 1, [(0, input)])
    assert decode_value(outcome.value).elements.tolist() == [379.0, 507.0, 269.0]


def test_each_value_is_computed_from_the_canonical_values_before_it(node_elf):
    """relu(-0) is -0, whose canonical value is +0; so 1 / that value is +inf, where the whole-run reference
    (which feeds the raw -0 on) gives -inf."""
    graph = Graph(InputType.F32, (2,), [np.ones(1, np.float32)], [Node(Op.RELU, [0]), Node(Op.DIV, [1], [0], [1])])
    input = np.array([-0.0, 0.0], ">f4").tobytes()
    run = evaluate(graph, input)
    assert run.values[1] == encode_value(np.zeros(2, np.float32))
    assert decode_value(run.output).elements.tolist() == [np.inf, np.inf]
    assert reference_run(graph, input).scores.tolist() == [-np.inf, np.inf]
    for node in range(2):
        assert (
            vm_equals_native(node_elf, graph.to_bytes(), input, node, 2, run.operands(node)).value
            == run.values[node + 1]
        )


def test_a_value_longer_than_a_results_output_is_still_a_value(node_elf):
    """A node's value may be longer than the registry's output cap (64 KiB): MiniLM's [16, 1536] activations are
    98 KB. Only a claim's last value is ever a result; the node run writes any value its region holds."""
    graph = Graph(InputType.F32, (20_000,), [], [Node(Op.RELU, [0])])
    input = np.linspace(-1, 1, 20_000, dtype=">f4").tobytes()
    run = evaluate(graph, input)
    assert len(run.values[1]) > L.MAX_OUTPUT_BYTES
    outcome = vm_equals_native(node_elf, graph.to_bytes(), input, 0, 1, run.operands(0))
    assert outcome.exit_code == 0 and outcome.value == run.values[1]


# --- refusals --------------------------------------------------------------------------------------------


def refusal_graph() -> Graph:
    """x [2, 3] -> relu -> transpose -> matmul(relu, transpose): [2, 2]."""
    nodes = [Node(Op.RELU, [0]), Node(Op.TRANSPOSE, [1], [], [1, 0]), Node(Op.MATMUL, [1, 2])]
    return Graph(InputType.F32, (2, 3), [], nodes)


@pytest.fixture(scope="module")
def honest():
    graph = refusal_graph()
    input = np.arange(-3, 3, dtype=">f4").tobytes()
    return graph, input, evaluate(graph, input)


def value_of(shape, fill=1.0) -> bytes:
    return encode_value(np.full(shape, fill, np.float32))


def test_an_honest_node_run_of_the_refusal_graph(node_elf, honest):
    graph, input, run = honest
    for node in range(3):
        outcome = vm_equals_native(node_elf, graph.to_bytes(), input, node, 3, run.operands(node))
        assert outcome.value == run.values[node + 1]


@pytest.mark.parametrize("node, node_count", [(2, 2), (2, 4), (0, 0), (0, 1000)])
def test_a_wrong_node_count_is_refused(node_elf, honest, node, node_count):
    graph, input, run = honest
    vm = run_node_in_vm(node_elf, graph.to_bytes(), input, node, node_count, run.operands(2))
    assert vm.exit_code == EXIT_WRONG_NODE_COUNT and vm.output == b""
    vm_equals_native(node_elf, graph.to_bytes(), input, node, node_count, run.operands(2))


@pytest.mark.parametrize("node", [3, 4, 1 << 31])
def test_a_node_index_past_the_last_node_is_refused(node_elf, honest, node):
    graph, input, run = honest
    assert (
        vm_equals_native(node_elf, graph.to_bytes(), input, node, 3, run.operands(2)).exit_code == EXIT_BAD_NODE_INDEX
    )


WRONG_SLOTS = {
    "swapped": [2, 1],
    "one missing": [1],
    "one too many": [1, 2, 2],
    "another slot": [0, 2],
    "none": [],
    "four": [1, 2, 1, 2],
}


@pytest.mark.parametrize("case", WRONG_SLOTS)
def test_operands_other_than_the_nodes_inputs_are_refused(node_elf, honest, case):
    graph, input, run = honest
    operands = [(slot, run.values[slot]) for slot in WRONG_SLOTS[case]]
    assert vm_equals_native(node_elf, graph.to_bytes(), input, 2, 3, operands).exit_code == EXIT_WRONG_OPERANDS


BAD_OPERANDS = {
    "empty": b"",
    "truncated": value_of((2, 3))[:-1],
    "a byte too many": value_of((2, 3)) + b"\0",
    "int32 kind": struct.pack(">4I", 1, 2, 2, 3) + bytes(24),
    "unknown kind": struct.pack(">4I", 7, 2, 2, 3) + bytes(24),
    "rank 0": struct.pack(">2If", 0, 0, 1.0),
    "rank 5": struct.pack(">7I", 0, 5, 1, 1, 1, 2, 3) + bytes(24),
    "a zero dimension": struct.pack(">4I", 0, 2, 0, 3),
    "a shape of 2^32 elements": struct.pack(">4I", 0, 2, 65536, 65536) + bytes(24),
    "a NaN of another payload": value_of((2, 3))[:-4] + struct.pack(">I", 0x7FC00001),
    "a negative zero": value_of((2, 3))[:-4] + struct.pack(">I", 0x80000000),
    "a shape matmul cannot take": value_of((2, 2)),
    "a shape of another rank": value_of((6,)),
}


@pytest.mark.parametrize("case", BAD_OPERANDS)
def test_an_operand_that_is_not_a_value_the_node_takes_is_refused(node_elf, honest, case):
    graph, input, run = honest
    operands = [(1, BAD_OPERANDS[case]), (2, run.values[2])]
    assert vm_equals_native(node_elf, graph.to_bytes(), input, 2, 3, operands).exit_code == EXIT_BAD_OPERAND


@pytest.mark.parametrize("length", [0, 20, 28])
def test_an_input_of_the_wrong_length_is_a_bad_operand(node_elf, honest, length):
    graph, _, _ = honest
    input = bytes(length)
    assert vm_equals_native(node_elf, graph.to_bytes(), input, 0, 3, [(0, input)]).exit_code == EXIT_BAD_OPERAND
    with pytest.raises(Exception, match="value 0"):
        evaluate(graph, input)


def test_other_shapes_an_op_cannot_take_are_bad_operands(node_elf):
    conv = Graph(
        InputType.F32,
        (1, 4, 4),
        [np.ones((2, 1, 3, 3), np.float32)],
        [Node(Op.RELU, [0]), Node(Op.CONV2D, [1], [0], [1, 1, 0, 0])],
    )
    for shape in [(4, 4), (2, 4, 4), (1, 2, 2)]:
        operands = [(1, value_of(shape))]
        assert vm_equals_native(node_elf, conv.to_bytes(), bytes(64), 1, 2, operands).exit_code == EXIT_BAD_OPERAND


def test_mutated_operands_and_models_end_the_same_way_in_the_vm_and_natively(node_elf, honest):
    """Operands and the model with a word replaced, cut short or extended (tests/models/test_errors.py's
    mutations): the node program and its native twin agree on every one, and never crash."""
    graph, input, run = honest
    model = graph.to_bytes()
    rng = random.Random(33)
    codes = set()
    for position in range(2):  # node 2's operands: slots 1 and 2
        operand = run.values[position + 1]
        for mutated in mutations(operand, rng, 25, header_words=len(operand) // 4):
            operands = run.operands(2)
            operands[position] = (operands[position][0], mutated)
            codes.add(vm_equals_native(node_elf, model, input, 2, 3, operands).exit_code)
    for mutated in mutations(model, rng, 25, header_words=len(model) // 4):
        codes.add(vm_equals_native(node_elf, mutated, input, 2, 3, run.operands(2)).exit_code)
    assert {0, EXIT_BAD_OPERAND} <= codes, codes


def test_a_model_that_does_not_parse_fails_first(node_elf, honest):
    graph, input, run = honest
    model = graph.to_bytes()
    for bad, code in [(b"GGML" + model[4:], EXIT_BAD_MAGIC), (model[:-3], EXIT_TRUNCATED_MODEL)]:
        assert vm_equals_native(node_elf, bad, input, 9, 9, []).exit_code == code


def test_a_gather_index_off_its_table_ends_the_node_as_the_inference_program(node_elf):
    graph = Graph(InputType.F32, (3,), [np.ones((5, 2), np.float32)], [Node(Op.RELU, [0]), Node(Op.GATHER, [1], [0])])
    for index in (5.0, 1.5, np.nan):
        operands = [(1, encode_value(np.array([0, index, 1], np.float32)))]
        assert vm_equals_native(node_elf, graph.to_bytes(), bytes(12), 1, 2, operands).exit_code == EXIT_BAD_INDEX


# --- whole models, node by node ------------------------------------------------------------------------------


def every_node_in_the_vm(program, model: bytes, input: bytes) -> None:
    run = evaluate(model, input)
    for node in range(run.node_count):
        outcome = vm_equals_native(program, model, input, node, run.node_count, run.operands(node))
        assert outcome.value == run.values[node + 1], node
    # The last value is the inference program's scores, made canonical.
    scores = reference_run(run.graph, input).scores
    assert np.array_equal(decode_value(run.output).elements.reshape(-1), scores)


def test_the_seed_mlp_node_by_node(node_elf, seed_model, input_7):
    every_node_in_the_vm(node_elf, seed_model, input_7)
    assert value_root(input_7) == evaluate(seed_model, input_7).roots[0]


def test_a_cnn_node_by_node(node_elf):
    torch.manual_seed(2)
    model = with_softmax(SmallCNN()).eval()
    for parameter in model.parameters():
        parameter.data.mul_(0.05)  # keep raw-pixel activations in a sensible range
    graph = graph_from_module(model, (1, 28, 28), InputType.U8)
    assert {Op.CONV2D, Op.MAXPOOL2D, Op.AVGPOOL2D, Op.LINEAR, Op.SOFTMAX} <= {node.op for node in graph.nodes}
    image = np.random.default_rng(6).integers(0, 256, 784, dtype=np.uint8).tobytes()
    every_node_in_the_vm(node_elf, graph.to_bytes(), image)


@pytest.fixture(scope="module")
def minilm_one_layer() -> tuple[bytes, bytes]:
    """all-MiniLM-L6-v2's first layer over 8 tokens (the packaged weights: a 54 MB model) and a sentence."""
    from opml.models import minilm

    return minilm.model_file(length=8, layers=1), minilm.encode_text("A man is eating food.", 8)


# One node of each kind the layer computes on its own values: the embedding lookup of the token ids, a
# layernorm, attention's scores, their softmax, GELU's erf, the mean pooling's sum.
MINILM_NODES = {Op.GATHER: 2, Op.LAYERNORM: 4, Op.MATMUL: 18, Op.SOFTMAX: 21, Op.ERF: 30, Op.REDUCE_SUM: 39}


def test_minilm_nodes(node_elf, minilm_one_layer):
    model, input = minilm_one_layer
    run = evaluate(model, input)
    for op, node in MINILM_NODES.items():
        assert run.graph.nodes[node].op == op
        outcome = vm_equals_native(node_elf, model, input, node, run.node_count, run.operands(node))
        assert outcome.value == run.values[node + 1], node
    assert np.array_equal(decode_value(run.output).elements.reshape(-1), reference_run(run.graph, input).scores)
