"""The value tree: S_t and the siblings of any slot against a naive sparse tree, the link's two openings of
slot i + 1, and S_0 from the input alone."""

import random

import numpy as np
import pytest

from opml.errors import BadInput
from opml.graph.native import evaluate
from opml.graph.tree import EMPTY_SLOT, VALUE_TREE_DEPTH, ValueTree, input_state, root_from_siblings
from opml.graph.values import value_root
from opml.models.formats import Graph, InputType, Node, Op
from opml.vm.merkle import ZERO_HASHES, hash_pair, keccak256


def naive_root(leaves: dict[int, bytes]) -> bytes:
    """The root of a 2^20-slot tree holding `leaves`, every other slot empty, level by level."""
    level = dict(leaves)
    for height in range(VALUE_TREE_DEPTH):
        parents = {}
        for index in {k >> 1 for k in level}:
            left = level.get(2 * index, ZERO_HASHES[height])
            right = level.get(2 * index + 1, ZERO_HASHES[height])
            parents[index] = hash_pair(left, right)
        level = parents
    return level[0]


def roots(count: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [keccak256(rng.randbytes(8)) for _ in range(count)]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 187, 257])
def test_every_state_is_the_tree_of_its_prefix(count):
    values = roots(count, count)
    tree = ValueTree(values)
    assert tree.last == count - 1
    checked = sorted({0, 1, count // 2, count - 2, count - 1} & set(range(count)))
    for t in checked:
        assert tree.state(t) == naive_root(dict(enumerate(values[: t + 1]))), t
    assert tree.states()[-1] == tree.state(count - 1)


def test_the_siblings_of_any_slot_in_any_state_give_that_state():
    values = roots(187, 1)
    tree = ValueTree(values)
    rng = random.Random(2)
    for t in [0, 1, 63, 64, 100, 186]:
        state = tree.state(t)
        for slot in {0, t, t + 1, 186, *rng.sample(range(187), 6), 1 << 19, (1 << 20) - 1}:
            leaf = values[slot] if slot <= t else EMPTY_SLOT
            assert root_from_siblings(slot, leaf, tree.siblings(slot, t)) == state, (slot, t)


def test_the_link_opens_slot_i_plus_1_empty_in_s_i_and_set_in_s_i_plus_1():
    values = roots(40, 3)
    tree = ValueTree(values)
    for i in range(39):
        siblings = tree.siblings(i + 1, i)
        assert root_from_siblings(i + 1, EMPTY_SLOT, siblings) == tree.state(i)
        assert root_from_siblings(i + 1, values[i + 1], siblings) == tree.state(i + 1)


def test_s0_is_the_tree_of_the_input_root():
    input = b"\x07" * 784
    assert input_state(input) == naive_root({0: value_root(input)})
    assert input_state(input) == ValueTree([value_root(input), *roots(5)]).state(0)


def test_bad_trees_and_slots_are_refused():
    with pytest.raises(BadInput):
        ValueTree([])
    with pytest.raises(BadInput):
        ValueTree([b"short"])
    tree = ValueTree(roots(4))
    with pytest.raises(BadInput):
        tree.state(4)
    with pytest.raises(BadInput):
        tree.siblings(1 << 20, 2)
    with pytest.raises(BadInput):
        root_from_siblings(0, EMPTY_SLOT, [EMPTY_SLOT] * 19)


def test_a_runs_openings_for_the_link_and_for_finalize():
    """Node 2 of x -> relu -> transpose -> matmul(relu, transpose) reads slots 1 and 2."""
    graph = Graph(
        InputType.F32, (2, 3), [], [Node(Op.RELU, [0]), Node(Op.TRANSPOSE, [1], [], [1, 0]), Node(Op.MATMUL, [1, 2])]
    )
    run = evaluate(graph, np.arange(6, dtype=">f4").tobytes())
    for node in range(3):
        link = run.link_openings(node)
        state = run.state(node)
        assert [opening.slot for opening in link.operands] == graph.nodes[node].inputs
        for opening in [*link.operands, link.input]:
            assert opening.root == run.roots[opening.slot]
            assert root_from_siblings(opening.slot, opening.root, opening.siblings) == state
        assert link.output.slot == node + 1 and link.output.root == run.roots[node + 1]
        assert root_from_siblings(node + 1, EMPTY_SLOT, link.output.siblings) == state
        assert root_from_siblings(node + 1, link.output.root, link.output.siblings) == run.state(node + 1)
    output = run.output_opening()
    assert output.root == value_root(run.output)
    assert root_from_siblings(3, output.root, output.siblings) == run.final_state
