"""Malformed models and inputs: the guest exits with its documented code and a message;
the Python parser and reference report the same code; nothing hangs."""

import random
import struct

import numpy as np
import pytest

from opml.models import formats as F
from opml.models.formats import Graph, InputType, ModelFormatError, Node, Op
from opml.models.reference import InferenceError, predict

from .conftest import run_in_vm


def seed_with(seed_model: bytes, offset: int, value: int) -> bytes:
    return seed_model[:offset] + struct.pack(">I", value) + seed_model[offset + 4 :]


def small_graph(op: int = Op.RELU) -> bytes:
    weights = [np.ones((3, 4), np.float32), np.zeros(3, np.float32)]
    nodes = [Node(Op.LINEAR, [0], [0, 1]), Node(op, [1]), Node(Op.SIGMOID, [2])]
    return Graph(InputType.F32, (4,), weights, nodes).to_bytes()


F32_INPUT = np.arange(4, dtype=">f4").tobytes()
# Offset of fc2.weight's dims (innermost first) in the seed file: after the magic, fc1.weight, fc1.bias.
FC2_DIMS = 4 + (4 + 8 + 4 * 784 * 20) + (4 + 4 + 4 * 20) + 4

CASES = {
    "bad magic": (lambda seed: b"XXXX" + seed[4:], None, F.EXIT_BAD_MAGIC, "bad magic"),
    "empty model": (lambda seed: b"", None, F.EXIT_TRUNCATED_MODEL, "truncated"),
    "truncated seed model": (lambda seed: seed[: len(seed) // 2], None, F.EXIT_TRUNCATED_MODEL, "truncated"),
    "seed tensor of the wrong rank": (lambda seed: seed_with(seed, 4, 3), None, F.EXIT_BAD_SHAPE, "shapes"),
    "seed dims that do not match its data": (lambda seed: seed_with(seed, 12, 21), None, F.EXIT_TRUNCATED_MODEL, "truncated"),
    "seed shapes that do not fit": (lambda seed: seed_with(seed_with(seed, FC2_DIMS, 10), FC2_DIMS + 4, 20), None, F.EXIT_BAD_SHAPE, "shapes"),
    "seed tensor too large": (lambda seed: seed_with(seed_with(seed, 8, 65536), 12, 65536), None, F.EXIT_MODEL_TOO_LARGE, "too large"),
    "seed dimension of zero": (lambda seed: seed_with(seed, 8, 0), None, F.EXIT_BAD_SHAPE, "shapes"),
    "trailing bytes": (lambda seed: seed + b"\x00", None, F.EXIT_TRAILING_BYTES, "after its end"),
    "graph version 2": (lambda seed: small_graph()[:4] + struct.pack(">I", 2) + small_graph()[8:], F32_INPUT, F.EXIT_BAD_VERSION, "version"),
    "unsupported op": (lambda seed: small_graph(op=99), F32_INPUT, F.EXIT_UNSUPPORTED_OP, "unsupported operation"),
    "graph linear that does not fit": (lambda seed: small_graph()[:16] + struct.pack(">I", 5) + small_graph()[20:], np.arange(5, dtype=">f4").tobytes(), F.EXIT_BAD_SHAPE, "shapes"),
    "wrong input length": (lambda seed: seed, b"\x00" * 783, F.EXIT_BAD_INPUT_LENGTH, "wrong length"),
    "wrong input length for a graph": (lambda seed: small_graph(), b"\x00" * 15, F.EXIT_BAD_INPUT_LENGTH, "wrong length"),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_documented_exit_codes(inference, seed_model, input_7, name):
    make_model, input, code, message = CASES[name]
    model = make_model(seed_model)
    input = input_7 if input is None else input
    exit_code, output, stderr = run_in_vm(inference, model, input)
    assert exit_code == code, stderr
    assert message in stderr.decode(), stderr
    assert output == b""
    with pytest.raises((ModelFormatError, InferenceError)) as raised:
        predict(model, input)
    assert raised.value.exit_code == code


def outcome_in_vm(inference, model: bytes, input: bytes):
    code, output, _ = run_in_vm(inference, model, input)
    return code, output if code == 0 else b""


def outcome_in_python(model: bytes, input: bytes):
    try:
        return 0, predict(model, input).to_bytes()
    except (ModelFormatError, InferenceError) as error:
        return error.exit_code, b""


def mutations(data: bytes, rng: random.Random, count: int, header_words: int):
    """Models with one 32-bit word of the structure replaced, cut short, or extended."""
    for _ in range(count):
        kind = rng.random()
        if kind < 0.7:
            offset = 4 * rng.randrange(header_words)
            value = rng.choice([0, 1, 2, 3, 5, 0xFFFFFFFF, 0x10000, rng.getrandbits(32), rng.getrandbits(8)])
            yield data[:offset] + struct.pack(">I", value) + data[offset + 4 :]
        elif kind < 0.85:
            yield data[: rng.randrange(len(data))]
        else:
            yield data + rng.randbytes(rng.randrange(1, 9))


def test_mutated_seed_models_fail_the_same_way_in_the_guest_and_python(inference, seed_model, input_7):
    rng = random.Random(17)
    for model in mutations(seed_model, rng, 25, header_words=4):
        assert outcome_in_vm(inference, model, input_7) == outcome_in_python(model, input_7)


def test_mutated_graph_models_fail_the_same_way_in_the_guest_and_python(inference):
    rng = random.Random(18)
    model = small_graph()  # small enough to mutate any of its words
    for mutated in mutations(model, rng, 60, header_words=len(model) // 4):
        assert outcome_in_vm(inference, mutated, F32_INPUT) == outcome_in_python(mutated, F32_INPUT)
