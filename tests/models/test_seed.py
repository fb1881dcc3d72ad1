"""The seed's own files: byte-identical conversion, and the VM agrees with the reference."""

import numpy as np
import pytest
import torch

from opml.models.formats import ModelFormatError, parse_model, seed_model_bytes
from opml.models.reference import predict
from opml.models.training import SeedMLP

from .conftest import SEED, random_u8, vm_prediction


def test_converting_the_seed_state_dict_is_byte_identical(seed_model):
    state_dict = torch.load(SEED / "mnist-small.state_dict", map_location="cpu", weights_only=True)
    assert seed_model_bytes(state_dict) == seed_model


def test_any_hidden_width_converts_and_parses():
    for hidden in (1, 7, 500):
        data = seed_model_bytes(SeedMLP(hidden=hidden).state_dict())
        graph = parse_model(data)
        assert [t.shape for t in graph.tensors] == [(hidden, 784), (hidden,), (10, hidden), (10,)]


def test_a_state_dict_that_is_not_the_seed_mlp_is_refused():
    try:
        seed_model_bytes({"conv.weight": torch.zeros(3)})
    except ModelFormatError as error:
        assert "fc1.weight" in str(error)
    else:
        raise AssertionError("no error")


def test_input_7_is_a_seven_in_the_vm_and_the_reference(inference, seed_model, input_7):
    reference = predict(seed_model, input_7)
    vm = vm_prediction(inference, seed_model, input_7)
    assert reference.predicted == vm.predicted == 7
    assert vm.to_bytes() == reference.to_bytes()
    assert abs(float(vm.scores.sum()) - 1) < 1e-5


def test_vm_equals_reference_bit_for_bit_on_100_random_inputs(inference, seed_model):
    rng = np.random.default_rng(11)
    for _ in range(100):
        image = random_u8(rng, 784)
        assert vm_prediction(inference, seed_model, image).to_bytes() == predict(seed_model, image).to_bytes()


def test_reference_matches_pytorch(seed_model, input_7):
    model = SeedMLP()
    model.load_state_dict(torch.load(SEED / "mnist-small.state_dict", map_location="cpu", weights_only=True))
    rng = np.random.default_rng(3)
    for image in [input_7] + [random_u8(rng, 784) for _ in range(20)]:
        with torch.no_grad():
            expected = torch.softmax(model(torch.tensor(np.frombuffer(image, np.uint8), dtype=torch.float32)[None]), 1)[
                0
            ]
        got = predict(seed_model, image)
        assert got.predicted == int(expected.argmax())
        np.testing.assert_allclose(got.scores, expected.numpy(), atol=1e-5)


def test_the_shipped_copies_are_the_seeds_files():
    shared = SEED.parents[2] / "shared" / "seed-artifacts"
    if not shared.exists():
        pytest.skip("shared/ is not beside this checkout")
    for ours, theirs in [("model.bin", "ggml-model-small-f32-big-endian.bin"), ("input_7.bin", "input_7"),
                         ("mnist-small.state_dict", "mnist-small.state_dict")]:  # fmt: skip
        assert (SEED / ours).read_bytes() == (shared / theirs).read_bytes(), ours
