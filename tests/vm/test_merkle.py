"""The memory tree against a naive recomputation; proofs verify and tampering fails."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opml.vm import layout as L
from opml.vm.memory import PagedMemory
from opml.vm.merkle import (
    PROOF_BYTES,
    ZERO_HASHES,
    hash_pair,
    root_from_proof,
    verify_leaf_proof,
    zero_root,
)


def naive_root(contents: dict[int, bytes]) -> bytes:
    """Root of the whole 2^32-byte memory from a {address: bytes} map, the slow way.

    Builds the tree level by level over the leaves that are not zero, with zero
    hashes for everything else.
    """
    leaves: dict[int, bytearray] = {}
    for address, data in contents.items():
        for i, byte in enumerate(data):
            leaf = (address + i) // L.LEAF_BYTES
            leaves.setdefault(leaf, bytearray(L.LEAF_BYTES))[(address + i) % L.LEAF_BYTES] = byte
    level = {index: bytes(value) for index, value in leaves.items() if any(value)}
    for height in range(L.TREE_DEPTH):
        parents = {}
        for index in {i >> 1 for i in level}:
            left = level.get(2 * index, ZERO_HASHES[height])
            right = level.get(2 * index + 1, ZERO_HASHES[height])
            parents[index] = hash_pair(left, right)
        level = parents
    return level.get(0, ZERO_HASHES[L.TREE_DEPTH])


addresses = st.one_of(
    st.integers(0, 0xFFFF_FF00),
    st.sampled_from([0, 0x0FFF_FFF0, 0x1000_0000, 0x4000_0000, 0x7FFF_FFF8, 0x8000_0000, 0xFFFF_FFC0]),
)
writes = st.lists(st.tuples(addresses, st.binary(min_size=1, max_size=200)), min_size=0, max_size=8)


@settings(max_examples=60, deadline=None)
@given(writes)
def test_root_matches_a_naive_recomputation(ops):
    memory = PagedMemory()
    flat: dict[int, int] = {}
    for address, data in ops:
        memory.write(address, data)
        for i, byte in enumerate(data):
            flat[address + i] = byte
        assert memory.root == naive_root({a: bytes([b]) for a, b in flat.items()})


def test_empty_memory_and_zero_regions():
    assert PagedMemory().root == ZERO_HASHES[L.TREE_DEPTH]
    assert zero_root(1 << 32) == ZERO_HASHES[27]
    assert zero_root(L.PAGE_BYTES) == ZERO_HASHES[L.PAGE_DEPTH]
    with pytest.raises(AssertionError):
        zero_root(100)


def test_rewriting_zeros_restores_the_empty_root():
    memory = PagedMemory()
    memory.write(0x1234, b"\x01\x02\x03")
    assert memory.root != ZERO_HASHES[L.TREE_DEPTH]
    memory.write(0x1234, bytes(3))
    assert memory.root == ZERO_HASHES[L.TREE_DEPTH]


def test_region_roots_compose_to_the_memory_root():
    """memRoot = H(H(H(H(P, I), Z[2^29]), M), Z[2^31]) when output and heap are empty."""
    memory = PagedMemory()
    memory.write(0x0001_0000, b"program bytes")
    memory.write(L.INPUT.start, b"\x00\x00\x00\x03abc")
    memory.write(L.MODEL.start + 100, b"model")
    p, i, m = (memory.region_root(r) for r in (L.PROGRAM, L.INPUT, L.MODEL))
    expected = hash_pair(hash_pair(hash_pair(hash_pair(p, i), zero_root(1 << 29)), m), zero_root(1 << 31))
    assert memory.root == expected


@settings(max_examples=30, deadline=None)
@given(writes.filter(bool), st.integers(0, 2**32 - 1))
def test_proofs_verify(ops, probe):
    memory = PagedMemory()
    for address, data in ops:
        memory.write(address, data)
    root = memory.root
    for address in [ops[0][0], probe]:
        proof = memory.proof(address)
        assert len(proof) == PROOF_BYTES
        assert proof[:32] == memory.read(address - address % 32, 32)
        assert verify_leaf_proof(proof, address, root)


def test_tampered_proofs_fail():
    memory = PagedMemory()
    rng = random.Random(7)
    for _ in range(20):
        memory.write(rng.randrange(0, 2**32 - 64), rng.randbytes(40))
    address = 0x4000_0040
    memory.write(address, b"leaf data")
    root = memory.root
    proof = memory.proof(address)
    assert verify_leaf_proof(proof, address, root)
    for position in [0, 31, 32, 100, 500, PROOF_BYTES - 1]:
        tampered = bytearray(proof)
        tampered[position] ^= 1
        assert not verify_leaf_proof(bytes(tampered), address, root)
    assert not verify_leaf_proof(proof, address + 32, root)  # a proof for another leaf
    assert not verify_leaf_proof(proof, address ^ (1 << 31), root)
    assert not verify_leaf_proof(proof[:-1], address, root)
    with pytest.raises(ValueError):
        root_from_proof(proof + b"\x00", address)


def test_a_proof_updates_the_root_for_a_new_leaf():
    """What the on-chain step does for a store: same siblings, new leaf, new root."""
    memory = PagedMemory()
    memory.write(0x8000_1000, b"old")
    proof = memory.proof(0x8000_1000)
    new_leaf = b"new" + bytes(29)
    memory.write(0x8000_1000, b"new")
    assert root_from_proof(new_leaf + proof[32:], 0x8000_1000) == memory.root
