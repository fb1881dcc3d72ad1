"""Weights of a model file as float32, exactly as the guest computes them (guest/inference/llm_quant.c).

The float32 value of a stored weight, in this order:
- F32: the value.
- F16: the half's value, converted exactly (subnormal halves are normal floats; inf stays inf;
  a NaN keeps its payload shifted up 13 bits).
- Q4_1: d and m (halves, exactly), then `w = (float)q * d + m`: the product rounded, then the sum
  rounded (two float32 operations, never a fused multiply-add). The product of an 11-bit
  significand by q <= 15 is always exact; the sum is where rounding happens.
- Q8_0: `w = (float)q * d`, exact for every finite d (11 bits times 8 bits).

The kernels are numba loops over integers and float32 (numba keeps float32 arithmetic in
float32 and, without fastmath, contracts nothing), so each value is one IEEE operation.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .format import BLOCK_BYTES, BLOCK_WEIGHTS, Tensor, TensorType

F32 = np.float32
HALF_SIGN = 0x8000
HALF_EXPONENT = 0x1F
HALF_FRACTION = 0x3FF
HALF_HIDDEN_BIT = 0x400
EXPONENT_REBIAS = 127 - 15  # float32 bias minus half bias
Q4_1_SCALE, Q4_1_MIN, Q4_1_QUANTS = 0, 2, 4  # byte offsets in a Q4_1 block
Q8_0_SCALE, Q8_0_QUANTS = 0, 2


@njit(cache=True, inline="always")
def half_bits_to_float_bits(h: int) -> np.uint32:
    """The float32 bits of a half's value (exact)."""
    sign = np.uint32((h & HALF_SIGN) << 16)
    exponent = (h >> 10) & HALF_EXPONENT
    fraction = h & HALF_FRACTION
    if exponent == HALF_EXPONENT:  # inf or NaN
        return sign | np.uint32(0x7F800000) | np.uint32(fraction << 13)
    if exponent == 0:
        if fraction == 0:
            return sign
        shifts = 0  # a subnormal half: normalize it, a normal float32
        while not fraction & HALF_HIDDEN_BIT:
            fraction <<= 1
            shifts += 1
        return sign | np.uint32((EXPONENT_REBIAS + 1 - shifts) << 23) | np.uint32((fraction & HALF_FRACTION) << 13)
    return sign | np.uint32((exponent + EXPONENT_REBIAS) << 23) | np.uint32(fraction << 13)


@njit(cache=True, inline="always")
def half_at(blocks: np.ndarray, offset: int) -> np.float32:
    """The little-endian half at byte `offset` of a uint8 array, as a float32."""
    bits = half_bits_to_float_bits(int(blocks[offset]) | (int(blocks[offset + 1]) << 8))
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


@njit(cache=True)
def _dequantize_q4_1(data: np.ndarray, rows: int, cols: int, out: np.ndarray) -> None:
    block_bytes, per_row = 20, cols // BLOCK_WEIGHTS
    table = np.empty(16, np.float32)
    for r in range(rows):
        for b in range(per_row):
            base = (r * per_row + b) * block_bytes
            d = half_at(data, base + Q4_1_SCALE)
            m = half_at(data, base + Q4_1_MIN)
            for q in range(16):
                table[q] = np.float32(q) * d + m
            for j in range(16):
                byte = data[base + Q4_1_QUANTS + j]
                out[r, b * BLOCK_WEIGHTS + j] = table[byte & 15]
                out[r, b * BLOCK_WEIGHTS + 16 + j] = table[byte >> 4]


@njit(cache=True)
def _dequantize_q8_0(data: np.ndarray, rows: int, cols: int, out: np.ndarray) -> None:
    block_bytes, per_row = 34, cols // BLOCK_WEIGHTS
    for r in range(rows):
        for b in range(per_row):
            base = (r * per_row + b) * block_bytes
            d = half_at(data, base + Q8_0_SCALE)
            for j in range(BLOCK_WEIGHTS):
                q = np.int8(data[base + Q8_0_QUANTS + j])
                out[r, b * BLOCK_WEIGHTS + j] = np.float32(q) * d


@njit(cache=True)
def _dequantize_f16(data: np.ndarray, rows: int, cols: int, out: np.ndarray) -> None:
    for r in range(rows):
        for c in range(cols):
            out[r, c] = half_at(data, 2 * (r * cols + c))


def dequantize_raw(tensor_type: TensorType, data: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """[rows, cols] float32 of stored bytes (F32 stored big-endian)."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    if tensor_type == TensorType.F32:
        return data.view(">f4").astype(np.float32).reshape(rows, cols)
    out = np.empty((rows, cols), np.float32)
    if tensor_type == TensorType.F16:
        _dequantize_f16(data, rows, cols, out)
    elif tensor_type == TensorType.Q4_1:
        _dequantize_q4_1(data, rows, cols, out)
    elif tensor_type == TensorType.Q8_0:
        _dequantize_q8_0(data, rows, cols, out)
    else:
        raise ValueError(f"no dequantization for {tensor_type!r}")
    return out


def dequantize(tensor: Tensor, rows: slice | None = None) -> np.ndarray:
    """A tensor's weights (or those of a range of its rows) as [rows, cols] float32."""
    start, stop, _ = (rows or slice(None)).indices(tensor.rows)
    size = _row_bytes(tensor)
    return dequantize_raw(tensor.type, tensor.data[start * size : stop * size], stop - start, tensor.cols)


def _row_bytes(tensor: Tensor) -> int:
    if tensor.type in BLOCK_BYTES:
        return tensor.cols // BLOCK_WEIGHTS * BLOCK_BYTES[tensor.type]
    return tensor.cols * (4 if tensor.type == TensorType.F32 else 2)
