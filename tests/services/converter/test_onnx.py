"""ONNX models exported from PyTorch here, uploaded over HTTP: the stored graph predicts what PyTorch
predicts (through the reference, and for one model through the VM, bit-exact with the reference),
with either exporter; an unsupported op is refused with its op type and node, and nothing is kept."""

import numpy as np
import pytest
import torch
from torch import nn

from opml.models.reference import predict
from opml.models.training import SeedMLP, SmallCNN, with_softmax

from ...models.conftest import random_u8, vm_prediction
from ...models.test_graph import EveryOp, randomize_batch_norms, torch_scores
from .conftest import onnx_bytes, state_dict_bytes


class Pixels(nn.Module):
    """A network that takes raw u8 pixels, as the seed's models do: the export starts with a Cast."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x):
        return self.network(x.float())


def float_input(x: np.ndarray) -> bytes:
    """An f32 model's input file: big-endian float32."""
    return x.astype(">f4").tobytes()


def assert_same_predictions(model_file: bytes, network: nn.Module, inputs: list[np.ndarray]) -> None:
    for x in inputs:
        expected = torch_scores(network, x)
        prediction = predict(model_file, float_input(x))
        assert prediction.predicted == int(np.argmax(expected))
        np.testing.assert_allclose(prediction.scores, expected, rtol=1e-4, atol=1e-6)


def uploaded_file(converter, data: bytes, **form) -> tuple[dict, bytes]:
    body = converter.created(data, **form)
    assert (body["format"], body["source_format"]) == ("graph", "onnx")
    return body, converter.http.get(f"/models/{body['id']}/file").content


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(11)


def test_the_seed_mlp_exported_to_onnx(converter, rng):
    torch.manual_seed(1)
    network = with_softmax(SeedMLP(hidden=16)).eval()
    body, model_file = uploaded_file(converter, onnx_bytes(network, torch.zeros(1, 784)))
    assert [layer["op"] for layer in body["summary"]["layers"]] == ["linear", "relu", "linear", "softmax"]
    assert (body["summary"]["input_type"], body["summary"]["input_bytes"]) == ("f32", 4 * 784)
    assert_same_predictions(model_file, network, [rng.uniform(0, 255, 784).astype(np.float32) for _ in range(4)])


@pytest.mark.parametrize(
    "options",
    [
        {"training": torch.onnx.TrainingMode.PRESERVE},  # both BatchNorms kept as nodes: folded by the importer
        {"dynamic_axes": {"x": {0: "batch"}}, "input_names": ["x"]},  # the flatten's shape computed from Shape
        {"dynamo": True},
    ],
    ids=["batch-norms-kept", "dynamic-batch", "dynamo"],
)
def test_every_op_exported_to_onnx_predicts_like_pytorch(converter, rng, options):
    torch.manual_seed(2)
    network = randomize_batch_norms(EveryOp())
    body, model_file = uploaded_file(converter, onnx_bytes(network, torch.zeros(1, 2, 8, 8), **options), format="onnx")
    ops = [layer["op"] for layer in body["summary"]["layers"]]
    assert {"conv2d", "add", "tanh", "maxpool2d", "avgpool2d", "sigmoid", "softmax"} <= set(ops)
    assert_same_predictions(model_file, network, [rng.uniform(-2, 2, (2, 8, 8)).astype(np.float32) for _ in range(4)])


def test_an_onnx_cnn_on_raw_pixels_runs_in_the_vm_as_in_pytorch(converter, inference, rng):
    torch.manual_seed(3)
    network = Pixels(with_softmax(randomize_batch_norms(SmallCNN())))
    with torch.no_grad():
        network.network[0].conv1.weight.mul_(1 / 255)
    body, model_file = uploaded_file(converter, onnx_bytes(network, torch.zeros(1, 1, 28, 28, dtype=torch.uint8)))
    assert (body["summary"]["input_type"], body["summary"]["input_bytes"]) == ("u8", 784)
    for _ in range(2):
        pixels = random_u8(rng, 784)
        reference = predict(model_file, pixels)
        assert vm_prediction(inference, model_file, pixels).to_bytes() == reference.to_bytes()
        with torch.no_grad():
            expected = network(torch.frombuffer(bytearray(pixels), dtype=torch.uint8).reshape(1, 1, 28, 28))[0]
        assert reference.predicted == int(expected.argmax())
        np.testing.assert_allclose(reference.scores, expected.numpy(), rtol=1e-4, atol=1e-6)


def test_an_unsupported_op_is_named_with_its_node_and_nothing_is_kept(converter):
    network = nn.Sequential(nn.Linear(8, 4), nn.LeakyReLU(), nn.Linear(4, 2)).eval()
    count, files = converter.model_count(), converter.stored_files()
    response = converter.upload(onnx_bytes(network, torch.zeros(1, 8)))
    assert response.status_code == 422
    problem = response.json()
    assert problem["error"] == "bad_input"
    assert "LeakyRelu at node '/1/LeakyRelu' is not supported" in problem["message"]
    assert converter.model_count() == count and converter.stored_files() == files


def test_a_declared_format_must_match_the_file(converter):
    network = nn.Sequential(nn.Linear(8, 4), nn.ReLU()).eval()
    as_state_dict = converter.upload(onnx_bytes(network, torch.zeros(1, 8)), format="state_dict")
    assert as_state_dict.status_code == 422 and "not a PyTorch state_dict" in as_state_dict.json()["message"]
    as_onnx = converter.upload(state_dict_bytes(network), format="onnx")
    assert as_onnx.status_code == 422 and "ONNX model" in as_onnx.json()["message"]
    with_architecture = converter.upload(onnx_bytes(network, torch.zeros(1, 8)), architecture="mlp")
    assert with_architecture.status_code == 422 and "applies to state_dicts" in with_architecture.json()["message"]
