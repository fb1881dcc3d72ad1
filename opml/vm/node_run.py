"""The node run of a graph model (docs/two-phase.md, "The link"): its header, and its start state from roots.

When phase 1 of the linked two-phase game is down to node i, the registry builds the start state of the
node program's VM run from roots alone: the program root P and entry, the input root I, the model root M,
the node header it writes itself from (i, n, the operand slots), and the operands' value roots. This module
is that computation in Python, the twin of the contract's (and `Execution.node_run(...).initial_state.hash`
equals it: tests/graph/test_node_run.py):

    memRoot0 = H(H(H(H(P, I), H(Z[23], Hd)), M), H(H(H(O0, O1), H(O2, O3)), Z[25]))

with H(a, b) = keccak256(a || b), Hd the header region's root, Z[23] the root of an empty 2^28-byte region
(the output region, and any operand region beyond the node's operands), Z[25] the empty 2^30 bytes of heap
and stack at 0xC0000000. The state: pc = entry, nextPC = entry + 4, sp = STACK_TOP, heap = NODE_HEAP_START,
everything else zero.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import BadInput
from . import layout as L
from .machine import length_prefixed
from .merkle import ZERO_HASHES, content_root, hash_pair
from .state import State

REGION_HEIGHT = L.NODE_HEADER.size_bits - 5  # 2^28 bytes of 32-byte leaves: 2^23 leaves
EMPTY_REGION_ROOT = ZERO_HASHES[REGION_HEIGHT]  # Z[23]
EMPTY_HEAP_AND_STACK_ROOT = ZERO_HASHES[L.NODE_HEAP_AND_STACK.size_bits - 5]  # Z[25]


@dataclass(frozen=True)
class NodeHeader:
    """What the registry writes into the node header region: big-endian u32s i, n, k, then the k slots."""

    node: int  # i: the node to compute, the game's agreed step
    node_count: int  # n: the claim's node count
    slots: tuple[int, ...]  # the operand slots, in the order of the operand regions

    def __post_init__(self):
        if len(self.slots) > L.MAX_OPERANDS:
            raise BadInput(f"{len(self.slots)} operand slots; a node run has at most {L.MAX_OPERANDS}")

    def to_bytes(self) -> bytes:
        return struct.pack(f">3I{len(self.slots)}I", self.node, self.node_count, len(self.slots), *self.slots)

    @classmethod
    def from_bytes(cls, data: bytes) -> NodeHeader:
        """A header as the registry wrote it (the Linked event carries it)."""
        if len(data) < 12 or (len(data) - 12) % 4:
            raise BadInput(f"a node header of {len(data)} bytes")
        node, node_count, count = struct.unpack(">3I", data[:12])
        if len(data) != 12 + 4 * count:
            raise BadInput(f"a node header of {len(data)} bytes for {count} operands")
        return cls(node, node_count, struct.unpack(f">{count}I", data[12:]))

    @property
    def root(self) -> bytes:
        """Hd: the root of the header region holding this header."""
        return content_root(length_prefixed(self.to_bytes()), L.NODE_HEADER.size_bits)


def node_memory_root(
    program_root: bytes, input_root: bytes, model_root: bytes, header_root: bytes, operand_roots: Sequence[bytes]
) -> bytes:
    """memRoot0 of a node run from its region roots; operand regions past len(operand_roots) are empty."""
    if len(operand_roots) > L.MAX_OPERANDS:
        raise BadInput(f"{len(operand_roots)} operand roots; a node run has at most {L.MAX_OPERANDS}")
    o0, o1, o2, o3 = list(operand_roots) + [EMPTY_REGION_ROOT] * (L.MAX_OPERANDS - len(operand_roots))
    low_half = hash_pair(
        hash_pair(hash_pair(program_root, input_root), hash_pair(EMPTY_REGION_ROOT, header_root)), model_root
    )
    operands = hash_pair(hash_pair(o0, o1), hash_pair(o2, o3))
    return hash_pair(low_half, hash_pair(operands, EMPTY_HEAP_AND_STACK_ROOT))


def node_start_state(
    program_root: bytes,
    entry: int,
    input_root: bytes,
    model_root: bytes,
    node: int,
    node_count: int,
    slots: Sequence[int],
    operand_roots: Sequence[bytes],
) -> State:
    """The start state of the node run the registry builds at the link (operand_roots[j] is slot slots[j]'s
    value root)."""
    if len(operand_roots) != len(slots):
        raise BadInput(f"{len(slots)} operand slots but {len(operand_roots)} operand roots")
    header = NodeHeader(node, node_count, tuple(slots))
    registers = [0] * 32
    registers[L.REG_SP] = L.STACK_TOP
    return State(
        mem_root=node_memory_root(program_root, input_root, model_root, header.root, operand_roots),
        pc=entry,
        next_pc=entry + 4,
        heap=L.NODE_HEAP_START,
        registers=tuple(registers),
    )


def node_start_state_hash(
    program_root: bytes,
    entry: int,
    input_root: bytes,
    model_root: bytes,
    node: int,
    node_count: int,
    slots: Sequence[int],
    operand_roots: Sequence[bytes],
) -> bytes:
    """The hash of `node_start_state`: what `Linked` reports as the start state, phase 2's agreed state."""
    return node_start_state(program_root, entry, input_root, model_root, node, node_count, slots, operand_roots).hash
