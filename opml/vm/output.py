"""What a final state's output region says, as the registry reads it, and the proofs that show it on-chain.

The output region (0x20000000-0x2FFFFFFF) holds a big-endian u32 length L, then bytes. An exited state
has exactly one result kind (InferenceRegistry.ResultKind):

- OUTPUT: L <= MAX_OUTPUT_BYTES and every byte of the region after the first 4 + L is zero; the result is
  those L bytes (proven by their region root and the region's 4 siblings);
- OUTPUT_TOO_LARGE: L > MAX_OUTPUT_BYTES (proven by the region's first leaf);
- MALFORMED_OUTPUT: L <= MAX_OUTPUT_BYTES but a byte at region offset 4 + L or beyond is nonzero (proven
  by the first leaf and a leaf holding such a byte).

A state that has not exited (a run at its request's step limit) is STEP_LIMIT_REACHED. Only OUTPUT
carries bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from . import layout as L
from .memory import PagedMemory

REGION_HEIGHT = L.TREE_DEPTH - (L.ADDRESS_BITS - L.OUTPUT.size_bits)  # 23: a region's levels above its leaves
REGION_SIBLING_COUNT = 4  # nodes 19, 8, 5 and 3: from the output region up to the memory root


class ResultKind(IntEnum):
    """InferenceRegistry.ResultKind, value for value."""

    NONE = 0
    OUTPUT = 1
    STEP_LIMIT_REACHED = 2
    MALFORMED_OUTPUT = 3
    OUTPUT_TOO_LARGE = 4

    @property
    def label(self) -> str:
        """As the services show it: "output", "step_limit_reached", "malformed_output", "output_too_large"."""
        return self.name.lower()


@dataclass(frozen=True)
class LeafProof:
    """One 32-byte leaf of the output region, its index there, and its 23 siblings inside the region
    (bottom first): InferenceLayout.LeafProof."""

    leaf: bytes
    index: int
    siblings: tuple[bytes, ...]

    def as_struct(self) -> tuple:
        return (self.leaf, self.index, list(self.siblings))


EMPTY_LEAF_PROOF = LeafProof(bytes(L.LEAF_BYTES), 0, (bytes(L.LEAF_BYTES),) * REGION_HEIGHT)


@dataclass(frozen=True)
class OutputProof:
    """The argument of finalizeMalformed (InferenceRegistry.OutputProof): the region's first leaf (its length
    prefix), a leaf with a nonzero byte after the output (unused when the length is too large), and the
    region's siblings in memory."""

    region_siblings: tuple[bytes, ...]
    first: LeafProof
    second: LeafProof = EMPTY_LEAF_PROOF

    def as_struct(self) -> tuple:
        return (list(self.region_siblings), self.first.as_struct(), self.second.as_struct())

    def to_json(self) -> dict:
        def leaf(proof: LeafProof) -> dict:
            return {"leaf": _hex(proof.leaf), "index": proof.index, "siblings": [_hex(s) for s in proof.siblings]}

        return {
            "region_siblings": [_hex(s) for s in self.region_siblings],
            "first": leaf(self.first),
            "second": leaf(self.second),
        }

    @classmethod
    def from_json(cls, data: dict) -> OutputProof:
        def leaf(item: dict) -> LeafProof:
            return LeafProof(_bytes(item["leaf"]), int(item["index"]), tuple(_bytes(s) for s in item["siblings"]))

        return cls(tuple(_bytes(s) for s in data["region_siblings"]), leaf(data["first"]), leaf(data["second"]))


@dataclass(frozen=True)
class OutputReading:
    """What an exited state's output region says: its kind, its output (empty unless OUTPUT), its length
    prefix, and for a malformed region the offset of the first nonzero byte after the output."""

    kind: ResultKind
    output: bytes
    length: int
    stray_offset: int | None = None  # region offset of the first nonzero byte past 4 + length


def read_output(memory: PagedMemory) -> OutputReading:
    """The output region of an exited state's memory, as the registry reads it."""
    length = memory.read_u32(L.OUTPUT.start)
    if length > L.MAX_OUTPUT_BYTES:
        return OutputReading(ResultKind.OUTPUT_TOO_LARGE, b"", length)
    stray = first_nonzero_offset(memory, L.LENGTH_PREFIX_BYTES + length)
    if stray is not None:
        return OutputReading(ResultKind.MALFORMED_OUTPUT, b"", length, stray)
    return OutputReading(ResultKind.OUTPUT, memory.read(L.OUTPUT.start + L.LENGTH_PREFIX_BYTES, length), length)


def first_nonzero_offset(memory: PagedMemory, start: int) -> int | None:
    """The region offset of the first nonzero byte of the output region at `start` or beyond, if any. Reads
    only the region's pages that are not pages of zeros."""
    first_page = L.OUTPUT.start >> L.PAGE_SHIFT
    page_count = L.OUTPUT.size >> L.PAGE_SHIFT
    mapped = np.flatnonzero(memory.page_table[first_page : first_page + page_count] >= 0)
    for page in mapped.tolist():
        base = page * L.PAGE_BYTES
        if base + L.PAGE_BYTES <= start:
            continue
        content = np.frombuffer(memory.page_bytes(first_page + page), dtype=np.uint8)
        skip = max(0, start - base)
        nonzero = np.flatnonzero(content[skip:])
        if len(nonzero):
            return base + skip + int(nonzero[0])
    return None


def leaf_proof(memory: PagedMemory, offset: int) -> LeafProof:
    """The proof of the output region's leaf holding region offset `offset`, inside the region."""
    proof = memory.proof(L.OUTPUT.start + offset)
    words = [proof[i : i + L.LEAF_BYTES] for i in range(0, len(proof), L.LEAF_BYTES)]
    return LeafProof(words[0], offset // L.LEAF_BYTES, tuple(words[1 : 1 + REGION_HEIGHT]))


def output_proof(memory: PagedMemory, reading: OutputReading) -> OutputProof | None:
    """The finalizeMalformed proof of a MALFORMED_OUTPUT or OUTPUT_TOO_LARGE reading (None for the others)."""
    if reading.kind not in (ResultKind.MALFORMED_OUTPUT, ResultKind.OUTPUT_TOO_LARGE):
        return None
    siblings = tuple(memory.region_siblings(L.OUTPUT))
    first = leaf_proof(memory, 0)
    if reading.kind == ResultKind.OUTPUT_TOO_LARGE:
        return OutputProof(siblings, first)
    assert reading.stray_offset is not None
    return OutputProof(siblings, first, leaf_proof(memory, reading.stray_offset))


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def memory_root_with_output(output_root: bytes, siblings: Sequence[bytes]) -> bytes:
    """The memory root of a memory whose output region (node 18) has root `output_root`, given the region's
    siblings (nodes 19, 8, 5 and 3): InferenceLayout.memoryRootWithOutputRegion."""
    from .merkle import hash_pair

    node = hash_pair(output_root, siblings[0])  # 9 = 18, 19
    node = hash_pair(siblings[1], node)  # 4 = 8, 9
    node = hash_pair(node, siblings[2])  # 2 = 4, 5
    return hash_pair(node, siblings[3])  # 1 = 2, 3
