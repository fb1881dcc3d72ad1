"""The guest's soft float against numpy's float32, bit for bit.

The numpy reference of the models is only bit-exact with the VM if every float32
operation in the guest rounds as IEEE 754 says, subnormals included. NaN payloads
are the exception IEEE allows: add/sub (compiler-rt) may return another NaN than x86.
The inference program's own multiply-adds (guest/inference/dot.c) are checked the same way.
"""

import ctypes
import struct
import subprocess
import sys

import numpy as np
import pytest

from opml import resources
from opml.guest import built
from opml.vm.elf import Program
from opml.vm.execution import Execution

OPERATIONS = {"add": (0, np.add), "sub": (1, np.subtract), "mul": (2, np.multiply), "div": (3, np.divide)}
COUNT = 16_000  # results: 64,000 bytes, within the output cap (64 KiB)


def operands(rng: np.random.Generator, n: int) -> np.ndarray:
    """A mix of arbitrary bit patterns, subnormals, tiny normals and ordinary values."""
    kind = rng.integers(0, 4, n)
    any_bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    subnormal = rng.integers(0, 2**23, n).astype(np.uint32) | (rng.integers(0, 2, n).astype(np.uint32) << 31)
    tiny = (rng.integers(1, 30, n).astype(np.uint32) << 23) | rng.integers(0, 2**23, n).astype(np.uint32)
    ordinary = rng.standard_normal(n).astype(np.float32).view(np.uint32)
    return np.select([kind == 0, kind == 1, kind == 2], [any_bits, subnormal, tiny], ordinary).view(np.float32)


@pytest.mark.parametrize("name", OPERATIONS)
def test_soft_float_rounds_like_ieee(name):
    code, reference = OPERATIONS[name]
    rng = np.random.default_rng(code)
    a, b = operands(rng, COUNT), operands(rng, COUNT)
    pairs = np.stack([a, b], axis=1).reshape(-1).astype(">f4").tobytes()
    result = Execution(Program.from_file(built("tests/float_ops")), input=struct.pack(">I", code) + pairs).run()
    assert result.exit_code == 0
    vm = np.frombuffer(result.output, dtype=">f4").astype(np.float32)
    with np.errstate(all="ignore"):
        expected = reference(a, b).astype(np.float32)
    both_nan = np.isnan(vm) & np.isnan(expected)
    differ = (vm.view(np.uint32) != expected.view(np.uint32)) & ~both_nan
    assert not differ.any(), f"{differ.sum()} differ; first: {a[differ][0]!r} {name} {b[differ][0]!r}"
    if name == "div":  # our __divsf3 also returns x86's NaNs
        assert (vm.view(np.uint32) == expected.view(np.uint32)).all()


# --- the inference program's multiply-adds (guest/inference/dot.c) --------------------------------------

DOT_LENGTH = 16  # as in guest/tests/float_ops.c


def multiply_add_operands(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(acc, a, b) mixing every kind of float, and sums that cancel: acc near -a * b."""
    a, b = operands(rng, n), operands(rng, n)
    with np.errstate(all="ignore"):
        product = (a * b).astype(np.float32)
    near = (product.view(np.uint32) ^ np.uint32(0x80000000)).astype(np.int64) + rng.integers(-40, 41, n)
    cancelling = np.clip(near, 0, 2**32 - 1).astype(np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        scaled = (product * np.float32(2.0) ** rng.integers(-30, 30, n).astype(np.float32)).astype(np.float32)
    kind = rng.integers(0, 3, n)
    return np.select([kind == 0, kind == 1], [operands(rng, n), cancelling], scaled), a, b


def sequential_dot(acc: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each row's acc += a[i] * b[i], rounded after every operation, as numpy's float32 does."""
    with np.errstate(all="ignore"):
        for i in range(a.shape[1]):
            acc = (acc + (a[:, i] * b[:, i]).astype(np.float32)).astype(np.float32)
    return acc


def assert_bits_equal(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    differ = (got.view(np.uint32) != expected.view(np.uint32)) & ~(np.isnan(got) & np.isnan(expected))
    assert not differ.any(), f"{what}: {differ.sum()} differ, first at {np.flatnonzero(differ)[0]}"


@pytest.fixture(scope="module")
def native_dot(tmp_path_factory):
    """guest/inference/dot.c built for this machine: the same C, run on millions of operands in a second."""
    out = tmp_path_factory.mktemp("native") / "libdot.so"
    harness = out.with_name("harness.c")
    harness.write_text(
        '#include "dot.h"\n'
        "void rows(const float *acc, const float *a, const float *b, float *out, unsigned n, unsigned length) {\n"
        "    for (unsigned i = 0; i < n; i++) out[i] = opml_dot(acc[i], a + i * length, b + i * length, length, 1);\n"
        "}\n"
    )
    guest = resources.guest_dir()
    command = [sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-gnu", "-shared", "-fPIC", "-O2",
               "-ffp-contract=off", "-ffreestanding", "-fno-builtin", f"-I{guest / 'runtime'}",
               f"-I{guest / 'inference'}", str(harness), str(guest / "inference" / "dot.c"), "-o", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    library = ctypes.CDLL(str(out))
    pointer = ctypes.POINTER(ctypes.c_float)

    def rows(acc: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.empty_like(acc)
        arrays = [np.ascontiguousarray(x, dtype=np.float32) for x in (acc, a, b)] + [out]
        library.rows(*(x.ctypes.data_as(pointer) for x in arrays), len(acc), a.shape[1])
        return out

    return rows


def test_multiply_adds_round_like_numpy_natively(native_dot):
    rng = np.random.default_rng(11)
    acc, a, b = multiply_add_operands(rng, 2_000_000)
    assert_bits_equal(native_dot(acc, a[:, None], b[:, None]), sequential_dot(acc, a[:, None], b[:, None]), "mac")
    rows = 200_000
    a, b = operands(rng, rows * DOT_LENGTH).reshape(rows, -1), operands(rng, rows * DOT_LENGTH).reshape(rows, -1)
    b = np.where(rng.random(b.shape) < 0.2, -a, b).astype(np.float32)  # exact cancellations on the way
    acc = operands(rng, rows)
    assert_bits_equal(native_dot(acc, a, b), sequential_dot(acc, a, b), "dot")


def test_multiply_adds_round_like_numpy_in_the_vm():
    rng = np.random.default_rng(12)
    acc, a, b = multiply_add_operands(rng, 6000)
    triples = np.stack([acc, a, b], axis=1).astype(">f4").tobytes()
    rows = 600
    dot_a, dot_b = (operands(rng, rows * DOT_LENGTH).reshape(rows, -1) for _ in range(2))
    dot_acc = operands(rng, rows)
    groups = np.concatenate([dot_acc[:, None], dot_a, dot_b], axis=1).astype(">f4").tobytes()
    for code, data, expected in (
        (6, triples, sequential_dot(acc, a[:, None], b[:, None])),
        (7, groups, sequential_dot(dot_acc, dot_a, dot_b)),
    ):
        result = Execution(Program.from_file(built("tests/float_ops")), input=struct.pack(">I", code) + data).run()
        assert result.exit_code == 0
        assert_bits_equal(np.frombuffer(result.output, dtype=">f4").astype(np.float32), expected, f"op {code}")
