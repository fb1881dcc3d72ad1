"""Our graph format: conversion from PyTorch, VM == reference bit for bit, reference ~ PyTorch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from opml.models.convert import UnsupportedModelError, graph_from_module
from opml.models.formats import Graph, InputType, Node, Op, parse_model
from opml.models.reference import run
from opml.models.training import SmallCNN, with_softmax

from .conftest import random_u8, vm_prediction


class EveryOp(nn.Module):
    """Uses every op the converter supports, BatchNorm in both foldable places included."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.norm1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, stride=1, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2, stride=2, padding=1)
        self.average = nn.AvgPool2d(3, stride=1, padding=1)
        self.fc1 = nn.Linear(4 * 5 * 5, 12)
        self.norm2 = nn.BatchNorm1d(12)
        self.fc2 = nn.Linear(12, 6)

    def forward(self, x):
        x = F.relu(self.norm1(self.conv1(x)))
        x = x + self.conv2(x)
        x = self.average(self.pool(torch.tanh(x)))
        x = x.view(x.size(0), -1)
        x = torch.sigmoid(self.norm2(self.fc1(x)))
        return F.softmax(self.fc2(x), dim=1)


def randomize_batch_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    for layer in model.modules():
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = layer.num_features
            layer.running_mean.copy_(torch.randn(n, generator=generator))
            layer.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            layer.weight.data.copy_(torch.randn(n, generator=generator))
            layer.bias.data.copy_(torch.randn(n, generator=generator))
    return model.eval()


def torch_scores(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x.astype(np.float32))[None]).numpy()[0]


@pytest.fixture(scope="module")
def every_op():
    torch.manual_seed(1)
    model = randomize_batch_norms(EveryOp())
    graph = graph_from_module(model, (2, 8, 8), InputType.F32)
    return model, graph.to_bytes()


# The ops graph_from_module emits; the transformer ops come from ONNX (tests/models/test_transformer_ops.py).
TORCH_FX_OPS = {
    Op.LINEAR, Op.CONV2D, Op.RELU, Op.MAXPOOL2D, Op.AVGPOOL2D, Op.FLATTEN, Op.ADD, Op.SOFTMAX, Op.SIGMOID, Op.TANH,
}  # fmt: skip


def test_every_op_is_converted(every_op):
    _, data = every_op
    ops = {node.op for node in parse_model(data).nodes}
    assert ops == TORCH_FX_OPS, f"not converted: {TORCH_FX_OPS - ops}"


def test_every_op_model_vm_equals_reference_and_pytorch(inference, every_op):
    model, data = every_op
    rng = np.random.default_rng(5)
    for _ in range(4):
        x = (rng.standard_normal((2, 8, 8)) * 3).astype(np.float32)
        input = x.astype(">f4").tobytes()
        reference = run(parse_model(data), input)
        assert vm_prediction(inference, data, input).to_bytes() == reference.to_bytes()
        expected = torch_scores(model, x)
        assert reference.predicted == int(expected.argmax())
        np.testing.assert_allclose(reference.scores, expected, atol=2e-5)


def test_cnn_vm_equals_reference_and_pytorch(inference):
    torch.manual_seed(2)
    model = with_softmax(randomize_batch_norms(SmallCNN()))
    for parameter in model.parameters():
        parameter.data.mul_(0.05)  # keep raw-pixel activations in a sensible range
    data = graph_from_module(model, (1, 28, 28), InputType.U8).to_bytes()
    rng = np.random.default_rng(6)
    for _ in range(2):
        image = random_u8(rng, 784)
        reference = run(parse_model(data), image)
        assert vm_prediction(inference, data, image).to_bytes() == reference.to_bytes()
        expected = torch_scores(model, np.frombuffer(image, np.uint8).reshape(1, 28, 28))
        assert reference.predicted == int(expected.argmax())
        np.testing.assert_allclose(reference.scores, expected, atol=1e-4)


EDGE_VALUES = np.array(
    [0.0, -0.0, 1e-8, -1e-8, 0.5, -0.5, 1, -1, 8.99, 9.01, -9.01, 20, -20, 87.3, -87.3, 88.7, -88.7, 88.73, -88.73,
     100, -100, 103.9, -103.9, 104, -104, 1e30, -1e30, np.inf, -np.inf, np.nan, 1.4e-45, -1.4e-45],
    dtype=np.float32,
)  # fmt: skip


@pytest.mark.parametrize("op", [Op.SIGMOID, Op.TANH, Op.SOFTMAX])
def test_transcendental_functions_are_bit_exact(inference, op):
    values = np.concatenate([EDGE_VALUES, np.random.default_rng(7).standard_normal(200).astype(np.float32) * 30])
    if op == Op.SOFTMAX:
        values = values[np.isfinite(values) & (np.abs(values) < 1e6)]
    graph = Graph(InputType.F32, (len(values),), [], [Node(op, [0])])
    input = values.astype(">f4").tobytes()
    vm = vm_prediction(inference, graph.to_bytes(), input)
    reference = run(graph, input)
    assert vm.to_bytes() == reference.to_bytes()
    finite = np.isfinite(values)
    expected = {Op.SIGMOID: lambda v: 1 / (1 + np.exp(-v.astype(np.float64))), Op.TANH: np.tanh}.get(op)
    if expected is not None:
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(reference.scores[finite], expected(values[finite]), atol=2e-6)


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return torch.exp(self.fc(x))


def test_an_unsupported_op_names_the_op_and_the_node():
    with pytest.raises(UnsupportedModelError, match=r"function exp at node 'exp'"):
        graph_from_module(Unsupported(), (4,))


def test_a_batch_norm_that_cannot_be_folded_is_refused():
    model = nn.Sequential(nn.ReLU(), nn.BatchNorm1d(4))
    with pytest.raises(UnsupportedModelError, match="BatchNorm1d that does not directly follow"):
        graph_from_module(model, (4,))


def test_grouped_convolutions_are_refused():
    with pytest.raises(UnsupportedModelError, match="groups"):
        graph_from_module(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)), (2, 5, 5))
