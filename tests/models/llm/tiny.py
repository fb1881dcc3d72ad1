"""Small random llama models in the OPLM format, with the edge values the guest and the reference must agree on."""

from __future__ import annotations

import numpy as np

from opml.models.llm.format import BLOCK_BYTES, LlmConfig, TensorType, write_model

EDGE_FLOATS = np.array(
    [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1e-40, -1e-40, 1.4e-45, 3e38, -3e38, 1e30, -1e30, 88.0, -104.0, 1e-20,
     np.inf, -np.inf, np.nan],
    dtype=np.float32,
)  # fmt: skip
# halves: zeros, the smallest and largest subnormals, the smallest normal, one, the largest, infinities, NaNs
EDGE_HALVES = np.array(
    [0x0000, 0x8000, 0x0001, 0x83FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0xFD01, 0x7C01],
    dtype=np.uint16,
)


def floats(rng: np.random.Generator, shape, edge: bool, scale: float = 1.0) -> np.ndarray:
    values = (rng.standard_normal(shape) * scale).astype(np.float32)
    if edge:
        flat = values.reshape(-1)
        where = rng.random(flat.size) < 0.15
        flat[where] = rng.choice(EDGE_FLOATS, int(where.sum()))
    return values


def halves(rng: np.random.Generator, count: int, edge: bool, scale: float) -> np.ndarray:
    values = (rng.standard_normal(count) * scale).astype(np.float16).view(np.uint16)
    if edge:
        where = rng.random(count) < 0.2
        values[where] = rng.choice(EDGE_HALVES, int(where.sum()))
        random_bits = rng.random(count) < 0.05
        values[random_bits] = rng.integers(0, 1 << 16, int(random_bits.sum())).astype(np.uint16)
    return values


def quantized(rng: np.random.Generator, tensor_type: TensorType, rows: int, cols: int, edge: bool) -> bytes:
    blocks = rows * cols // 32
    raw = np.zeros((blocks, BLOCK_BYTES[tensor_type]), np.uint8)
    if tensor_type == TensorType.Q4_1:
        raw[:, 0:2] = halves(rng, blocks, edge, 0.02).view(np.uint8).reshape(blocks, 2)
        raw[:, 2:4] = halves(rng, blocks, edge, 0.1).view(np.uint8).reshape(blocks, 2)
        raw[:, 4:] = rng.integers(0, 256, (blocks, 16))
    else:
        raw[:, 0:2] = halves(rng, blocks, edge, 0.01).view(np.uint8).reshape(blocks, 2)
        raw[:, 2:] = rng.integers(0, 256, (blocks, 32))
    return raw.tobytes()


def tensor_bytes(rng: np.random.Generator, tensor_type: TensorType, rows: int, cols: int, edge: bool) -> bytes:
    if tensor_type == TensorType.F32:
        return floats(rng, (rows, cols), edge, 0.1).astype(">f4").tobytes()
    if tensor_type == TensorType.F16:
        return halves(rng, rows * cols, edge, 0.1).astype("<u2").tobytes()
    return quantized(rng, tensor_type, rows, cols, edge)


def tiny_config(**overrides) -> LlmConfig:
    settings = dict(
        layers=1, width=64, ffn=96, heads=4, kv_heads=2, head_dim=16, vocab=50, positions=24,
        rope_base=10000.0, rms_epsilon=float(np.float32(1e-5)), bos=1, eos=2,
    )  # fmt: skip
    settings.update(overrides)
    return LlmConfig(**settings)


def tiny_model(
    rng: np.random.Generator, config: LlmConfig, matrix_types=(TensorType.Q4_1,), edge: bool = True, tied: bool = True
) -> bytes:
    """A model file of random tensors: matrices of the given types in turn, F32 norms and RoPE table."""
    from opml.models.llm.gguf_import import rope_table

    stored = {}
    types = iter(matrix_types * 1000)
    for name in config.tensor_names():
        rows, cols = config.expected_shape(name)
        if name == "output" and tied:
            continue
        if name == "rope":
            table = rope_table(config)
            if edge:
                table = np.where(rng.random(table.shape) < 0.05, rng.choice(EDGE_FLOATS, table.shape), table)
            stored[name] = (TensorType.F32, table.astype(">f4").tobytes())
        elif rows == 1:
            stored[name] = (TensorType.F32, floats(rng, (1, cols), edge).astype(">f4").tobytes())
        else:
            kind = TensorType.Q8_0 if name == "token_embd" else next(types)
            stored[name] = (kind, tensor_bytes(rng, kind, rows, cols, edge))
    return write_model(config, stored, tied_output=tied)
