"""Building the guest programs (guest/) with the pinned `zig cc` from PyPI.

The built ELFs are committed: a program's memory root P is registered on-chain, so a
build must be byte-for-byte reproducible. `build_all(out_dir)` rebuilds every program
into another directory for comparison.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import resources

RUNTIME_SOURCES = ("runtime/start.S", "runtime/runtime.c", "runtime/fdiv.c")

# Soft float from zig's own compiler-rt; no FMA contraction so float results are
# bit-exact with a numpy reference that does the same operations in order.
CFLAGS = (
    "-target", "mips-freestanding-eabi",
    "-mcpu=mips32",
    "-mfloat-abi=soft",
    "-O2",
    "-ffp-contract=off",
    "-fno-builtin",
    "-ffreestanding",
    "-fno-pic",
    "-g0",
    "-static",
    "-Iruntime",
    "-Iinference",
    "-Wl,-e,_start",
    "-fno-unwind-tables",
    "-fno-asynchronous-unwind-tables",
    "-Wl,--build-id=none",
    "-Wl,--strip-debug",
)  # fmt: skip


@dataclass(frozen=True)
class GuestProgram:
    name: str
    sources: tuple[str, ...]  # relative to guest/

    @property
    def output(self) -> str:
        return f"{self.name}.elf"


TEST_PROGRAMS = tuple(
    GuestProgram(f"tests/{name}", (f"tests/{name}.c",))
    for name in ("alu", "muldiv", "memory", "control", "syscalls", "trap")
)
BENCH_PROGRAMS = (GuestProgram("bench/mlp", ("bench/mlp.c",)),)
# Never exits: requests for it end by their step limit.
SPIN = GuestProgram("tests/spin", ("tests/spin.c",))
# Exit with an output region the registry cannot take as an output: a nonzero byte after a zero-length output
# ("malformed output"), and an output of the length its input asks for ("output too large" above the cap).
MALFORMED_OUTPUT = GuestProgram("tests/malformed_output", ("tests/malformed_output.c",))
LARGE_OUTPUT = GuestProgram("tests/large_output", ("tests/large_output.c",))
INFERENCE = GuestProgram(
    "inference/inference",
    tuple(f"inference/{name}.c" for name in ("main", "reader", "seed_model", "graph_model", "ops", "dot", "mathf")),
)
# One node of a graph model, on operands proven by the linked two-phase game (docs/two-phase.md): the
# inference program's parsing and kernels (node_ops.c compiles ops.c in), its own checks and value output.
NODE = GuestProgram(
    "inference/node",
    tuple(
        f"inference/{name}.c"
        for name in ("node_main", "node_ops", "reader", "seed_model", "graph_model", "dot", "mathf")
    ),
)
# One op of an LLM's forward pass on the OPLM model in the model region (opml/models/llm/node.py).
LLM_NODE = GuestProgram(
    "inference/llm_node",
    tuple(
        f"inference/{name}.c" for name in ("llm_node", "llm_model", "llm_quant", "llm_ops", "reader", "dot", "mathf")
    ),
)
# The LLM node program of the two-phase game: node i of a greedy generation's graph (docs/llm-graph.md), its op
# taken from the model and i; the same kernels as LLM_NODE (llm_model, llm_quant, llm_ops), linked unchanged.
LLM_GRAPH = GuestProgram(
    "inference/llm_graph",
    tuple(
        f"inference/{name}.c"
        for name in ("llm_graph_main", "llm_graph", "llm_model", "llm_quant", "llm_ops", "reader", "dot", "mathf")
    ),
)
# Applies one float32 operation to pairs from the input, or the inference program's multiply-adds
# (inference/dot.c) to triples and rows (tests/vm/test_float_ops.py).
FLOAT_OPS = GuestProgram("tests/float_ops", ("tests/float_ops.c", "inference/dot.c"))
ALL_PROGRAMS = (
    TEST_PROGRAMS
    + BENCH_PROGRAMS
    + (FLOAT_OPS, SPIN, MALFORMED_OUTPUT, LARGE_OUTPUT, INFERENCE, NODE, LLM_NODE, LLM_GRAPH)
)


class BuildError(RuntimeError):
    pass


def build(program: GuestProgram, out_dir: Path | None = None) -> Path:
    out_path = Path(out_dir or resources.guest_build_dir()) / program.output
    out_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "ziglang", "cc", *CFLAGS, *RUNTIME_SOURCES, *program.sources, "-o", str(out_path)]
    result = subprocess.run(command, cwd=resources.guest_dir(), capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"building {program.name} failed:\n{result.stderr}")
    return out_path


def build_all(out_dir: Path | None = None) -> list[Path]:
    return [build(program, out_dir) for program in ALL_PROGRAMS]


def built(name: str) -> Path:
    """Path of a committed guest ELF, e.g. built('tests/alu')."""
    return resources.guest_build_dir() / f"{name}.elf"


def mlp_benchmark_data(seed: int = 0):
    """Model and input for guest/bench/mlp.c, and the output a float32 reference gives.

    The reference adds w * x to each neuron's bias in index order with float32
    rounding after every operation, as the guest does, so the bits must match.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((128, 784)) * 0.05).astype(np.float32)
    b1 = (rng.standard_normal(128) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((10, 128)) * 0.1).astype(np.float32)
    b2 = (rng.standard_normal(10) * 0.1).astype(np.float32)
    x = rng.random(784).astype(np.float32)

    def dense(weights, bias, inputs):
        acc = bias.copy()
        for i in range(weights.shape[1]):
            acc = acc + weights[:, i] * inputs[i]
        return acc

    hidden = np.maximum(dense(w1, b1, x), np.float32(0))
    output = dense(w2, b2, hidden)
    model = b"".join(a.astype(">f4").tobytes() for a in (w1, b1, w2, b2))
    return model, x.astype(">f4").tobytes(), output.astype(">f4").tobytes()
