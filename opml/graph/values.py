"""The values of a graph run (docs/two-phase.md, "Values"): their encoding, canonical floats, their roots.

A run of a graph of n nodes has n + 1 values. Value 0 is the request's input, the bytes as sent. Value j + 1,
the output of node j, is encoded as

    u32 kind            KIND_F32 (0) or KIND_I32 (1)
    u32 rank            0 to MAX_VALUE_RANK
    u32 dims[rank]
    elements            4 bytes each, big-endian, row-major (the product of dims of them)

all big-endian. Every float32 element is canonical: any NaN is CANONICAL_NAN_BITS and -0 is +0, so two
values are equal exactly when their bytes are (the guest's soft float and x86 pick other NaN payloads).

A value's root is the root of a 2^28-byte region holding a u32 length, then the value's bytes, then zeros:
the root the node program leaves in the VM's output region, and for value 0 the input root I.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import BadInput
from ..vm import layout as L
from ..vm.machine import length_prefixed
from ..vm.merkle import content_root, hash_pair

KIND_F32 = 0
KIND_I32 = 1
MAX_VALUE_RANK = 4
VALUE_HEADER_BYTES = 8  # kind, rank
ELEMENT_BYTES = 4
CANONICAL_NAN_BITS = 0x7FC00000
NEGATIVE_ZERO_BITS = 0x80000000
FLOAT_EXPONENT_BITS = 0x7F800000
FLOAT_FRACTION_BITS = 0x007FFFFF
VALUE_REGION = L.OUTPUT  # any 2^28-byte region holding a u32 length and a value: output, operands, input
MAX_VALUE_BYTES = VALUE_REGION.size - L.LENGTH_PREFIX_BYTES
LEAF_BYTES = 32
REGION_HEIGHT = VALUE_REGION.size_bits - 5  # 23 levels of 32-byte leaves under a value root

ELEMENT_DTYPES = {KIND_F32: np.dtype(">f4"), KIND_I32: np.dtype(">i4")}


class ValueFormatError(BadInput):
    """Bytes that are not a well-formed value."""


@dataclass(frozen=True)
class Value:
    kind: int
    elements: np.ndarray  # float32 or int32 (native byte order), shaped

    @property
    def shape(self) -> tuple[int, ...]:
        return self.elements.shape


def noncanonical(bits: np.ndarray) -> np.ndarray:
    """Where float32 bits (as uint32) are a NaN other than the canonical one, or -0."""
    nan = ((bits & FLOAT_EXPONENT_BITS) == FLOAT_EXPONENT_BITS) & ((bits & FLOAT_FRACTION_BITS) != 0)
    return (nan & (bits != CANONICAL_NAN_BITS)) | (bits == NEGATIVE_ZERO_BITS)


def canonical(array: np.ndarray) -> np.ndarray:
    """The float32 array with every NaN made CANONICAL_NAN_BITS and every -0 made +0 (a new array)."""
    bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32).copy()
    nan = ((bits & FLOAT_EXPONENT_BITS) == FLOAT_EXPONENT_BITS) & ((bits & FLOAT_FRACTION_BITS) != 0)
    bits[nan] = CANONICAL_NAN_BITS
    bits[bits == NEGATIVE_ZERO_BITS] = 0
    return bits.view(np.float32)


def encoded_size(shape: tuple[int, ...]) -> int:
    """The bytes of a value of this shape."""
    return VALUE_HEADER_BYTES + ELEMENT_BYTES * (len(shape) + math.prod(shape))


def encode_value(array: np.ndarray) -> bytes:
    """A float32 or int32 array as a value's bytes (floats made canonical)."""
    array = np.asarray(array)
    if array.dtype == np.float32:
        kind, elements = KIND_F32, canonical(array).reshape(array.shape)
    elif array.dtype == np.int32:
        kind, elements = KIND_I32, array
    else:
        raise ValueFormatError(f"a value holds float32 or int32 elements, not {array.dtype}")
    if array.ndim > MAX_VALUE_RANK:
        raise ValueFormatError(f"a value of rank {array.ndim}; at most {MAX_VALUE_RANK}")
    if encoded_size(array.shape) > MAX_VALUE_BYTES:
        raise ValueFormatError(f"a value of shape {array.shape} does not fit in a {VALUE_REGION.size}-byte region")
    header = struct.pack(f">II{array.ndim}I", kind, array.ndim, *array.shape)
    return header + elements.astype(ELEMENT_DTYPES[kind], copy=False).tobytes()


def decode_value(data: bytes) -> Value:
    """A value's bytes, checked to be well formed: a known kind, a rank of at most 4, exactly as many
    bytes as the shape says, canonical floats."""
    if len(data) < VALUE_HEADER_BYTES:
        raise ValueFormatError(f"a value of {len(data)} bytes is shorter than its kind and rank")
    kind, rank = struct.unpack_from(">II", data)
    if kind not in ELEMENT_DTYPES:
        raise ValueFormatError(f"a value of unknown kind {kind}")
    if rank > MAX_VALUE_RANK:
        raise ValueFormatError(f"a value of rank {rank}; at most {MAX_VALUE_RANK}")
    if len(data) < VALUE_HEADER_BYTES + ELEMENT_BYTES * rank:
        raise ValueFormatError(f"a value of {len(data)} bytes is shorter than its rank-{rank} shape")
    shape = struct.unpack_from(f">{rank}I", data, VALUE_HEADER_BYTES)
    if len(data) != encoded_size(shape):
        raise ValueFormatError(f"a value of shape {list(shape)} is {encoded_size(shape)} bytes, not {len(data)}")
    offset = VALUE_HEADER_BYTES + ELEMENT_BYTES * rank
    raw = np.frombuffer(data, dtype=ELEMENT_DTYPES[kind], offset=offset)
    if kind == KIND_F32:
        bits = raw.view(">u4").astype(np.uint32)
        bad = noncanonical(bits)
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            raise ValueFormatError(f"element {at} of a value is not canonical (bits {int(bits[at]):#010x})")
        elements = raw.astype(np.float32)
    else:
        elements = raw.astype(np.int32)
    return Value(kind, elements.reshape(shape))


def value_root(value: bytes) -> bytes:
    """The root of a 2^28-byte region holding a u32 length, then `value`, then zeros."""
    if len(value) > MAX_VALUE_BYTES:
        raise ValueFormatError(f"a value of {len(value)} bytes does not fit in its region")
    return content_root(length_prefixed(value), VALUE_REGION.size_bits)


def first_leaf_proof(value: bytes) -> tuple[bytes, list[bytes]]:
    """The first 32-byte leaf of the value's region (it holds the value's u32 length) and its REGION_HEIGHT
    siblings up to the value root, bottom first: how a claim shows its output's length under the value root
    (docs/two-phase.md, "Results of graph claims"). The sibling of height h is the root of the region's
    bytes [32 * 2^h, 32 * 2^(h + 1))."""
    if len(value) > MAX_VALUE_BYTES:
        raise ValueFormatError(f"a value of {len(value)} bytes does not fit in its region")
    content = length_prefixed(value)
    leaf = content[:LEAF_BYTES].ljust(LEAF_BYTES, b"\0")
    siblings = [
        content_root(content[LEAF_BYTES << height : LEAF_BYTES << (height + 1)], height + 5)
        for height in range(REGION_HEIGHT)
    ]
    return leaf, siblings


def root_from_first_leaf(leaf: bytes, siblings: list[bytes]) -> bytes:
    """The value root a first leaf and its siblings give (the leaf is the leftmost at every height)."""
    node = leaf
    for sibling in siblings:
        node = hash_pair(node, sibling)
    return node
