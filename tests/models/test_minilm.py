"""all-MiniLM-L6-v2 from its PyPI package: converted through ONNX, the reference against the packaged
model run by sentence-transformers, and the VM against the reference bit for bit.

A run of the whole model is about 1.6e10 steps (a minute or two), so the default suite runs the VM on
the first layer over 8 tokens; `make test-minilm` (OPML_FULL_MODEL=1, called by .ci/run) runs the
whole model in the VM on several sentences.
"""

import itertools
import os

import numpy as np
import pytest

from opml.models import minilm
from opml.models.formats import InputType, Op, parse_model
from opml.models.ingest import SourceFormat, convert_model
from opml.models.reference import run

from .conftest import run_in_vm

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing the violin.",
]
FULL_MODEL = pytest.mark.skipif(not os.environ.get("OPML_FULL_MODEL"), reason="make test-minilm runs the whole model")


@pytest.fixture(scope="session")
def model_file() -> bytes:
    return minilm.model_file()


@pytest.fixture(scope="session")
def one_layer() -> bytes:
    return minilm.model_file(length=8, layers=1)


@pytest.fixture(scope="session")
def sentence_transformer(tmp_path_factory):
    """The packaged model as sentence-transformers runs it (PyTorch), from the package's own files."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    folder = tmp_path_factory.mktemp("all-MiniLM-L6-v2")
    minilm.packaged_files().extractall(folder)
    return SentenceTransformer(str(folder), device="cpu")


def reference_embedding(model: bytes, text: str, length: int = minilm.SEQUENCE_LENGTH) -> np.ndarray:
    return run(parse_model(model), minilm.encode_text(text, length)).scores


def test_the_input_is_token_ids_then_the_mask():
    ids, mask = minilm.token_arrays("Hello world", length=8)
    assert ids[0] == 101 and list(mask) == [1, 1, 1, 1, 0, 0, 0, 0] and ids[3] == 102 and not ids[4:].any()
    data = minilm.encode_text("Hello world", length=8)
    assert np.array_equal(np.frombuffer(data, ">i4"), np.concatenate([ids, mask]))


def test_the_converted_model(model_file):
    graph = parse_model(model_file)
    assert (graph.input_type, graph.input_shape) == (InputType.I32, (2, minilm.SEQUENCE_LENGTH))
    assert sum(tensor.size for tensor in graph.tensors) > 22_000_000  # every weight, the embedding table included
    ops = [node.op for node in graph.nodes]
    assert ops.count(Op.LAYERNORM) == 13 and ops.count(Op.MATMUL) == 12 and ops.count(Op.LINEAR) == 36
    assert reference_embedding(model_file, SENTENCES[0]).shape == (minilm.HIDDEN,)


def test_the_reference_is_the_packaged_model(model_file, sentence_transformer):
    """Cosine similarity >= 0.9999 with sentence-transformers on each sentence, and the same ranking of
    the sentence pairs by similarity."""
    ours = np.array([reference_embedding(model_file, text) for text in SENTENCES])
    theirs = sentence_transformer.encode(SENTENCES, normalize_embeddings=True)
    for mine, expected in zip(ours, theirs):
        assert np.dot(mine, expected) / np.linalg.norm(mine) / np.linalg.norm(expected) >= 0.9999
    pairs = list(itertools.combinations(range(len(SENTENCES)), 2))
    assert sorted(pairs, key=lambda p: np.dot(ours[p[0]], ours[p[1]])) == sorted(
        pairs, key=lambda p: np.dot(theirs[p[0]], theirs[p[1]])
    )


def test_both_onnx_exporters_give_the_same_graph_values(one_layer):
    """The dynamo exporter's graph (other node names and constants) computes what the TorchScript one's does."""
    dynamo = convert_model(minilm.export_onnx(length=8, layers=1, dynamo=True), SourceFormat.ONNX).data
    text = SENTENCES[1]
    np.testing.assert_allclose(reference_embedding(dynamo, text, 8), reference_embedding(one_layer, text, 8), atol=1e-6)


def test_the_first_layer_in_the_vm_is_the_reference(inference, one_layer):
    data = minilm.encode_text(SENTENCES[2], length=8)
    code, output, stderr = run_in_vm(inference, one_layer, data)
    assert code == 0, stderr
    assert output == run(parse_model(one_layer), data).to_bytes()


def test_a_model_too_large_for_the_model_region_is_refused_before_anything_runs(monkeypatch, one_layer):
    from opml.models import ingest

    monkeypatch.setattr(ingest, "MAX_MODEL_BYTES", len(one_layer) - 1)
    with pytest.raises(ingest.BadInput, match="model region holds at most"):
        convert_model(one_layer)


@FULL_MODEL
@pytest.mark.parametrize("text", SENTENCES[:3])
def test_the_whole_model_in_the_vm_is_the_reference(inference, model_file, text):
    from opml.vm.execution import Execution

    data = minilm.encode_text(text)
    result = Execution(inference, model=model_file, input=data).run()
    assert result.exit_code == 0, result.stderr
    assert result.output == run(parse_model(model_file), data).to_bytes()
