"""The transformer ops of the graph: VM == reference bit for bit on random shapes and edge values
(zeros, signed zeros, subnormals, large magnitudes, infinities, NaNs), the reference close to
PyTorch, and malformed nodes failing the same way in the guest and in Python.

NaN handling (docs/models.md): a NaN in gives a NaN out, but its payload is not fixed (IEEE
leaves it open and compiler-rt differs from x86), so outputs compare equal when their bits are
equal or both are NaN.
"""

import random
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from opml.models.formats import EXIT_BAD_INDEX, Graph, InputType, ModelFormatError, Node, Op, param_of_float
from opml.models.reference import InferenceError, predict, run

from .conftest import run_in_vm
from .test_errors import mutations

RNG = np.random.default_rng(21)
EDGE = np.array(
    [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1e-40, -1e-40, 1.4e-45, 3e38, -3e38, 1e30, -1e30, 88.0, -104.0, 0.84, 4.5,
     -4.5, 1e-20, np.inf, -np.inf, np.nan],
    dtype=np.float32,
)  # fmt: skip


def floats(*shape: int, scale: float = 1.0, edge: bool = False) -> np.ndarray:
    """Normal values times `scale`; with `edge`, a sample of the edge values mixed in."""
    values = (RNG.standard_normal(shape) * scale).astype(np.float32)
    if edge:
        flat = values.reshape(-1)
        where = RNG.random(flat.size) < 0.3
        flat[where] = RNG.choice(EDGE, where.sum())
    return values


def assert_same_floats(got: np.ndarray, expected: np.ndarray) -> None:
    got, expected = np.asarray(got, np.float32), np.asarray(expected, np.float32)
    assert got.shape == expected.shape
    differ = (got.view(np.uint32) != expected.view(np.uint32)) & ~(np.isnan(got) & np.isnan(expected))
    assert not differ.any(), f"{differ.sum()} of {differ.size} differ: {got[differ][:4]} != {expected[differ][:4]}"


def vm_equals_reference(inference, graph: Graph, x: np.ndarray) -> np.ndarray:
    """Run `graph` on `x` in the VM and in the reference; they agree; the reference's values, shaped."""
    data = x.astype(">f4").tobytes()
    reference = run(graph, data)
    code, output, stderr = run_in_vm(inference, graph.to_bytes(), data)
    assert code == 0, stderr
    predicted, count = struct.unpack_from(">II", output)
    assert (predicted, count) == (reference.predicted, reference.scores.size)
    assert_same_floats(np.frombuffer(output, ">f4", offset=8), reference.scores)
    return reference.scores


def single(op: Op, x: np.ndarray, tensors=(), params=(), inputs=(0,)) -> Graph:
    return Graph(
        InputType.F32,
        x.shape,
        [np.asarray(t, np.float32) for t in tensors],
        [Node(op, list(inputs), list(range(len(tensors))), list(params))],
    )


def finite(*arrays: np.ndarray) -> np.ndarray:
    return np.logical_and.reduce([np.isfinite(a) for a in arrays])


@pytest.mark.parametrize("op", [Op.SQRT, Op.ERF])
def test_sqrt_and_erf(inference, op):
    bits = RNG.integers(0, 2**32, 3000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.concatenate([EDGE, floats(2000, scale=3), bits])
    ours = vm_equals_reference(inference, single(op, x), x)
    with np.errstate(all="ignore"):
        expected = torch.sqrt(torch.from_numpy(x)) if op == Op.SQRT else torch.erf(torch.from_numpy(x))
    if op == Op.SQRT:  # ours correctly rounded (numpy's is, bit for bit), PyTorch's vectorized one within an ulp
        np.testing.assert_allclose(ours[x >= 0], expected.numpy()[x >= 0], rtol=1.2e-7, atol=0)
    else:  # ours within 1.5 ulp of erf
        np.testing.assert_allclose(ours[~np.isnan(x)], expected.numpy()[~np.isnan(x)], rtol=2e-7, atol=1.5e-7)


BROADCASTS = [((3, 4), (4,)), ((2, 3, 4), (2, 1, 4)), ((2, 1, 3), (4, 1)), ((5,), (1,)), ((2, 3, 2, 2), (3, 1, 1))]


@pytest.mark.parametrize("op", [Op.ADD, Op.SUB, Op.MUL, Op.DIV])
@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
def test_binary_ops_broadcast_with_a_tensor(inference, op, shapes):
    torch_op = {Op.ADD: torch.add, Op.SUB: torch.sub, Op.MUL: torch.mul, Op.DIV: torch.div}[op]
    x, constant = floats(*shapes[0], edge=True), floats(*shapes[1], edge=True)
    for tensor_first in (0, 1):
        ours = vm_equals_reference(inference, single(op, x, [constant], [tensor_first]), x)
        a, b = (constant, x) if tensor_first else (x, constant)
        expected = torch_op(torch.from_numpy(a), torch.from_numpy(b)).numpy().reshape(-1)
        assert_same_floats(ours, expected)  # IEEE operations: PyTorch rounds them the same


def test_binary_ops_of_two_values(inference):
    """Two values of one shape (a stacked input, as a transformer's ids and mask), and a broadcast one."""
    x = floats(2, 3, 5, edge=True)
    for op in (Op.ADD, Op.SUB, Op.MUL, Op.DIV):
        nodes = [Node(Op.SELECT, [0], [], [0]), Node(Op.SELECT, [0], [], [1]), Node(op, [1, 2])]
        vm_equals_reference(inference, Graph(InputType.F32, x.shape, [], nodes), x)
        nodes = [Node(Op.REDUCE_SUM, [0], [], [2, 1]), Node(op, [0, 1])]  # [2, 3, 5] op [2, 3, 1]
        vm_equals_reference(inference, Graph(InputType.F32, x.shape, [], nodes), x)


@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 7), (3, 2, 3, 6)], ids=str)
def test_matmul_of_a_value_and_its_transpose(inference, shape):
    x = floats(*shape)
    rank = len(shape)
    perm = [*range(rank - 2), rank - 1, rank - 2]
    graph = Graph(InputType.F32, shape, [], [Node(Op.TRANSPOSE, [0], [], perm), Node(Op.MATMUL, [0, 1])])
    ours = vm_equals_reference(inference, graph, x)
    expected = torch.from_numpy(x) @ torch.from_numpy(x).transpose(-1, -2)
    np.testing.assert_allclose(ours, expected.numpy().reshape(-1), rtol=1e-5, atol=1e-5)


def test_matmul_with_edge_values(inference):
    x = floats(4, 6, edge=True)
    graph = Graph(InputType.F32, x.shape, [], [Node(Op.RESHAPE, [0], [], [6, 4]), Node(Op.MATMUL, [0, 1])])
    vm_equals_reference(inference, graph, x)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (2, 3, 4, 5)], ids=str)
def test_transpose_reshape_and_select_move_values_exactly(inference, shape):
    x = floats(*shape, edge=True)
    for _ in range(3):
        perm = list(RNG.permutation(len(shape)))
        ours = vm_equals_reference(inference, single(Op.TRANSPOSE, x, params=perm), x)
        assert_same_floats(ours, torch.from_numpy(x).permute(*perm).reshape(-1).numpy())
    ours = vm_equals_reference(inference, single(Op.RESHAPE, x, params=[x.size // 2, 2]), x)
    assert_same_floats(ours, x.reshape(-1))
    ours = vm_equals_reference(inference, single(Op.SELECT, x, params=[1]), x)
    assert_same_floats(ours, x[1].reshape(-1))


def test_linear_over_the_last_axis(inference):
    x, weight, bias = floats(3, 4, 6, edge=True), floats(5, 6), floats(5)
    vm_equals_reference(inference, single(Op.LINEAR, x, [weight, bias]), x)
    x = floats(3, 4, 6)
    ours = vm_equals_reference(inference, single(Op.LINEAR, x, [weight, bias]), x)
    expected = F.linear(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias))
    np.testing.assert_allclose(ours, expected.numpy().reshape(-1), rtol=1e-5, atol=1e-5)


def test_gather_picks_rows(inference):
    table = floats(50, 3, 2, edge=True)
    indices = RNG.integers(0, 50, (4, 3)).astype(np.float32)
    ours = vm_equals_reference(inference, single(Op.GATHER, indices, [table]), indices)
    assert_same_floats(ours, table[indices.astype(int)].reshape(-1))
    expected = F.embedding(torch.from_numpy(indices.astype(np.int64)), torch.from_numpy(table.reshape(50, -1)))
    assert_same_floats(ours, expected.numpy().reshape(-1))


@pytest.mark.parametrize("index", [50.0, -1.0, 1.5, np.nan, np.inf, 1e9])
def test_a_gather_index_off_the_table_fails_the_same_way(inference, index):
    indices = np.array([3, index, 7], np.float32)
    graph = single(Op.GATHER, indices, [floats(50, 4)])
    code, output, stderr = run_in_vm(inference, graph.to_bytes(), indices.astype(">f4").tobytes())
    assert (code, output) == (EXIT_BAD_INDEX, b"") and b"gather index" in stderr
    with pytest.raises(InferenceError) as raised:
        run(graph, indices.astype(">f4").tobytes())
    assert raised.value.exit_code == EXIT_BAD_INDEX


@pytest.mark.parametrize("epsilon", [1e-12, 1e-5])
def test_layernorm(inference, epsilon):
    rows = [floats(6, 16, scale=scale) for scale in (1e-3, 1.0, 1e3)]
    x = np.concatenate([*rows, np.full((1, 16), 2.5, np.float32)])  # a constant row: variance 0
    gamma, beta = floats(16), floats(16)
    ours = vm_equals_reference(inference, single(Op.LAYERNORM, x, [gamma, beta], [param_of_float(epsilon)]), x)
    expected = F.layer_norm(torch.from_numpy(x), (16,), torch.from_numpy(gamma), torch.from_numpy(beta), epsilon)
    np.testing.assert_allclose(ours, expected.numpy().reshape(-1), rtol=1e-4, atol=2e-5)
    edge = floats(4, 8, edge=True)
    vm_equals_reference(inference, single(Op.LAYERNORM, edge, [gamma[:8], beta[:8]], [param_of_float(epsilon)]), edge)


@pytest.mark.parametrize("op", [Op.REDUCE_SUM, Op.REDUCE_L2])
def test_reductions_over_each_axis(inference, op):
    x = floats(3, 4, 5)
    for axis in range(3):
        for keep in (0, 1):
            ours = vm_equals_reference(inference, single(op, x, params=[axis, keep]), x)
            t = torch.from_numpy(x)
            expected = t.sum(axis, keepdim=bool(keep)) if op == Op.REDUCE_SUM else t.norm(dim=axis, keepdim=bool(keep))
            np.testing.assert_allclose(ours, expected.numpy().reshape(-1), rtol=1e-5, atol=1e-6)
    edge = floats(4, 6, edge=True)
    vm_equals_reference(inference, single(op, edge, params=[1, 0]), edge)
    vector = floats(7)
    assert vm_equals_reference(inference, single(op, vector, params=[0, 0]), vector).shape == (1,)


def test_clip(inference):
    x = floats(200, scale=3, edge=True)
    for low, high in ((-1.0, 2.0), (1e-9, np.inf), (-np.inf, 0.0)):
        ours = vm_equals_reference(inference, single(Op.CLIP, x, params=[param_of_float(low), param_of_float(high)]), x)
        assert_same_floats(ours, torch.clamp(torch.from_numpy(x), low, high).numpy())


def test_softmax_over_the_last_axis(inference):
    x = floats(3, 4, 9, scale=4)
    x[..., -2:] += np.float32(np.finfo(np.float32).min)  # masked out, as attention does
    ours = vm_equals_reference(inference, single(Op.SOFTMAX, x, params=[2]), x)
    expected = torch.softmax(torch.from_numpy(x), dim=-1)
    np.testing.assert_allclose(ours, expected.numpy().reshape(-1), atol=1e-6)
    edge = floats(5, 6, edge=True)
    vm_equals_reference(inference, single(Op.SOFTMAX, edge, params=[1]), edge)


MALFORMED = {
    "matmul of mismatched inner dims": (Graph(InputType.F32, (2, 3), [], [Node(Op.MATMUL, [0, 0])]), 13),
    "transpose that is no permutation": (single(Op.TRANSPOSE, np.zeros((2, 3)), params=[0, 0]), 13),
    "reshape to another count": (single(Op.RESHAPE, np.zeros((2, 3)), params=[4, 2]), 13),
    "select past the end": (single(Op.SELECT, np.zeros((2, 3)), params=[2]), 13),
    "softmax over a middle axis": (single(Op.SOFTMAX, np.zeros((2, 3, 4)), params=[1]), 13),
    "shapes that do not broadcast": (single(Op.ADD, np.zeros((2, 3)), [np.zeros(2)]), 13),
    "a broadcast too large": (single(Op.MUL, np.zeros((1 << 14, 1)), [np.zeros(1 << 15)]), 14),
    "layernorm of the wrong width": (single(Op.LAYERNORM, np.zeros((2, 3)), [np.ones(4), np.ones(4)], [0]), 13),
    "reduce over a missing axis": (single(Op.REDUCE_SUM, np.zeros((2, 3)), params=[2, 0]), 13),
    "gather of too many axes": (single(Op.GATHER, np.zeros((2, 2, 2)), [np.zeros((4, 2, 2))]), 13),
    "clip without bounds": (single(Op.CLIP, np.zeros(3), params=[0]), 13),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_nodes_fail_the_same_way(inference, case):
    graph, code = MALFORMED[case]
    data = bytes(graph.input_bytes)
    assert run_in_vm(inference, graph.to_bytes(), data)[:2] == (code, b"")
    with pytest.raises(InferenceError) as raised:
        run(graph, data)
    assert raised.value.exit_code == code


def transformer_block() -> Graph:
    """A small graph of every transformer op (mutated word by word below)."""
    tensors = [
        np.ones((6, 4), np.float32) * 0.5,
        np.ones(4, np.float32),
        np.zeros(4, np.float32),
        np.full(1, 2, np.float32),
    ]
    nodes = [
        Node(Op.SELECT, [0], [], [0]),  # 1: [3, 4]
        Node(Op.LINEAR, [1], [0], []),  # 2: [3, 6] (weight [6, 4])
        Node(Op.RESHAPE, [2], [], [3, 2, 3]),  # 3
        Node(Op.TRANSPOSE, [3], [], [1, 0, 2]),  # 4: [2, 3, 3]
        Node(Op.MATMUL, [4, 4]),  # 5
        Node(Op.DIV, [5], [3], [0]),  # 6
        Node(Op.SOFTMAX, [6], [], [2]),  # 7
        Node(Op.ERF, [7]),  # 8
        Node(Op.SUB, [8], [3], [1]),  # 9
        Node(Op.SELECT, [0], [], [1]),  # 10: [3, 4]
        Node(Op.LAYERNORM, [10], [1, 2], [param_of_float(1e-5)]),  # 11
        Node(Op.REDUCE_L2, [11], [], [1, 1]),  # 12: [3, 1]
        Node(Op.CLIP, [12], [], [param_of_float(0.1), param_of_float(np.inf)]),  # 13
        Node(Op.MUL, [11, 13]),  # 14
        Node(Op.REDUCE_SUM, [14], [], [0, 0]),  # 15: [4]
    ]
    return Graph(InputType.F32, (2, 3, 4), tensors, nodes)


def outcome(model: bytes, data: bytes, inference=None):
    if inference is not None:
        code, output, _ = run_in_vm(inference, model, data)
        return code, np.frombuffer(output[8:], ">f4").astype(np.float32) if code == 0 else None
    try:
        return 0, predict(model, data).scores
    except (ModelFormatError, InferenceError) as error:
        return error.exit_code, None


def test_mutated_transformer_graphs_fail_the_same_way_in_the_guest_and_python(inference):
    model = transformer_block().to_bytes()
    data = floats(2, 3, 4).astype(">f4").tobytes()
    assert outcome(model, data)[0] == 0
    rng = random.Random(19)
    codes = set()
    for mutated in mutations(model, rng, 80, header_words=len(model) // 4):
        (vm_code, vm_values), (code, values) = outcome(mutated, data, inference), outcome(mutated, data)
        assert vm_code == code
        if code == 0:
            assert_same_floats(vm_values, values)
        codes.add(code)
    assert {0, 13} <= codes
