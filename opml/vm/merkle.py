"""The memory Merkle tree: 32-byte leaves, depth 27, node = keccak256(left || right).

Nodes are named by generalized index: the root is 1 and node i has children 2i and
2i+1, so the leaf holding address a is node 2^27 + a // 32 and a page's root is node
2^20 + a // 4096. Unwritten memory is zero; the root of an all-zero subtree of height
h is ZERO_HASHES[h].
"""

from __future__ import annotations

import numpy as np
from Crypto.Hash import keccak

from .keccak import node_bytes, page_tree, subtree_root
from .layout import LEAF_BYTES, LEAVES_PER_PAGE, PAGE_DEPTH, TREE_DEPTH, UPPER_DEPTH

PROOF_BYTES = LEAF_BYTES * (1 + TREE_DEPTH)  # leaf + one sibling per level


def keccak256(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()


def hash_pair(left: bytes, right: bytes) -> bytes:
    return keccak256(left + right)


def _zero_hashes() -> list[bytes]:
    hashes = [bytes(LEAF_BYTES)]
    for _ in range(TREE_DEPTH):
        hashes.append(hash_pair(hashes[-1], hashes[-1]))
    return hashes


ZERO_HASHES = _zero_hashes()


def zero_root(size_bytes: int) -> bytes:
    """Root of `size_bytes` of zero memory (a power of two, at least one leaf)."""
    height = (size_bytes // LEAF_BYTES).bit_length() - 1
    assert LEAF_BYTES << height == size_bytes
    return ZERO_HASHES[height]


def content_root(content: bytes, size_bits: int) -> bytes:
    """Root of an aligned block of 2^size_bits bytes of memory that holds `content` from its start and
    zeros after it: a region's root computed from its bytes alone (a value's root, a node header's),
    hashing only the leaves `content` covers."""
    height = size_bits - (LEAF_BYTES.bit_length() - 1)
    if len(content) > 1 << size_bits:
        raise ValueError(f"{len(content)} bytes do not fit in 2^{size_bits}")
    if not content:
        return ZERO_HASHES[height]
    padded = content + bytes(-len(content) % LEAF_BYTES)
    leaves = np.frombuffer(padded, dtype="<u8").reshape(-1, 4)  # keccak absorbs a node as 4 little-endian lanes
    return node_bytes(subtree_root(leaves, height))


def page_root(words: np.ndarray) -> bytes:
    """Root of one 4 KiB page given as 1024 u32 words."""
    return node_bytes(page_tree(words)[1])


class UpperTree:
    """The 20 levels of the memory tree above the page roots, stored sparsely.

    Only nodes whose subtree holds a non-zero page are stored; a missing node is the
    zero hash of its height.
    """

    PAGE_GINDEX_BASE = 1 << UPPER_DEPTH

    def __init__(self, nodes: dict[int, bytes] | None = None):
        self.nodes: dict[int, bytes] = {} if nodes is None else nodes

    def copy(self) -> UpperTree:
        return UpperTree(dict(self.nodes))

    def node(self, gindex: int) -> bytes:
        stored = self.nodes.get(gindex)
        if stored is not None:
            return stored
        height = TREE_DEPTH - (gindex.bit_length() - 1)
        return ZERO_HASHES[height]

    @property
    def root(self) -> bytes:
        return self.node(1)

    def set_pages(self, roots: dict[int, bytes]) -> None:
        """Set page roots (by page number) and recompute every ancestor once."""
        zero_page = ZERO_HASHES[PAGE_DEPTH]
        touched: set[int] = set()
        for page_number, root in roots.items():
            gindex = self.PAGE_GINDEX_BASE + page_number
            if root == zero_page:
                self.nodes.pop(gindex, None)
            else:
                self.nodes[gindex] = root
            touched.add(gindex >> 1)
        for height in range(PAGE_DEPTH + 1, TREE_DEPTH + 1):
            parents: set[int] = set()
            zero = ZERO_HASHES[height]
            for gindex in touched:
                value = hash_pair(self.node(2 * gindex), self.node(2 * gindex + 1))
                if value == zero:
                    self.nodes.pop(gindex, None)
                else:
                    self.nodes[gindex] = value
                if gindex > 1:
                    parents.add(gindex >> 1)
            touched = parents

    def siblings_above_page(self, page_number: int) -> list[bytes]:
        """Siblings from the page root up to (not including) the root, bottom first."""
        gindex = self.PAGE_GINDEX_BASE + page_number
        siblings = []
        while gindex > 1:
            siblings.append(self.node(gindex ^ 1))
            gindex >>= 1
        return siblings


def leaf_proof(words: np.ndarray, address: int, upper: UpperTree) -> bytes:
    """Proof of the 32-byte leaf holding `address`: the leaf, then 27 siblings, bottom first.

    `words` is the content of the page holding the address; `upper` must be up to
    date with that page's root.
    """
    nodes = page_tree(words)
    index = LEAVES_PER_PAGE + (address % (LEAVES_PER_PAGE * LEAF_BYTES)) // LEAF_BYTES
    proof = [node_bytes(nodes[index])]
    while index > 1:
        proof.append(node_bytes(nodes[index ^ 1]))
        index >>= 1
    proof.extend(upper.siblings_above_page(address >> 12))
    return b"".join(proof)


def root_from_proof(proof: bytes, address: int) -> bytes:
    """The root that a leaf proof for `address` implies."""
    if len(proof) != PROOF_BYTES:
        raise ValueError(f"a leaf proof is {PROOF_BYTES} bytes, got {len(proof)}")
    node = proof[:LEAF_BYTES]
    index = address // LEAF_BYTES
    for level in range(TREE_DEPTH):
        sibling = proof[LEAF_BYTES * (level + 1) : LEAF_BYTES * (level + 2)]
        node = hash_pair(sibling, node) if index & 1 else hash_pair(node, sibling)
        index >>= 1
    return node


def verify_leaf_proof(proof: bytes, address: int, root: bytes) -> bool:
    """True if `proof` shows that the leaf holding `address` is proof[:32] under `root`."""
    try:
        return root_from_proof(proof, address) == root
    except ValueError:
        return False
