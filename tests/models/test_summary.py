"""Model summaries: shapes and parameter counts worked out from the graph alone, accepting exactly the
graphs the reference executor runs, with its errors and exit codes."""

import copy
import random

import numpy as np
import pytest

from opml.models.convert import graph_from_module
from opml.models.formats import EXIT_BAD_INDEX, Graph, InputType, Node, Op, parse_model
from opml.models.reference import InferenceError, run
from opml.models.summary import summarize

from .test_graph import EveryOp, randomize_batch_norms
from .test_transformer_ops import transformer_block


@pytest.fixture(scope="module")
def every_op_graph() -> Graph:
    return graph_from_module(randomize_batch_norms(EveryOp()), (2, 8, 8), InputType.F32)


def test_the_seed_model_summary(seed_model):
    summary = summarize(parse_model(seed_model))
    assert [(layer.op, layer.output_shape, layer.parameters) for layer in summary.layers] == [
        ("linear", (20,), 784 * 20 + 20), ("relu", (20,), 0), ("linear", (10,), 20 * 10 + 10), ("softmax", (10,), 0),
    ]  # fmt: skip
    assert (summary.input_type, summary.input_shape, summary.input_bytes) == ("u8", (784,), 784)
    assert (summary.output_size, summary.parameter_count) == (10, 15910)


def test_layers_carry_their_shapes_and_attributes(every_op_graph):
    layers = summarize(every_op_graph).layers
    conv = layers[0]
    assert conv.op == "conv2d" and conv.input_shapes == [(2, 8, 8)] and conv.output_shape == (4, 8, 8)
    assert conv.attributes == {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1}
    pool = next(layer for layer in layers if layer.op == "maxpool2d")
    assert pool.attributes == {"kernel_h": 2, "kernel_w": 2, "stride_h": 2, "stride_w": 2, "pad_h": 1, "pad_w": 1}
    add = next(layer for layer in layers if layer.op == "add")
    assert len(add.inputs) == 2 and add.input_shapes[0] == add.input_shapes[1]


def test_a_huge_activation_costs_nothing_to_summarize():
    """A 1 kB file whose conv would make 2^27 floats: summarized from shapes, never computed."""
    graph = Graph(
        InputType.U8, (1, 4096, 4096), [np.ones((8, 1, 3, 3), np.float32)], [Node(Op.CONV2D, [0], [0], [1, 1, 1, 1])]
    )
    assert summarize(graph).output_size == 8 * 4096 * 4096


def mutated(graph: Graph, rng: random.Random) -> Graph:
    graph = copy.deepcopy(graph)
    node = rng.choice(graph.nodes)
    choice = rng.randrange(6)
    if choice == 0 and node.params:
        node.params[rng.randrange(len(node.params))] = rng.randint(-1, 5)
    elif choice == 1 and node.tensors:
        index = rng.choice(node.tensors)
        shape = list(graph.tensors[index].shape)
        shape[rng.randrange(len(shape))] = rng.randint(1, 5)
        graph.tensors[index] = np.ones(shape[: rng.randint(1, len(shape))] if rng.random() < 0.2 else shape, np.float32)
    elif choice == 2:
        node.op = rng.choice([*Op, 42])
    elif choice == 3:
        node.inputs = [rng.randrange(graph.nodes.index(node) + 1) for _ in range(rng.randint(1, 2))]
    elif choice == 4:
        node.params = node.params[: rng.randrange(len(node.params) + 1)]
    else:
        graph.input_shape = tuple(rng.randint(1, 9) for _ in range(rng.randint(1, 3)))
    return graph


def outcome(action):
    try:
        return ("ok", action())
    except InferenceError as error:
        return ("error", error.exit_code)


def test_summaries_accept_exactly_what_the_reference_runs(every_op_graph, seed_model):
    """Except what depends on the input's values: a gather index off its table shows only when run."""
    rng = random.Random(5)
    bases = [every_op_graph, parse_model(seed_model), transformer_block()]
    kinds = set()
    for _ in range(900):
        graph = mutated(rng.choice(bases), rng)
        summary = outcome(lambda: summarize(graph).output_size)  # noqa: B023
        reference = outcome(lambda: run(graph, bytes(graph.input_bytes)).scores.size)  # noqa: B023
        if reference == ("error", EXIT_BAD_INDEX):
            assert summary[0] == "ok"
            continue
        assert summary == reference, (graph.input_shape, graph.nodes)
        kinds.add(summary[1] if summary[0] == "error" else "ok")
    assert {"ok", 13, 15} <= kinds  # both outcomes, and more than one error, were reached
