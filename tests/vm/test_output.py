"""The output region as the registry reads it (opml.vm.output): exactly one kind for every exited state, and
leaf proofs that hash up to the memory root."""

import pytest

from opml.vm import layout as L
from opml.vm.machine import length_prefixed
from opml.vm.memory import PagedMemory
from opml.vm.merkle import root_from_proof
from opml.vm.output import REGION_HEIGHT, LeafProof, OutputProof, ResultKind, output_proof, read_output


def memory_with(*writes: tuple[int, bytes]) -> PagedMemory:
    memory = PagedMemory()
    memory.write(0x1000, b"\x24\x02\x10\x96")  # something outside the region, so its siblings are not all zero
    for offset, data in writes:
        memory.write(L.OUTPUT.start + offset, data)
    return memory


def proves(memory: PagedMemory, proof: LeafProof, region_siblings: tuple[bytes, ...]) -> bool:
    """Whether the leaf, its 23 siblings and the region's 4 give the memory root (MemoryProof's check)."""
    full = proof.leaf + b"".join(proof.siblings) + b"".join(region_siblings)
    return root_from_proof(full, L.OUTPUT.start + proof.index * L.LEAF_BYTES) == memory.root


@pytest.mark.parametrize("output", [b"", b"abc", bytes(range(1, 200)), b"\x07" * L.MAX_OUTPUT_BYTES])
def test_a_zero_filled_region_after_the_output_is_that_output(output):
    reading = read_output(memory_with((0, length_prefixed(output))))
    assert reading.kind == ResultKind.OUTPUT and reading.output == output and reading.length == len(output)
    assert output_proof(memory_with((0, length_prefixed(output))), reading) is None


@pytest.mark.parametrize("length", [L.MAX_OUTPUT_BYTES + 1, 1 << 20, 0xFFFF_FFFF])
def test_a_length_above_the_cap_is_too_large_proven_by_the_first_leaf(length):
    memory = memory_with((0, length.to_bytes(4, "big") + b"\x01\x02"))
    reading = read_output(memory)
    assert reading.kind == ResultKind.OUTPUT_TOO_LARGE and reading.output == b"" and reading.length == length
    proof = output_proof(memory, reading)
    assert proof is not None and proof.first.index == 0 and len(proof.first.siblings) == REGION_HEIGHT
    assert int.from_bytes(proof.first.leaf[:4], "big") == length
    assert proves(memory, proof.first, proof.region_siblings)


@pytest.mark.parametrize(
    ("output", "stray"),
    [(b"", 4), (b"", 1000), (b"abc", 7), (b"abc", 40), (b"\x09" * 5000, 4 + 5000 + 4096 * 3), (b"", (1 << 28) - 1)],
)
def test_a_nonzero_byte_after_the_output_is_malformed_proven_by_its_leaf(output, stray):
    memory = memory_with((0, length_prefixed(output)), (stray, b"\x5a"))
    reading = read_output(memory)
    assert reading.kind == ResultKind.MALFORMED_OUTPUT and reading.output == b""
    assert reading.stray_offset == stray
    proof = output_proof(memory, reading)
    assert proof is not None and proof.second.index == stray // L.LEAF_BYTES
    assert proof.second.leaf[stray % L.LEAF_BYTES] == 0x5A
    assert proves(memory, proof.first, proof.region_siblings) and proves(memory, proof.second, proof.region_siblings)


def test_zero_bytes_written_after_the_output_change_nothing():
    memory = memory_with((0, length_prefixed(b"ok")), (100, bytes(64)), (1 << 20, bytes(8)))
    assert read_output(memory).kind == ResultKind.OUTPUT and read_output(memory).output == b"ok"


def test_an_output_proof_survives_json():
    memory = memory_with((0, length_prefixed(b"")), (77, b"\x01"))
    proof = output_proof(memory, read_output(memory))
    assert proof is not None and OutputProof.from_json(proof.to_json()) == proof
