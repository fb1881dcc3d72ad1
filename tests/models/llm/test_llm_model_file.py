"""The packaged SmolLM2 GGUF, its conversion to the OPLM model file, the file's checks (the same in the guest and
in Python), and the dequantization against the `gguf` package's own."""

from __future__ import annotations

import collections
import hashlib
import random
import struct

import gguf
import numpy as np
import pytest

from opml.guest import LLM_NODE, built
from opml.models.llm.format import LlmFormatError, TensorType, parse_model
from opml.models.llm.gguf_import import (
    MODEL_FILE_SHA256,
    convert_gguf,
    inverse_frequencies,
    packaged_gguf,
    read_config,
    rope_table,
)
from opml.models.llm.quant import dequantize, dequantize_raw
from opml.vm.elf import Program
from opml.vm.execution import Execution

from .tiny import EDGE_HALVES, quantized, tiny_config, tiny_model
from .tiny_gguf import write_gguf

GGML_OF = {TensorType.Q4_1: gguf.GGMLQuantizationType.Q4_1, TensorType.Q8_0: gguf.GGMLQuantizationType.Q8_0}


@pytest.fixture(scope="module")
def reader():
    return gguf.GGUFReader(packaged_gguf())


def test_the_packaged_gguf_is_smollm2_135m_q4_1(reader):
    config = read_config(reader)
    assert (config.layers, config.heads, config.kv_heads, config.width, config.ffn) == (30, 9, 3, 576, 1536)
    assert (config.head_dim, config.vocab, config.positions) == (64, 49152, 8192)
    assert config.rope_base == 100000.0 and config.rms_epsilon == np.float32(1e-5)
    assert (config.bos, config.eos) == (1, 2)
    types = collections.Counter(tensor.tensor_type.name for tensor in reader.tensors)
    assert types == {"Q4_1": 210, "F32": 61, "Q8_0": 1}
    embedding = next(t for t in reader.tensors if t.name == "token_embd.weight")
    assert embedding.tensor_type.name == "Q8_0" and list(embedding.shape) == [576, 49152]
    assert "output.weight" not in {t.name for t in reader.tensors}  # the LM head is the tied embedding
    assert reader.fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert len(reader.fields["tokenizer.ggml.merges"].data) == 48900


def test_the_converted_model_file(llm_model_file):
    assert hashlib.sha256(llm_model_file).hexdigest() == MODEL_FILE_SHA256
    model = parse_model(llm_model_file)
    assert model["output"].data.ctypes.data == model["token_embd"].data.ctypes.data  # stored once
    assert model["blk.29.ffn_down"].type == TensorType.Q4_1 and model["blk.29.ffn_down"].rows == 576
    assert len(llm_model_file) < 99_000_000  # the GGUF's 98.4 MB of blocks, plus 2 MB of RoPE table


def test_the_rope_table_is_the_nearest_float32_of_cos_and_sin(llm_model_file):
    model = parse_model(llm_model_file)
    table = model.rope_table()
    assert table.shape == (8192, 64)
    assert (table[0, :32] == 1).all() and (table[0, 32:] == 0).all()
    frequencies = inverse_frequencies(model.config)
    wide = 100000.0 ** (-np.arange(0, 64, 2) / 64)
    assert (np.abs(frequencies - wide) <= 0.5 * np.spacing(frequencies) * (1 + 1e-9)).all()
    angles = (np.arange(8192, dtype=np.float32)[:, None] * frequencies[None, :]).astype(np.float64)
    for half, function in ((table[:, :32], np.cos), (table[:, 32:], np.sin)):
        error = np.abs(half.astype(np.float64) - function(angles))
        assert (error <= 0.5 * np.spacing(np.abs(half)).astype(np.float64) * (1 + 1e-9) + 1e-45).all()
    assert (rope_table(tiny_config(positions=5)) == rope_table(tiny_config(positions=9))[:5]).all()


def test_dequantization_is_ggufs_bit_for_bit_on_the_model(llm_model_file):
    model = parse_model(llm_model_file)
    for name in ("token_embd", "blk.0.attn_q", "blk.17.ffn_down"):
        tensor = model[name]
        theirs = gguf.quants.dequantize(tensor.data.reshape(tensor.rows, -1), GGML_OF[tensor.type])
        assert (dequantize(tensor).view(np.uint32) == theirs.view(np.uint32)).all()


@pytest.mark.parametrize("tensor_type", [TensorType.Q4_1, TensorType.Q8_0])
def test_dequantization_against_gguf_on_edge_scales(tensor_type):
    """gguf computes d * q + m (and q * d) in float32 too: the same two roundings, so the same bits, NaNs
    included (numpy and numba run the same x86 instructions); with subnormal, infinite and NaN halves."""
    rng = np.random.default_rng(3)
    rows, cols = 64, 256
    data = np.frombuffer(quantized(rng, tensor_type, rows, cols, edge=True), np.uint8)
    ours = dequantize_raw(tensor_type, data, rows, cols)
    with np.errstate(invalid="ignore"):
        theirs = gguf.quants.dequantize(data.reshape(rows, -1), GGML_OF[tensor_type])
    assert np.isnan(ours).any() and np.isinf(ours).any()
    assert (ours.view(np.uint32) == theirs.view(np.uint32)).all()


def test_every_half_converts_exactly():
    halves = np.arange(1 << 16, dtype=np.uint16)
    ours = dequantize_raw(TensorType.F16, halves.view(np.uint8), 1, 1 << 16)[0]
    assert (ours.view(np.uint32) == halves.view("<f2").astype(np.float32).view(np.uint32)).all()
    assert set(EDGE_HALVES.tolist()) <= set(halves.tolist())


def test_a_gguf_of_every_supported_type_converts(tmp_path):
    path = write_gguf(tmp_path / "mixed.gguf")
    model = parse_model(convert_gguf(path))
    reader = gguf.GGUFReader(path)
    for tensor in reader.tensors:
        name = tensor.name.removesuffix(".weight")
        ours = dequantize(model[name])
        theirs = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(ours.shape)
        assert (ours.view(np.uint32) == theirs.astype(np.float32).view(np.uint32)).all(), name
    assert {t.type for t in model.tensors.values()} == set(TensorType)


def test_an_untied_lm_head_is_its_own_tensor(tmp_path):
    model = parse_model(convert_gguf(write_gguf(tmp_path / "untied.gguf", tied=False)))
    assert model["output"].data.ctypes.data != model["token_embd"].data.ctypes.data


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(types={"attn_q": gguf.GGMLQuantizationType.Q4_0}), "blk.0.attn_q.weight is Q4_0; supported tensor types"),
        (dict(types={"ffn_up": gguf.GGMLQuantizationType.Q5_0}), "blk.0.ffn_up.weight is Q5_0; supported"),
        (dict(architecture="gpt2"), "architecture is 'gpt2'; only 'llama'"),
    ],
)
def test_a_gguf_the_format_cannot_hold_is_refused_by_name(tmp_path, change, message):
    path = write_gguf(tmp_path / "bad.gguf", **change)
    with pytest.raises(LlmFormatError, match=message):
        convert_gguf(path)


def test_a_truncated_gguf_is_refused(tmp_path):
    data = write_gguf(tmp_path / "whole.gguf").read_bytes()
    for cut in (10, 300, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.gguf").write_bytes(data[:cut])
        with pytest.raises(LlmFormatError, match="truncated"):
            convert_gguf(tmp_path / "cut.gguf")


def _outcome_in_vm(program: Program, model: bytes) -> int:
    request = struct.pack(">IIIII", 8, 0, 0, 2, 0) + struct.pack(">II", 1, 1) + bytes(4)
    request += struct.pack(">III", 0, 1, 1) + bytes(4)  # add of two [1, 1] zeros
    return Execution(program, model=model, input=request).run().exit_code


def _outcome_in_python(model: bytes) -> int:
    try:
        parse_model(model)
    except LlmFormatError as error:
        return error.exit_code
    return 0


def test_mutated_model_files_fail_the_same_way_in_the_guest_and_python():
    """One word of the header or directory replaced, the file cut short or extended: the same exit code."""
    rng = np.random.default_rng(9)
    config = tiny_config(vocab=40, ffn=64)
    model = tiny_model(rng, config, (TensorType.Q4_1, TensorType.F16))
    program = Program.from_file(built(LLM_NODE.name))
    header_words = 15 + 5 * len(config.tensor_names())
    chooser = random.Random(21)
    codes = collections.Counter()
    assert _outcome_in_vm(program, model) == _outcome_in_python(model) == 0
    for _ in range(60):
        kind = chooser.random()
        if kind < 0.75:
            offset = 4 * chooser.randrange(header_words)
            value = chooser.choice(
                [0, 1, 2, 3, 8, 9, 0xFFFFFFFF, 0x10000, chooser.getrandbits(32), chooser.getrandbits(8)]
            )
            mutated = model[:offset] + struct.pack(">I", value) + model[offset + 4 :]
        elif kind < 0.9:
            mutated = model[: chooser.randrange(len(model))]
        else:
            mutated = model + bytes(chooser.randrange(1, 9))
        code = _outcome_in_python(mutated)
        assert _outcome_in_vm(program, mutated) == code
        codes[code] += 1
    assert {12, 13} <= set(codes)
