"""The compiled keccak against pycryptodome's."""

import os

import numpy as np

from opml.vm.keccak import keccak256_pair, node_bytes, page_tree
from opml.vm.merkle import ZERO_HASHES, hash_pair


def test_pairs_match_pycryptodome():
    for _ in range(300):
        left, right = os.urandom(32), os.urandom(32)
        assert keccak256_pair(left, right) == hash_pair(left, right)
    assert keccak256_pair(bytes(32), bytes(32)) == ZERO_HASHES[1]


def test_page_tree_matches_pairwise_hashing():
    words = np.random.default_rng(3).integers(0, 2**32, 1024, dtype=np.uint64).astype(np.uint32)
    page = words.astype(">u4").tobytes()
    level = [page[i : i + 32] for i in range(0, 4096, 32)]
    while len(level) > 1:
        level = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    nodes = page_tree(words)
    assert node_bytes(nodes[1]) == level[0]
    assert node_bytes(nodes[128]) == page[:32]
    assert node_bytes(page_tree(np.zeros(1024, dtype=np.uint32))[1]) == ZERO_HASHES[7]
