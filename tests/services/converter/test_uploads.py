"""Uploads that succeed, over real HTTP: the seed's state_dict and model file, an MLP of another width,
the CNN, re-uploads, listing, fetching files, restarts, metrics and readiness."""

import numpy as np
import torch
from eth_utils import keccak

from opml.models.formats import model_root, seed_model_bytes
from opml.models.reference import predict
from opml.models.training import SeedMLP, SmallCNN, with_softmax

from ...models.conftest import random_u8
from ...models.test_graph import randomize_batch_norms, torch_scores
from .conftest import SEED, running_converter, state_dict_bytes

SEED_STATE_DICT = (SEED / "mnist-small.state_dict").read_bytes()
SEED_MODEL = (SEED / "model.bin").read_bytes()


def assert_predicts_like_pytorch(model_file: bytes, network: torch.nn.Module, input_shape: tuple[int, ...]) -> None:
    """The stored file, run by the reference on raw pixels, gives PyTorch's prediction and scores."""
    rng = np.random.default_rng(3)
    for _ in range(4):
        pixels = random_u8(rng, int(np.prod(input_shape)))
        expected = torch_scores(with_softmax(network).eval(), np.frombuffer(pixels, np.uint8).reshape(input_shape))
        prediction = predict(model_file, pixels)
        assert prediction.predicted == int(np.argmax(expected))
        np.testing.assert_allclose(prediction.scores, expected, rtol=1e-4, atol=1e-6)


def test_the_seed_state_dict_becomes_the_seed_model_file(converter):
    response = converter.upload(SEED_STATE_DICT, filename="mnist-small.state_dict")
    assert response.status_code == 201, response.text
    body = response.json()
    root = "0x" + model_root(SEED_MODEL).hex()
    assert body["id"] == body["root"] == root and response.headers["location"] == f"/models/{root}"
    assert body["file_hash"] == "0x" + keccak(SEED_MODEL).hex() and body["size"] == len(SEED_MODEL)
    assert (body["format"], body["source_format"], body["onchain_model_id"]) == ("seed", "state_dict", None)
    assert body["file_url"] == f"{converter.url}/models/{root}/file"
    summary = body["summary"]
    assert [layer["op"] for layer in summary["layers"]] == ["linear", "relu", "linear", "softmax"]
    assert [layer["output_shape"] for layer in summary["layers"]] == [[20], [20], [10], [10]]
    assert summary["parameter_count"] == 784 * 20 + 20 + 20 * 10 + 10
    assert (summary["input_type"], summary["input_bytes"], summary["output_size"]) == ("u8", 784, 10)

    file = converter.http.get(f"/models/{root}/file")
    assert file.status_code == 200 and file.content == SEED_MODEL
    assert file.headers["content-type"] == "application/octet-stream"
    assert file.headers["etag"] == f'"{body["file_hash"]}"'
    assert predict(file.content, (SEED / "input_7.bin").read_bytes()).predicted == 7
    assert converter.http.get(f"/models/{root}").json() == body
    assert converter.http.get(f"/models/{root.upper().replace('0X', '0x')}").json() == body


def test_uploading_a_stored_model_again_changes_nothing(converter):
    first = converter.upload(SEED_STATE_DICT)
    assert first.status_code in (200, 201)
    count, files = converter.model_count(), converter.stored_files()
    again = converter.upload(SEED_STATE_DICT)
    assert again.status_code == 200 and again.json() == first.json() and "location" not in again.headers
    as_file = converter.upload(SEED_MODEL, format="seed")
    assert as_file.status_code == 200 and as_file.json()["id"] == first.json()["id"]
    assert converter.model_count() == count and converter.stored_files() == files


def test_an_mlp_of_another_width_takes_its_width_from_its_tensors(converter):
    torch.manual_seed(5)
    network = SeedMLP(hidden=7).eval()
    body = converter.created(state_dict_bytes(network))
    assert body["format"] == "seed" and body["summary"]["layers"][0]["output_shape"] == [7]
    model_file = converter.http.get(f"/models/{body['id']}/file").content
    assert model_file == seed_model_bytes(network.state_dict())
    assert_predicts_like_pytorch(model_file, network, (784,))


def test_the_cnn_state_dict_becomes_a_graph_that_predicts_like_pytorch(converter):
    torch.manual_seed(6)
    network = randomize_batch_norms(SmallCNN())
    with torch.no_grad():
        network.conv1.weight.mul_(1 / 255)  # a model that takes raw pixels, as trained ones do
    upload = state_dict_bytes(network)
    body = converter.created(upload)
    assert (body["format"], body["source_format"]) == ("graph", "state_dict")
    layers = body["summary"]["layers"]
    assert [layer["op"] for layer in layers][:3] == ["conv2d", "relu", "maxpool2d"]  # BatchNorm folded away
    assert "batchnorm" not in {layer["op"] for layer in layers}
    assert layers[0]["attributes"] == {"stride_h": 1, "stride_w": 1, "pad_h": 2, "pad_w": 2}
    assert layers[0]["output_shape"] == [4, 28, 28] and body["summary"]["input_shape"] == [1, 28, 28]
    assert_predicts_like_pytorch(converter.http.get(f"/models/{body['id']}/file").content, network, (1, 28, 28))
    named = converter.upload(upload, format="state_dict", architecture="cnn")
    assert named.status_code == 200 and named.json()["id"] == body["id"]


def test_models_are_listed_newest_first_in_pages(converter):
    ids = []
    for hidden in (3, 4, 5):
        torch.manual_seed(hidden)
        ids.append(converter.created(state_dict_bytes(SeedMLP(hidden=hidden)))["id"])
    total = converter.model_count()
    first = converter.http.get("/models", params={"limit": 2}).json()
    second = converter.http.get("/models", params={"limit": 2, "offset": 2}).json()
    assert first["total"] == second["total"] == total
    assert [item["id"] for item in first["items"]] == ids[::-1][:2]
    assert second["items"][0]["id"] == ids[0]
    everything = converter.http.get("/models", params={"limit": 100}).json()["items"]
    assert len(everything) == total and len({item["id"] for item in everything}) == total
    stamps = [item["created_at"] for item in everything]
    assert stamps == sorted(stamps, reverse=True)
    assert converter.http.get("/models", params={"offset": total}).json() == {"items": [], "total": total}


def test_metrics_count_uploads_and_stored_bytes_and_readiness_is_green(converter):
    converter.upload(SEED_STATE_DICT)
    converter.upload(b"not a model")
    assert converter.http.get("/readyz").json() == {"ready": True, "checks": {"database": "ok", "store": "ok"}}
    metrics = converter.http.get("/metrics").text
    assert 'converter_models_uploaded_total{format="state_dict",outcome="existing"}' in metrics
    assert 'converter_models_uploaded_total{format="unknown",outcome="rejected"}' in metrics
    stored = sum(item["size"] for item in converter.http.get("/models", params={"limit": 100}).json()["items"])
    assert f"converter_model_bytes_stored {float(stored)}" in metrics


def test_stored_models_survive_a_restart(tmp_path):
    with running_converter(tmp_path) as service:
        body = service.created(SEED_STATE_DICT)
    with running_converter(tmp_path) as service:
        again = service.http.get(f"/models/{body['id']}").json()
        assert again.pop("file_url") == f"{service.url}/models/{body.pop('file_url').split('/models/')[1]}"
        assert again == body
        assert service.http.get(f"/models/{body['id']}/file").content == SEED_MODEL
        assert f"converter_model_bytes_stored {float(len(SEED_MODEL))}" in service.http.get("/metrics").text
