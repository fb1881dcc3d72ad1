"""keccak256 of 64-byte messages (one Merkle node pair), compiled with numba.

Hashing whole 4 KiB pages is the bulk of building a golden image and of every state
hash; one call here hashes a page's 127 inner nodes without a trip through Python
per node (pycryptodome costs about 3 us a call). tests/vm/test_keccak.py checks it
against pycryptodome.

Nodes are held as four little-endian u64 lanes (the byte order keccak absorbs), so
a 32-byte node is lanes[0..3] and the 64-byte message (left || right) is lanes 0-7.
"""

import numpy as np
from numba import njit

from .layout import LEAVES_PER_PAGE

ROUND_CONSTANTS = np.array(
    [
        0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
        0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
        0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
        0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
        0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
        0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
    ],
    dtype=np.uint64,
)  # fmt: skip
# Rotation offset of lane x + 5y.
ROTATIONS = np.array(
    [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14],
    dtype=np.uint64,
)
PAD_FIRST = np.uint64(0x01)  # keccak padding (not SHA-3's 0x06) right after the message
PAD_LAST = np.uint64(0x8000000000000000)  # ... and at the end of the 136-byte rate


@njit(inline="always")
def rotate_left(value, amount):
    if amount == 0:
        return value
    return (value << amount) | (value >> (np.uint64(64) - amount))


@njit(cache=True, nogil=True)
def keccak_f1600(lanes):
    c = np.empty(5, dtype=np.uint64)
    b = np.empty(25, dtype=np.uint64)
    for round_index in range(24):
        for x in range(5):  # theta
            c[x] = lanes[x] ^ lanes[x + 5] ^ lanes[x + 10] ^ lanes[x + 15] ^ lanes[x + 20]
        for x in range(5):
            d = c[(x + 4) % 5] ^ rotate_left(c[(x + 1) % 5], np.uint64(1))
            for y in range(5):
                lanes[x + 5 * y] ^= d
        for x in range(5):  # rho and pi
            for y in range(5):
                b[y + 5 * ((2 * x + 3 * y) % 5)] = rotate_left(lanes[x + 5 * y], ROTATIONS[x + 5 * y])
        for y in range(5):  # chi
            for x in range(5):
                lanes[x + 5 * y] = b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y])
        lanes[0] ^= ROUND_CONSTANTS[round_index]  # iota


@njit(cache=True, nogil=True)
def hash_node_pair(left, right, out, lanes):
    """out = keccak256(left || right); all three are 4-lane nodes; `lanes` is scratch."""
    lanes[:] = 0
    for k in range(4):
        lanes[k] = left[k]
        lanes[4 + k] = right[k]
    lanes[8] ^= PAD_FIRST
    lanes[16] ^= PAD_LAST
    keccak_f1600(lanes)
    for k in range(4):
        out[k] = lanes[k]


@njit(inline="always")
def byte_swap32(word):
    word = np.uint64(word)
    return (
        ((word & np.uint64(0xFF)) << np.uint64(24))
        | ((word & np.uint64(0xFF00)) << np.uint64(8))
        | ((word >> np.uint64(8)) & np.uint64(0xFF00))
        | (word >> np.uint64(24))
    )


@njit(cache=True, nogil=True)
def page_tree(words):
    """Every node of a page's subtree, heap-ordered: [1] is the root, [128:256] the leaves.

    `words` is the page as 1024 u32 values of big-endian memory words.
    """
    nodes = np.zeros((2 * LEAVES_PER_PAGE, 4), dtype=np.uint64)
    for leaf in range(LEAVES_PER_PAGE):
        for k in range(4):
            first = byte_swap32(words[8 * leaf + 2 * k])
            second = byte_swap32(words[8 * leaf + 2 * k + 1])
            nodes[LEAVES_PER_PAGE + leaf, k] = first | (second << np.uint64(32))
    lanes = np.empty(25, dtype=np.uint64)
    for index in range(LEAVES_PER_PAGE - 1, 0, -1):
        hash_node_pair(nodes[2 * index], nodes[2 * index + 1], nodes[index], lanes)
    return nodes


def node_bytes(lanes: np.ndarray) -> bytes:
    return lanes.astype("<u8").tobytes()


def keccak256_pair(left: bytes, right: bytes) -> bytes:
    """keccak256(left || right) through the compiled path (for tests)."""
    out = np.empty(4, dtype=np.uint64)
    hash_node_pair(
        np.frombuffer(left, dtype="<u8").astype(np.uint64),
        np.frombuffer(right, dtype="<u8").astype(np.uint64),
        out,
        np.empty(25, dtype=np.uint64),
    )
    return node_bytes(out)


@njit(cache=True, nogil=True)
def subtree_root(leaves, height):
    """Root of a subtree of 2^height leaves whose first len(leaves) leaves are `leaves` (4 lanes each)
    and the rest zero: each level hashes the nodes it has, pairing an odd last one with the zero hash
    of its height, so only the written part of a region is hashed."""
    level = leaves
    zero = np.zeros(4, dtype=np.uint64)
    next_zero = np.empty(4, dtype=np.uint64)
    lanes = np.empty(25, dtype=np.uint64)
    for _ in range(height):
        count = level.shape[0]
        parents = np.empty(((count + 1) // 2, 4), dtype=np.uint64)
        for k in range(parents.shape[0]):
            right = level[2 * k + 1] if 2 * k + 1 < count else zero
            hash_node_pair(level[2 * k], right, parents[k], lanes)
        hash_node_pair(zero, zero, next_zero, lanes)
        zero[:] = next_zero
        level = parents
    return level[0].copy()
