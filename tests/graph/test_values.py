"""Values of a graph run: the encoding, canonical floats, well-formedness, and value roots equal to the
roots the VM's memory gives the same bytes in a region."""

import struct

import numpy as np
import pytest

from opml.graph.values import (
    CANONICAL_NAN_BITS,
    KIND_F32,
    KIND_I32,
    MAX_VALUE_BYTES,
    ValueFormatError,
    canonical,
    decode_value,
    encode_value,
    first_leaf_proof,
    root_from_first_leaf,
    value_root,
)
from opml.vm import layout as L
from opml.vm.machine import length_prefixed
from opml.vm.memory import PagedMemory
from opml.vm.merkle import ZERO_HASHES, content_root

RNG = np.random.default_rng(3)
# NaNs with other payloads and signs, signalling ones, -0, subnormals, infinities.
ODD_BITS = np.array(
    [0x7FC00001, 0xFFC00000, 0x7F800001, 0xFFFFFFFF, 0x80000000, 0x00000001, 0x807FFFFF, 0x7F800000, 0xFF800000],
    dtype=np.uint32,
)


def test_a_value_is_kind_rank_dims_then_big_endian_elements():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    data = encode_value(array)
    assert data[:16] == struct.pack(">4I", KIND_F32, 2, 2, 3)
    assert data[16:] == array.astype(">f4").tobytes()
    ints = np.array([[-1, 7]], dtype=np.int32)
    assert encode_value(ints) == struct.pack(">4I", KIND_I32, 2, 1, 2) + struct.pack(">2i", -1, 7)
    assert encode_value(np.float32(2.5).reshape(())) == struct.pack(">2If", KIND_F32, 0, 2.5)  # rank 0: a scalar


def test_floats_are_made_canonical():
    values = ODD_BITS.view(np.float32)
    bits = canonical(values).view(np.uint32)
    assert list(bits) == [CANONICAL_NAN_BITS] * 4 + [0, 0x00000001, 0x807FFFFF, 0x7F800000, 0xFF800000]
    assert encode_value(values)[12:] == bits.astype(">u4").tobytes()
    assert values.view(np.uint32)[0] == 0x7FC00001  # the caller's array is left alone


@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 4), (2, 1, 3), (2, 3, 1, 2)], ids=str)
def test_decode_is_the_inverse_of_encode(shape):
    floats = RNG.standard_normal(shape).astype(np.float32)
    floats.reshape(-1)[: min(floats.size, len(ODD_BITS))] = ODD_BITS[: floats.size].view(np.float32)
    value = decode_value(encode_value(floats))
    assert value.kind == KIND_F32 and value.shape == shape
    assert value.elements.view(np.uint32).tobytes() == canonical(floats).tobytes()
    ints = RNG.integers(-(2**31), 2**31, shape, dtype=np.int64).astype(np.int32)
    value = decode_value(encode_value(ints))
    assert value.kind == KIND_I32 and np.array_equal(value.elements, ints)


MALFORMED = {
    "shorter than kind and rank": b"\0\0\0\0\0\0\0",
    "unknown kind": struct.pack(">3I", 2, 1, 0),
    "rank 5": struct.pack(">7I", 0, 5, 1, 1, 1, 1, 1) + bytes(4),
    "shorter than its shape": struct.pack(">3I", 0, 2, 3),
    "a missing element": struct.pack(">3I", 0, 1, 2) + bytes(4),
    "an extra byte": struct.pack(">3I", 0, 1, 1) + bytes(5),
    "a NaN of another payload": struct.pack(">4I", 0, 1, 1, 0x7FC00001),
    "a negative zero": struct.pack(">4I", 0, 1, 1, 0x80000000),
    "a shape over 2^32 elements": struct.pack(">5I", 0, 3, 65536, 65536, 2),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_values_are_refused_with_a_reason(case):
    with pytest.raises(ValueFormatError):
        decode_value(MALFORMED[case])


def test_what_cannot_be_a_value_is_refused():
    with pytest.raises(ValueFormatError, match="float32 or int32"):
        encode_value(np.zeros(3, np.float64))
    with pytest.raises(ValueFormatError, match="rank 5"):
        encode_value(np.zeros((1,) * 5, np.float32))
    with pytest.raises(ValueFormatError, match="does not fit"):
        value_root(bytes(MAX_VALUE_BYTES + 1))


@pytest.mark.parametrize("size", [0, 1, 27, 28, 29, 60, 4092, 4093, 8188, 8189, 20_000, 70_001])
def test_a_value_root_is_the_root_of_its_region_in_the_vm(size):
    data = RNG.integers(0, 256, size, dtype=np.uint8).tobytes()
    memory = PagedMemory()
    memory.write(L.OUTPUT.start, length_prefixed(data))
    assert value_root(data) == memory.region_root(L.OUTPUT)


def test_content_root_of_nothing_is_the_empty_region():
    assert content_root(b"", 28) == ZERO_HASHES[23]
    assert content_root(bytes(100), 28) == ZERO_HASHES[23]  # zero bytes are no different from none
    assert content_root(b"\1", 5) != ZERO_HASHES[0]
    with pytest.raises(ValueError):
        content_root(bytes(33), 5)


@pytest.mark.parametrize("size", [0, 5, 28, 29, 100, 5000, 70_001])
def test_the_first_leaf_and_its_siblings_give_the_value_root(size):
    value = RNG.integers(0, 256, size, dtype=np.uint8).tobytes()
    leaf, siblings = first_leaf_proof(value)
    assert len(siblings) == 23 and leaf[:4] == size.to_bytes(4, "big")
    assert root_from_first_leaf(leaf, siblings) == value_root(value)
