"""Small llama GGUF files written with the `gguf` package, to check the converter on files other than SmolLM2's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, quantize

from opml.models.llm.format import LAYER_ROLES

from .tiny import tiny_config

GGUF_TYPES = {
    "attn_q": GGMLQuantizationType.Q4_1,
    "attn_k": GGMLQuantizationType.Q8_0,
    "attn_v": GGMLQuantizationType.F16,
    "attn_output": GGMLQuantizationType.F32,
    "ffn_gate": GGMLQuantizationType.Q4_1,
    "ffn_up": GGMLQuantizationType.Q4_1,
    "ffn_down": GGMLQuantizationType.Q4_1,
}


def write_gguf(
    path: Path, architecture: str = "llama", types: dict | None = None, tied: bool = True, seed: int = 0
) -> Path:
    """A random 1-layer llama GGUF: tensors of `types` (role -> GGML type; norms F32, embedding Q8_0)."""
    config = tiny_config()
    types = {**GGUF_TYPES, **(types or {})}
    rng = np.random.default_rng(seed)
    writer = GGUFWriter(str(path), architecture)
    prefix = f"{architecture}."
    writer.add_uint32(prefix + "block_count", config.layers)
    writer.add_uint32(prefix + "context_length", config.positions)
    writer.add_uint32(prefix + "embedding_length", config.width)
    writer.add_uint32(prefix + "feed_forward_length", config.ffn)
    writer.add_uint32(prefix + "attention.head_count", config.heads)
    writer.add_uint32(prefix + "attention.head_count_kv", config.kv_heads)
    writer.add_float32(prefix + "rope.freq_base", 10000.0)
    writer.add_float32(prefix + "attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_uint32(prefix + "vocab_size", config.vocab)
    writer.add_uint32("tokenizer.ggml.bos_token_id", config.bos)
    writer.add_uint32("tokenizer.ggml.eos_token_id", config.eos)

    def add(name: str, rows: int, cols: int, kind: GGMLQuantizationType) -> None:
        values = (rng.standard_normal((rows, cols)) * 0.1).astype(np.float32)
        if kind == GGMLQuantizationType.F32:
            writer.add_tensor(name, values.reshape(-1) if rows == 1 else values)
        elif kind == GGMLQuantizationType.F16:
            writer.add_tensor(name, values.astype(np.float16))
        else:
            writer.add_tensor(name, quantize(values, kind), raw_dtype=kind)

    add("token_embd.weight", config.vocab, config.width, GGMLQuantizationType.Q8_0)
    add("output_norm.weight", 1, config.width, GGMLQuantizationType.F32)
    if not tied:
        add("output.weight", config.vocab, config.width, GGMLQuantizationType.Q8_0)
    for role in LAYER_ROLES:
        rows, cols = config.expected_shape(f"blk.0.{role}")
        kind = GGMLQuantizationType.F32 if rows == 1 else types[role]
        add(f"blk.0.{role}.weight", rows, cols, kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
