"""The LLM model file ("OPLM", version 1): a llama-architecture model the guest reads from its model region.

The VM is big-endian; GGUF is little-endian. The file keeps every quantized (and F16) tensor
byte for byte as GGML lays it out (so the model root commits to the very blocks the GGUF
holds), and turns only the F32 tensors and the header into big-endian words, which the guest
loads directly. A guest reads a little-endian f16 as two byte loads, `b[0] | b[1] << 8`.

    offset  size
    0       u32 magic 0x4F504C4D ("OPLM"), u32 version = 1
    8       12 u32 of config (CONFIG_FIELDS, in that order; the two floats as their float32 bits)
    56      u32 tensor count = 4 + 9 * layers
    60      directory: per tensor 5 u32: type, rows, cols, offset, bytes
    ...     tensor data, each at an offset that is a multiple of DATA_ALIGNMENT, in directory
            order, zero bytes between; the file ends where the last tensor ends

All u32 are big-endian. Tensor i has the role TENSOR_ROLES says (the same order for every
model); a matrix is [rows, cols] = [outputs, inputs], row-major, each row's blocks contiguous
(GGML's order). A directory entry may repeat an earlier entry's type, shape, offset and size
exactly: the LM head tied to the token embedding is stored once.

Tensor types are GGML's numbers: F32 (0) big-endian floats; F16 (1) GGML's little-endian
halves; Q4_1 (3) blocks of 32 weights: f16 d, f16 m, 16 bytes whose low nibbles are weights
0-15 and high nibbles 16-31, w = q * d + m; Q8_0 (8) blocks of 32: f16 d, 32 int8, w = q * d.

The RoPE table (role `rope`, F32 [positions, head_dim]) is computed by the converter: row p is
cos(theta[p, 0..head_dim/2)) then sin(theta[p, 0..head_dim/2)), each the float32 nearest the
true value, with theta[p, i] = float32(p) * inv_freq[i] rounded to float32 and inv_freq[i] the
float32 nearest base^(-2i / head_dim) (Hugging Face's float32 angles). Both the guest and the
reference read it, so neither needs a sine.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ...errors import BadInput

MAGIC = 0x4F504C4D  # "OPLM"
VERSION = 1
DATA_ALIGNMENT = 32  # one Merkle leaf; every tensor starts 4-byte aligned in the model region
BLOCK_WEIGHTS = 32  # weights per Q4_1 / Q8_0 block

CONFIG_FIELDS = (
    "layers",
    "width",  # embedding length
    "ffn",  # feed-forward length
    "heads",
    "kv_heads",
    "head_dim",
    "vocab",
    "positions",  # rows of the RoPE table: the context length
    "rope_base",  # float32 bits
    "rms_epsilon",  # float32 bits
    "bos",
    "eos",
)
FLOAT_FIELDS = ("rope_base", "rms_epsilon")
DIRECTORY_ENTRY_WORDS = 5
GLOBAL_ROLES = ("token_embd", "output_norm", "output", "rope")
LAYER_ROLES = (
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
)
NORM_ROLES = ("output_norm", "attn_norm", "ffn_norm")

# Limits the guest checks too (guest/inference/llm_model.c): every size fits 32-bit arithmetic.
MAX_LAYERS = 256
MAX_WIDTH = 1 << 16
MAX_HEAD_DIM = 256
MAX_VOCAB = 1 << 24
MAX_POSITIONS = 1 << 16


class TensorType(IntEnum):
    """GGML's numbers for the types this format holds; any other is refused by name."""

    F32 = 0
    F16 = 1
    Q4_1 = 3
    Q8_0 = 8


BLOCK_BYTES = {TensorType.Q4_1: 20, TensorType.Q8_0: 34}


def row_bytes(tensor_type: TensorType, cols: int) -> int:
    """Bytes of one row of `cols` weights."""
    if tensor_type == TensorType.F32:
        return 4 * cols
    if tensor_type == TensorType.F16:
        return 2 * cols
    return cols // BLOCK_WEIGHTS * BLOCK_BYTES[tensor_type]


# Exit codes of the guest for a model file it refuses (those of the inference program, docs/models.md).
EXIT_BAD_MAGIC = 10
EXIT_BAD_VERSION = 11
EXIT_TRUNCATED_MODEL = 12
EXIT_BAD_MODEL = 13
EXIT_TRAILING_BYTES = 16


class LlmFormatError(BadInput):
    """A model file (or GGUF) that does not hold a model this format can run; the message says what is wrong,
    `exit_code` is the guest's exit code for the same file."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_MODEL):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class LlmConfig:
    layers: int
    width: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    positions: int
    rope_base: float  # a float32 value
    rms_epsilon: float  # a float32 value
    bos: int
    eos: int

    def words(self) -> list[int]:
        return [_f32_bits(getattr(self, f)) if f in FLOAT_FIELDS else getattr(self, f) for f in CONFIG_FIELDS]

    def validate(self) -> None:
        """The checks the guest makes on the header, with a message naming the field."""
        _check(1 <= self.layers <= MAX_LAYERS, f"layers = {self.layers} (1..{MAX_LAYERS})")
        _check(1 <= self.width <= MAX_WIDTH and self.width % BLOCK_WEIGHTS == 0, f"width = {self.width}")
        _check(1 <= self.ffn <= MAX_WIDTH and self.ffn % BLOCK_WEIGHTS == 0, f"ffn = {self.ffn}")
        _check(2 <= self.head_dim <= MAX_HEAD_DIM and self.head_dim % 2 == 0, f"head_dim = {self.head_dim}")
        _check(self.heads >= 1 and self.heads * self.head_dim == self.width, f"heads = {self.heads}")
        _check(
            self.kv_heads >= 1 and self.heads % self.kv_heads == 0,
            f"kv_heads = {self.kv_heads} for {self.heads} heads",
        )
        _check(1 <= self.vocab <= MAX_VOCAB, f"vocab = {self.vocab}")
        _check(1 <= self.positions <= MAX_POSITIONS, f"positions = {self.positions}")
        _check(self.bos < self.vocab and self.eos < self.vocab, f"bos/eos {self.bos}/{self.eos} outside the vocabulary")
        _check(np.isfinite(self.rms_epsilon) and self.rms_epsilon >= 0, f"rms_epsilon = {self.rms_epsilon}")

    def tensor_names(self) -> list[str]:
        return [*GLOBAL_ROLES] + [f"blk.{layer}.{role}" for layer in range(self.layers) for role in LAYER_ROLES]

    def expected_shape(self, name: str) -> tuple[int, int]:
        """(rows, cols) of the tensor with this name."""
        role = name.rsplit(".", 1)[-1]
        q_rows, kv_rows = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {
            "token_embd": (self.vocab, self.width),
            "output": (self.vocab, self.width),
            "rope": (self.positions, self.head_dim),
            "output_norm": (1, self.width),
            "attn_norm": (1, self.width),
            "ffn_norm": (1, self.width),
            "attn_q": (q_rows, self.width),
            "attn_k": (kv_rows, self.width),
            "attn_v": (kv_rows, self.width),
            "attn_output": (self.width, q_rows),
            "ffn_gate": (self.ffn, self.width),
            "ffn_up": (self.ffn, self.width),
            "ffn_down": (self.width, self.ffn),
        }[role]


@dataclass(frozen=True)
class Tensor:
    """One tensor of a model file: its raw bytes as stored (F32 big-endian, others GGML's bytes)."""

    name: str
    type: TensorType
    rows: int
    cols: int
    data: np.ndarray  # uint8, a view into the file

    def floats(self) -> np.ndarray:
        """An F32 tensor's values, [rows, cols] float32 (native byte order)."""
        if self.type != TensorType.F32:
            raise LlmFormatError(f"{self.name} is {self.type.name}, not F32")
        return self.data.view(">f4").astype(np.float32).reshape(self.rows, self.cols)

    def blocks(self) -> np.ndarray:
        """A quantized tensor's blocks, [rows, cols / 32, block bytes] uint8."""
        return self.data.reshape(self.rows, self.cols // BLOCK_WEIGHTS, BLOCK_BYTES[self.type])


@dataclass
class LlmModel:
    config: LlmConfig
    tensors: dict[str, Tensor]
    file: bytes  # the model file itself: what the VM's model region holds

    def __getitem__(self, name: str) -> Tensor:
        return self.tensors[name]

    def layer(self, layer: int, role: str) -> Tensor:
        return self.tensors[f"blk.{layer}.{role}"]

    def rope_table(self) -> np.ndarray:
        """[positions, head_dim] float32: cos then sin of each position's angles."""
        return self.tensors["rope"].floats()


def _f32_bits(value: float) -> int:
    return int(np.array([value], dtype=np.float32).view(np.uint32)[0])


def _f32_value(bits: int) -> float:
    return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise LlmFormatError(f"model config: {message}")


def _aligned(offset: int) -> int:
    return (offset + DATA_ALIGNMENT - 1) // DATA_ALIGNMENT * DATA_ALIGNMENT


def header_bytes(config: LlmConfig) -> int:
    return 4 * (2 + len(CONFIG_FIELDS) + 1 + DIRECTORY_ENTRY_WORDS * len(config.tensor_names()))


def write_model(config: LlmConfig, tensors: dict[str, tuple[TensorType, bytes]], tied_output: bool) -> bytes:
    """The model file for `tensors` (name -> (type, stored bytes)); with `tied_output` the LM head
    ("output") is the token embedding's entry repeated and `tensors` has no "output"."""
    config.validate()
    names = config.tensor_names()
    directory, chunks = [], []
    offset = header_bytes(config)
    placed: dict[str, tuple[int, int, int, int, int]] = {}
    for name in names:
        if name == "output" and tied_output:
            placed[name] = placed["token_embd"]
            directory.append(placed[name])
            continue
        tensor_type, data = tensors[name]
        rows, cols = config.expected_shape(name)
        _check_tensor(name, TensorType(tensor_type), rows, cols, len(data))
        start = _aligned(offset)
        chunks.append(bytes(start - offset))
        chunks.append(data)
        offset = start + len(data)
        placed[name] = (int(tensor_type), rows, cols, start, len(data))
        directory.append(placed[name])
    header = struct.pack(f">II{len(CONFIG_FIELDS)}II", MAGIC, VERSION, *config.words(), len(names))
    entries = b"".join(struct.pack(">5I", *entry) for entry in directory)
    return header + entries + b"".join(chunks)


def _check_tensor(name: str, tensor_type: TensorType, rows: int, cols: int, size: int) -> None:
    role = name.rsplit(".", 1)[-1]
    if role in NORM_ROLES or role == "rope":
        if tensor_type != TensorType.F32:
            raise LlmFormatError(f"{name} must be F32, not {tensor_type.name}")
    elif tensor_type in BLOCK_BYTES and cols % BLOCK_WEIGHTS:
        raise LlmFormatError(f"{name}: rows of {cols} weights are not whole {tensor_type.name} blocks")
    if size != rows * row_bytes(tensor_type, cols):
        raise LlmFormatError(f"{name}: {size} bytes for {tensor_type.name} [{rows}, {cols}]")


class _Words:
    def __init__(self, data: bytes):
        self.data, self.position = data, 0

    def take(self, count: int, what: str) -> tuple[int, ...]:
        if len(self.data) - self.position < 4 * count:
            raise LlmFormatError(f"model file is truncated (in the {what})", EXIT_TRUNCATED_MODEL)
        values = struct.unpack_from(f">{count}I", self.data, self.position)
        self.position += 4 * count
        return values


def parse_model(data: bytes) -> LlmModel:
    """Parse and check a model file, as guest/inference/llm_model.c does, naming what is wrong."""
    words = _Words(data)
    magic, version = words.take(2, "header")
    if magic != MAGIC:
        raise LlmFormatError(f"not an OPLM model file (magic {magic:#010x})", EXIT_BAD_MAGIC)
    if version != VERSION:
        raise LlmFormatError(f"unsupported OPLM version {version}", EXIT_BAD_VERSION)
    values = dict(zip(CONFIG_FIELDS, words.take(len(CONFIG_FIELDS), "header")))
    for name in FLOAT_FIELDS:
        values[name] = _f32_value(values[name])
    config = LlmConfig(**values)
    config.validate()
    names = config.tensor_names()
    (count,) = words.take(1, "header")
    if count != len(names):
        raise LlmFormatError(f"{count} tensors; a model of {config.layers} layers has {len(names)}")
    buffer = np.frombuffer(data, dtype=np.uint8)
    tensors, end = {}, words.position + 4 * DIRECTORY_ENTRY_WORDS * count
    embedding_entry = None
    for name in names:  # entry by entry, as the guest reads them
        entry = words.take(DIRECTORY_ENTRY_WORDS, "directory")
        type_code, rows, cols, offset, size = entry
        if type_code not in TensorType._value2member_map_:
            raise LlmFormatError(f"{name} has an unknown tensor type {type_code}")
        tensor_type = TensorType(type_code)
        if (rows, cols) != config.expected_shape(name):
            raise LlmFormatError(f"{name} is [{rows}, {cols}], expected {list(config.expected_shape(name))}")
        _check_tensor(name, tensor_type, rows, cols, size)
        embedding_entry = entry if name == "token_embd" else embedding_entry
        if not (name == "output" and entry == embedding_entry):  # else: the LM head tied to the embedding
            if offset % DATA_ALIGNMENT or offset < end:
                raise LlmFormatError(f"{name} starts at {offset}: not aligned, or overlapping what is before it")
            if offset + size > len(data):
                raise LlmFormatError(f"model file is truncated (in {name})", EXIT_TRUNCATED_MODEL)
            end = offset + size
        tensors[name] = Tensor(name, tensor_type, rows, cols, buffer[offset : offset + size])
    if end != len(data):
        raise LlmFormatError(f"model file has {len(data) - end} bytes after its last tensor", EXIT_TRAILING_BYTES)
    return LlmModel(config, tensors, data)
