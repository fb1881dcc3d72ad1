"""ONNX -> our graph: hand-built ONNX graphs checked against ONNX's own reference evaluator, every
unsupported construct named with its op and node, malformed files refused, and `opml convert`."""

import copy
import json
import random

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from typer.testing import CliRunner

from opml.cli import app as opml_cli
from opml.errors import BadInput
from opml.models.convert import UnsupportedModelError
from opml.models.formats import InputType, Op, model_root, parse_model
from opml.models.ingest import SourceFormat, convert_model
from opml.models.onnx_import import OnnxFormatError, graph_from_onnx
from opml.models.reference import run

from .conftest import vm_prediction

RNG = np.random.default_rng(7)


def tensor(*shape: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return RNG.uniform(low, high, shape).astype(np.float32)


def onnx_model(
    nodes, input_shape, output_shape, weights=None, input_type=TensorProto.FLOAT, opset=17, domains=()
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info("x", input_type, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        initializer=[numpy_helper.from_array(array, name) for name, array in (weights or {}).items()],
    )
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(domain, 1) for domain in domains)]
    model = helper.make_model(graph, opset_imports=opsets)
    onnx.checker.check_model(model)
    return model


def node(op: str, inputs: list[str], output: str, **attributes) -> onnx.NodeProto:
    return helper.make_node(op, inputs, [output], name=f"the_{output}", **attributes)


def batch_norm_weights(prefix: str, channels: int) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_gamma": tensor(channels, low=0.5, high=1.5),
        f"{prefix}_beta": tensor(channels),
        f"{prefix}_mean": tensor(channels),
        f"{prefix}_var": tensor(channels, low=0.5, high=2.0),
    }


def batch_norm(prefix: str, source: str, output: str) -> onnx.NodeProto:
    names = [f"{prefix}_{part}" for part in ("gamma", "beta", "mean", "var")]
    return node("BatchNormalization", [source, *names], output, epsilon=1e-3)


def assert_matches_onnx(model: onnx.ModelProto, x: np.ndarray) -> None:
    """Our reference on the converted graph computes what ONNX's reference computes on the model."""
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0].reshape(-1)
    graph = parse_model(graph_from_onnx(model.SerializeToString()).to_bytes())
    data = x.tobytes() if graph.input_type == InputType.U8 else x.astype(">f4").tobytes()
    prediction = run(graph, data)
    np.testing.assert_allclose(prediction.scores, expected, rtol=2e-5, atol=1e-6)
    assert prediction.predicted == int(np.argmax(expected))


@pytest.fixture(scope="module")
def image_model() -> onnx.ModelProto:
    """Conv + folded BatchNorm, a conv bias given as a separate Add, a residual Add, both pools with padding,
    no-op nodes, Flatten, Gemm with alpha/beta/transB=0, MatMul + Add + folded BatchNorm, a Reshape whose
    target is computed from Shape, and Softmax."""
    weights = {
        "w1": tensor(4, 2, 3, 3), "b1": tensor(4), **batch_norm_weights("bn1", 4),
        "w2": tensor(4, 4, 3, 3), "b2": tensor(1, 4, 1, 1),
        "wg": tensor(16, 6), "cg": tensor(6),
        "wm": tensor(6, 5), "bm": tensor(5), **batch_norm_weights("bn2", 5),
        "minus_one": np.array([-1], dtype=np.int64), "zero": np.array(0, dtype=np.int64),
        "axes": np.array([0], dtype=np.int64),
    }  # fmt: skip
    nodes = [
        node("Conv", ["x", "w1", "b1"], "c1", pads=[1, 1, 1, 1]),
        batch_norm("bn1", "c1", "n1"),
        node("Relu", ["n1"], "r1"),
        node("Conv", ["r1", "w2"], "c2", pads=[1, 1, 1, 1], strides=[1, 1]),
        node("Add", ["b2", "c2"], "c2b"),
        node("Add", ["c2b", "r1"], "residual"),
        node("Tanh", ["residual"], "t"),
        node("MaxPool", ["t"], "m", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        node("AveragePool", ["m"], "a1", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
        node("AveragePool", ["a1"], "a2", kernel_shape=[2, 2], strides=[2, 2]),
        node("Dropout", ["a2"], "d"),
        node("Identity", ["d"], "i"),
        node("Flatten", ["i"], "f", axis=1),
        node("Gemm", ["f", "wg", "cg"], "g", alpha=0.5, beta=2.0),
        node("MatMul", ["g", "wm"], "mm"),
        node("Add", ["mm", "bm"], "mb"),
        batch_norm("bn2", "mb", "n2"),
        node("Sigmoid", ["n2"], "s"),
        node("Shape", ["s"], "shape"),
        node("Gather", ["shape", "zero"], "batch"),
        node("Unsqueeze", ["batch", "axes"], "batch_1d"),
        node("Concat", ["batch_1d", "minus_one"], "target", axis=0),
        node("Reshape", ["s", "target"], "flat"),
        node("Softmax", ["flat"], "y"),
    ]
    return onnx_model(nodes, ["batch", 2, 8, 8], ["batch", 5], weights)


@pytest.fixture(scope="module")
def byte_model() -> onnx.ModelProto:
    """A u8 input through Cast, a strided Conv, GlobalAveragePool, and Softmax of opset 11 (over the
    flattened tail)."""
    weights = {"w": tensor(3, 1, 3, 3, low=-0.01, high=0.01), "b": tensor(3), "wg": tensor(3, 4), "cg": tensor(4)}
    nodes = [
        node("Cast", ["x"], "xf", to=TensorProto.FLOAT),
        node("Conv", ["xf", "w", "b"], "c", strides=[2, 2]),
        node("GlobalAveragePool", ["c"], "p"),
        node("Flatten", ["p"], "f"),
        node("Gemm", ["f", "wg", "cg"], "g"),
        node("Softmax", ["g"], "y", axis=1),
    ]
    return onnx_model(nodes, [1, 1, 7, 7], [1, 4], weights, input_type=TensorProto.UINT8, opset=11)


@pytest.fixture(scope="module")
def token_model() -> onnx.ModelProto:
    """A small transformer as exporters write one: token ids and an attention mask (int64) in; an embedding
    table, LayerNormalization, attention with two heads (Reshape, Transpose, MatMul of two values, the mask
    as an additive bias, Softmax over the last axis), Erf and Sqrt, then mean pooling over the mask and L2
    normalization (ReduceSum, Clip, Div, ReduceL2)."""
    weights = {
        "table": tensor(20, 8), "position": tensor(4, 8), "gamma": tensor(8, low=0.5, high=1.5), "beta": tensor(8),
        "wq": tensor(8, 8), "bq": tensor(8), "heads": np.array([1, 4, 2, 4], np.int64), "rows": np.array([1, 4, 8], np.int64),
        "two": np.array(2.0, np.float32), "one": np.array(1.0, np.float32), "big": np.array(-1e9, np.float32),
        "axes_12": np.array([1, 2], np.int64), "axis_2": np.array([2], np.int64), "axis_1": np.array([1], np.int64),
        "tiny": np.array(1e-9, np.float32),
    }  # fmt: skip
    nodes = [
        node("Gather", ["table", "input_ids"], "e"),
        node("Add", ["e", "position"], "e2"),
        node("LayerNormalization", ["e2", "gamma", "beta"], "h", epsilon=1e-5),
        node("MatMul", ["h", "wq"], "q0"),
        node("Add", ["bq", "q0"], "q"),
        node("Reshape", ["q", "heads"], "q1"),
        node("Transpose", ["q1"], "qh", perm=[0, 2, 1, 3]),
        node("Transpose", ["q1"], "kh", perm=[0, 2, 3, 1]),
        node("MatMul", ["qh", "kh"], "s"),
        node("Div", ["s", "two"], "s2"),
        node("Cast", ["attention_mask"], "m", to=TensorProto.FLOAT),
        node("Sub", ["one", "m"], "im"),
        node("Mul", ["im", "big"], "mb"),
        node("Unsqueeze", ["mb", "axes_12"], "mb4"),
        node("Add", ["s2", "mb4"], "s3"),
        node("Softmax", ["s3"], "p", axis=-1),
        node("MatMul", ["p", "qh"], "c"),
        node("Transpose", ["c"], "c2", perm=[0, 2, 1, 3]),
        node("Reshape", ["c2", "rows"], "c3"),
        node("Erf", ["c3"], "r"),
        node("Mul", ["c3", "r"], "g"),
        node("Sqrt", ["g"], "sq"),
        node("Unsqueeze", ["m", "axis_2"], "mm"),
        node("Mul", ["sq", "mm"], "pm"),
        node("ReduceSum", ["pm", "axis_1"], "total", keepdims=0),
        node("ReduceSum", ["mm", "axis_1"], "count", keepdims=0),
        node("Clip", ["count", "tiny"], "clipped"),
        node("Div", ["total", "clipped"], "mean"),
        node("ReduceL2", ["mean", "axis_1"], "norm", keepdims=1),
        node("Div", ["mean", "norm"], "y"),
    ]
    graph = helper.make_graph(
        nodes,
        "tokens",
        [helper.make_tensor_value_info(name, TensorProto.INT64, [1, 4]) for name in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        initializer=[numpy_helper.from_array(array, name) for name, array in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    return model


def test_a_transformer_computes_what_onnx_computes_and_the_vm_the_same(token_model, inference):
    graph = graph_from_onnx(token_model.SerializeToString())
    assert graph.input_type == InputType.I32 and graph.input_shape == (2, 4)
    assert [n.op for n in graph.nodes][:2] == [Op.SELECT, Op.SELECT]  # the ids and the mask, stacked
    for mask in ([1, 1, 1, 1], [1, 1, 0, 0]):
        ids, mask = RNG.integers(0, 20, 4), np.array(mask)
        expected = ReferenceEvaluator(token_model).run(None, {"input_ids": ids[None], "attention_mask": mask[None]})[0]
        data = np.concatenate([ids, mask]).astype(">i4").tobytes()
        prediction = run(graph, data)
        np.testing.assert_allclose(prediction.scores, expected.reshape(-1), rtol=2e-5, atol=1e-6)
        assert vm_prediction(inference, graph.to_bytes(), data).to_bytes() == prediction.to_bytes()


def test_every_op_of_the_graph_is_reached_from_onnx(image_model, byte_model, token_model):
    graphs = [graph_from_onnx(model.SerializeToString()) for model in (image_model, byte_model, token_model)]
    assert {n.op for graph in graphs for n in graph.nodes} == set(Op)
    image = graphs[0]
    # Both BatchNorms and the separate bias vanish into the weights; Dropout, Identity and the shape ops vanish.
    assert [n.op for n in image.nodes].count(Op.LINEAR) == 2 and len(image.nodes) == 13
    assert image.input_shape == (2, 8, 8) and image.input_type == InputType.F32
    assert graphs[1].input_type == InputType.U8 and graphs[1].input_shape == (1, 7, 7)


def test_converted_graphs_compute_what_onnx_computes(image_model, byte_model):
    for _ in range(3):
        assert_matches_onnx(image_model, tensor(1, 2, 8, 8, low=-2, high=2))
        assert_matches_onnx(byte_model, RNG.integers(0, 256, (1, 1, 7, 7), dtype=np.uint8))


def single(op_node, input_shape, output_shape, weights=None, extra_nodes=(), **options) -> bytes:
    return onnx_model([*extra_nodes, op_node], input_shape, output_shape, weights, **options).SerializeToString()


UNSUPPORTED = {
    "an op the graph lacks": (single(node("LeakyRelu", ["x"], "y"), [1, 4], [1, 4]), "LeakyRelu", "the_y"),
    "a grouped conv": (
        single(node("Conv", ["x", "w"], "y", group=2), [1, 2, 4, 4], [1, 2, 2, 2], {"w": tensor(2, 1, 3, 3)}),
        "group=2",
        "the_y",
    ),
    "a dilated conv": (
        single(node("Conv", ["x", "w"], "y", dilations=[2, 2]), [1, 1, 6, 6], [1, 1, 2, 2], {"w": tensor(1, 1, 3, 3)}),
        "dilations",
        "the_y",
    ),
    "asymmetric padding": (
        single(node("Conv", ["x", "w"], "y", pads=[0, 0, 1, 1]), [1, 1, 4, 4], [1, 1, 3, 3], {"w": tensor(1, 1, 2, 2)}),
        "pads",
        "the_y",
    ),
    "ceil_mode": (single(node("MaxPool", ["x"], "y", kernel_shape=[2, 2], ceil_mode=1), [1, 1, 5, 5], [1, 1, 3, 3]),
                  "ceil_mode", "the_y"),
    "an average that excludes padding": (
        single(node("AveragePool", ["x"], "y", kernel_shape=[3, 3], pads=[1, 1, 1, 1]), [1, 1, 4, 4], [1, 1, 4, 4]),
        "count_include_pad",
        "the_y",
    ),
    "an Add that broadcasts across the batch": (
        single(node("Add", ["x", "k"], "y"), [1, 4], [3, 4], {"k": tensor(3, 4)}), "across the batch", "the_y",
    ),
    "a Gather along another axis": (
        single(node("Gather", ["w", "x"], "y", axis=1), [1, 4], [3, 1, 4], {"w": tensor(3, 5)},
               input_type=TensorProto.INT64),
        "another axis", "the_y",
    ),
    "a Where (a mask built in the graph)": (
        single(node("Where", ["c", "x", "x"], "y"), [1, 4], [1, 4], {"c": np.array([True, False, True, True])}),
        "Where", "the_y",
    ),
    "a BatchNorm after a ReLU": (
        single(batch_norm("bn", "r", "y"), [1, 3], [1, 3], batch_norm_weights("bn", 3), [node("Relu", ["x"], "r")]),
        "cannot be folded",
        "the_y",
    ),
    "a softmax over a middle axis": (single(node("Softmax", ["x"], "y", axis=1), [1, 2, 3, 3], [1, 2, 3, 3]),
                                     "only over all or the last axis", "the_y"),
    "a Flatten that keeps channels": (single(node("Flatten", ["x"], "y", axis=2), [1, 2, 3, 3], [2, 9]),
                                      "only to [1, N]", "the_y"),
    "a Reshape that moves the batch": (
        single(node("Reshape", ["x", "s"], "y"), [1, 8], [2, 4], {"s": np.array([2, 4], np.int64)}),
        "the batch must stay first",
        "the_y",
    ),
    "a Transpose that moves the batch": (single(node("Transpose", ["x"], "y", perm=[1, 0]), [1, 4], [4, 1]),
                                         "moves the batch", "the_y"),
    "a MatMul by a tensor of rank 3": (
        single(node("MatMul", ["x", "w"], "y"), [1, 4], [2, 1, 3], {"w": tensor(2, 4, 3)}), "only by a matrix", "the_y",
    ),
    "a Cast to integers": (single(node("Cast", ["x"], "y", to=TensorProto.INT32), [1, 4], [1, 4]), "Cast to INT32",
                           "the_y"),
    "a custom domain": (
        single(
            helper.make_node("Gelu", ["x"], ["y"], name="the_y", domain="com.microsoft"),
            [1, 4],
            [1, 4],
            domains=["com.microsoft"],
        ),
        "com.microsoft.Gelu",
        "the_y",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", UNSUPPORTED, ids=list(UNSUPPORTED))
def test_unsupported_constructs_name_the_op_and_the_node(case):
    data, reason, node_name = UNSUPPORTED[case]
    with pytest.raises(UnsupportedModelError) as raised:
        graph_from_onnx(data)
    message = str(raised.value)
    assert reason in message and (f"'{node_name}'" in message if node_name else True), message


def lstm_classifier_onnx() -> bytes:
    """An LSTM classifier as PyTorch exports it (lstm_unsupported.onnx of the issue): batch-first input
    transposed to the sequence first, the zero state built by Expand from its Shape, LSTM, the last step, Linear."""
    import io
    import warnings

    import torch
    from torch import nn

    class LstmClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 16, batch_first=True)
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(LstmClassifier().eval(), (torch.zeros(1, 5, 8),), buffer, dynamo=False)
    return buffer.getvalue()


def test_a_refusal_lists_every_unsupported_operator_leading_with_the_one_computing_on_the_data():
    with pytest.raises(UnsupportedModelError) as raised:
        graph_from_onnx(lstm_classifier_onnx())
    message = str(raised.value)
    assert message.startswith(
        "4 nodes of this model are not supported. The graph format has no such op: LSTM at node '/lstm/LSTM'; "
        "Expand at nodes '/lstm/Expand', '/lstm/Expand_1'."
    ), message
    transpose = "Transpose at node '/lstm/Transpose' is not supported: a Transpose [1, 0, 2] that moves the batch axis"
    assert transpose in message
    # what follows the LSTM (Squeeze, Transpose, Gather, the Linear) is not blamed for it
    assert "Gemm" not in message and "Squeeze" not in message and "Transpose_1" not in message
    listed = raised.value.details["unsupported"]
    assert [(item["op"], item["node"]) for item in listed] == [
        ("Transpose", "/lstm/Transpose"), ("Expand", "/lstm/Expand"), ("Expand", "/lstm/Expand_1"), ("LSTM", "/lstm/LSTM"),
    ]  # fmt: skip


def test_several_missing_ops_are_all_named_at_once():
    model = onnx_model(
        [node("LeakyRelu", ["x"], "a"), node("Relu", ["a"], "b"), node("HardSwish", ["b"], "y")], [1, 4], [1, 4]
    )
    with pytest.raises(UnsupportedModelError) as raised:
        graph_from_onnx(model.SerializeToString())
    assert str(raised.value) == (
        "2 nodes of this model are not supported. The graph format has no such op: LeakyRelu at node 'the_a'; "
        "HardSwish at node 'the_y'."
    )


def test_models_the_graph_cannot_hold_are_refused():
    two_inputs = helper.make_model(
        helper.make_graph(
            [node("Add", ["x", "z"], "y")],
            "two",
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, size]) for name, size in (("x", 4), ("z", 1))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        )
    )
    with pytest.raises(UnsupportedModelError, match="2 inputs of different types or shapes"):
        graph_from_onnx(two_inputs.SerializeToString())
    with pytest.raises(UnsupportedModelError, match="batch of 3"):
        graph_from_onnx(single(node("Relu", ["x"], "y"), [3, 4], [3, 4]))
    with pytest.raises(UnsupportedModelError, match="'width' is not a fixed size"):
        graph_from_onnx(single(node("Relu", ["x"], "y"), [1, "width"], [1, "width"]))
    with pytest.raises(UnsupportedModelError, match="no operations"):
        graph_from_onnx(single(node("Identity", ["x"], "y"), [1, 4], [1, 4]))


def test_malformed_files_are_bad_input_with_a_reason(image_model):
    data = image_model.SerializeToString()
    for broken in (b"", b"\x08\x07garbage" * 10, data[: len(data) // 2], data[:-3], bytes(range(256))):
        with pytest.raises(OnnxFormatError) as raised:
            graph_from_onnx(broken)
        assert raised.value.message and raised.value.kind == "bad_input"


def test_weights_in_external_files_are_refused_before_anything_reads_them(image_model):
    model = onnx.ModelProto()
    model.CopyFrom(image_model)
    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="/etc/passwd")
    with pytest.raises(OnnxFormatError, match="external files"):
        graph_from_onnx(model.SerializeToString())


def test_weights_that_do_not_fit_are_bad_input():
    data = single(node("Gemm", ["x", "w"], "y", transB=1), [1, 4], [1, 3], {"w": tensor(3, 5)})
    with pytest.raises(OnnxFormatError, match="does not fit an input of 4 values"):
        graph_from_onnx(data)


def test_opml_convert_takes_onnx(tmp_path, byte_model):
    source = tmp_path / "model.onnx"
    source.write_bytes(byte_model.SerializeToString())
    out = tmp_path / "model.bin"
    result = CliRunner().invoke(opml_cli, ["convert", str(source), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["format"] == "graph" and report["model_root"] == "0x" + model_root(out.read_bytes()).hex()
    refused = CliRunner().invoke(opml_cli, ["convert", str(source), "-o", str(out), "--format", "seed"])
    assert refused.exit_code == 2 and "graph-format file, not to seed" in refused.output


def mutated(model: onnx.ModelProto, rng: random.Random) -> bytes:
    """The model with one attribute, op type, node input, weight shape or input dimension changed."""
    model = copy.deepcopy(model)
    node = rng.choice(model.graph.node)
    choice = rng.randrange(5)
    if choice == 0 and node.attribute:
        attribute = rng.choice(node.attribute)
        if attribute.type == onnx.AttributeProto.INTS:
            del attribute.ints[:]
            attribute.ints.extend(rng.randint(-3, 6) for _ in range(rng.randint(0, 5)))
        elif attribute.type == onnx.AttributeProto.INT:
            attribute.i = rng.randint(-5, 6)
    elif choice == 1:
        node.op_type = rng.choice(["Relu", "Conv", "Gemm", "MatMul", "Add", "Flatten", "Softmax", "MaxPool", "Shape"])
    elif choice == 2 and node.input:
        names = [item.name for item in model.graph.initializer] + [out for n in model.graph.node for out in n.output]
        node.input[rng.randrange(len(node.input))] = rng.choice(names)
    elif choice == 3:
        weight = rng.choice(model.graph.initializer)
        shape = list(numpy_helper.to_array(weight).shape) or [1]
        shape[rng.randrange(len(shape))] = rng.randint(0, 5)
        weight.CopyFrom(numpy_helper.from_array(np.ones(shape, numpy_helper.to_array(weight).dtype), weight.name))
    else:
        rng.choice(model.graph.input[0].type.tensor_type.shape.dim).dim_value = rng.randint(0, 9)
    return model.SerializeToString()


def test_a_mutated_model_is_converted_or_refused_as_bad_input(image_model, byte_model):
    rng = random.Random(3)
    outcomes = set()
    for _ in range(300):
        try:
            convert_model(mutated(rng.choice([image_model, byte_model]), rng), SourceFormat.ONNX)
            outcomes.add("converted")
        except BadInput as error:
            outcomes.add(type(error).__name__)
    assert outcomes >= {"converted", "OnnxFormatError", "UnsupportedModelError"}
