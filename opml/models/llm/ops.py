"""The ops of a llama forward pass on explicit values, bit for bit what the guest computes
(guest/inference/llm_ops.c; docs/llm.md states each op's float32 order).

A value is a float32 array [rows, cols] (one row per token: activations [R, width], queries
[R, heads * head_dim], a KV cache [T, kv_heads * head_dim], logits [1, vocab]) or token ids,
int32 [R]. Weights are not values: they are tensors of the model file. Every op returns a new
value in canonical form: any NaN is 0x7FC00000 and -0 is +0, so two values are equal exactly
when their bytes are (IEEE leaves NaN payloads open, and the soft float of the guest picks
others than x86).

Float rules (the project's): every operation is one IEEE float32 operation rounded to nearest
even; no fused multiply-add; sums run in the order stated, from +0. The kernels are numba loops
without fastmath (numba then neither reassociates nor contracts); they vectorize only across
independent outputs, never inside one sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .format import Tensor
from .quant import dequantize

F32 = np.float32
CANONICAL_NAN = np.uint32(0x7FC00000)
OUTPUT_BLOCK = 256  # outputs computed together in a matrix product (a cache-sized slice of the weights)

# opml_expf (guest/inference/mathf.c), the same constants
LOG2E = F32(1.44269504088896341)
LN2_HI = F32(0.693145751953125)
LN2_LO = F32(1.42860682030941723212e-6)
EXP_OVERFLOW = F32(88.72283935546875)
EXP_UNDERFLOW = F32(-103.972084045410)
EXP_TAYLOR = np.array(
    [1.98412698e-4, 1.38888889e-3, 8.33333333e-3, 4.16666667e-2, 1.66666667e-1, 0.5, 1.0, 1.0], dtype=np.float32
)


class OpError(ValueError):
    """An op applied to values it cannot take (a shape that does not fit, a token id outside the vocabulary)."""


def canonical(values: np.ndarray) -> np.ndarray:
    """NaN -> 0x7FC00000 and -0 -> +0, in place; the array."""
    flat = values.reshape(-1)
    flat[np.isnan(flat)] = CANONICAL_NAN.view(np.float32)
    flat[flat == 0] = F32(0)  # -0 == 0: both become +0
    return values


# --- scalar math, as mathf.c ------------------------------------------------------------------


@njit(cache=True)
def _power_of_two(n: int) -> np.float32:
    return np.array([np.uint32((n + 127) << 23)], dtype=np.uint32).view(np.float32)[0]


@njit(cache=True)
def expf(x: np.float32) -> np.float32:
    """opml_expf: Cody-Waite reduction by ln 2, a degree-7 Taylor polynomial, scaling by 2^k in two halves."""
    if x != x:
        return x
    if x > EXP_OVERFLOW:
        return np.float32(np.inf)
    if x < EXP_UNDERFLOW:
        return np.float32(0.0)
    kf = x * LOG2E
    k = int(kf + (np.float32(0.5) if kf >= np.float32(0.0) else np.float32(-0.5)))  # truncates toward zero, as C
    r = x - np.float32(k) * LN2_HI
    r = r - np.float32(k) * LN2_LO
    p = EXP_TAYLOR[0]
    for i in range(1, EXP_TAYLOR.size):
        p = p * r + EXP_TAYLOR[i]
    half = k // 2 if k >= 0 else -((-k) // 2)  # C's k / 2
    return (p * _power_of_two(half)) * _power_of_two(k - half)


# --- kernels ------------------------------------------------------------------------------------


@njit(cache=True)
def _matmul(x: np.ndarray, weights_t: np.ndarray, first: int, out: np.ndarray) -> None:
    """out[r, j] = sum over i in order of w[first + j, i] * x[r, i], from +0; weights_t is w transposed [in, rows].

    Each out[r, j] is its own sequential sum; the loops only interleave independent sums (a block of
    OUTPUT_BLOCK outputs of every row at once, which numba vectorizes)."""
    rows, inputs = x.shape
    outputs = out.shape[1]
    acc = np.empty((rows, OUTPUT_BLOCK), np.float32)
    for start in range(0, outputs, OUTPUT_BLOCK):
        count = min(OUTPUT_BLOCK, outputs - start)
        acc[:, :] = 0
        for i in range(inputs):
            w = weights_t[i, first + start : first + start + count]
            for r in range(rows):
                xi = x[r, i]
                a = acc[r]
                for j in range(count):
                    a[j] = a[j] + w[j] * xi
        out[:, start : start + count] = acc[:, :count]


@njit(cache=True)
def _rms_norm(x: np.ndarray, weight: np.ndarray, epsilon: np.float32, out: np.ndarray) -> None:
    rows, n = x.shape
    for r in range(rows):
        total = np.float32(0.0)
        for i in range(n):
            total += x[r, i] * x[r, i]
        mean = total / np.float32(n)
        scale = np.float32(1.0) / np.sqrt(mean + epsilon)
        for i in range(n):
            out[r, i] = weight[i] * (x[r, i] * scale)


@njit(cache=True)
def _rope(x: np.ndarray, table: np.ndarray, first: int, heads: int, out: np.ndarray) -> None:
    rows = x.shape[0]
    head_dim = x.shape[1] // heads
    half = head_dim // 2
    for r in range(rows):
        position = first + r
        for h in range(heads):
            base = h * head_dim
            for i in range(half):
                c, s = table[position, i], table[position, half + i]
                a, b = x[r, base + 2 * i], x[r, base + 2 * i + 1]
                out[r, base + 2 * i] = a * c - b * s
                out[r, base + 2 * i + 1] = a * s + b * c


@njit(cache=True)
def _attention(
    q: np.ndarray, keys: np.ndarray, values: np.ndarray, heads: int, kv_heads: int, scale: np.float32, out: np.ndarray
) -> None:
    rows = q.shape[0]
    head_dim = q.shape[1] // heads
    first = keys.shape[0] - rows  # the position of q's first row
    group = heads // kv_heads
    weights = np.empty(keys.shape[0], np.float32)
    for r in range(rows):
        count = first + r + 1  # causal: the keys at positions 0..first + r
        for h in range(heads):
            qb, kb = h * head_dim, (h // group) * head_dim
            for t in range(count):
                acc = np.float32(0.0)
                for d in range(head_dim):
                    acc += q[r, qb + d] * keys[t, kb + d]
                weights[t] = acc * scale
            largest = weights[0]
            for t in range(1, count):
                if weights[t] > largest:
                    largest = weights[t]
            total = np.float32(0.0)
            for t in range(count):
                weights[t] = expf(weights[t] - largest)
                total += weights[t]
            for t in range(count):
                weights[t] = weights[t] / total
            for d in range(head_dim):
                acc = np.float32(0.0)
                for t in range(count):
                    acc += weights[t] * values[t, kb + d]
                out[r, qb + d] = acc


@njit(cache=True)
def _swiglu(gate: np.ndarray, up: np.ndarray, out: np.ndarray) -> None:
    flat_gate, flat_up, flat_out = gate.reshape(-1), up.reshape(-1), out.reshape(-1)
    for i in range(flat_out.size):
        g = flat_gate[i]
        flat_out[i] = (g / (np.float32(1.0) + expf(-g))) * flat_up[i]


# --- the ops --------------------------------------------------------------------------------------


@dataclass
class Matrix:
    """A weight matrix of the model file and, made on first use, its float32 transpose for the reference."""

    tensor: Tensor
    _transposed: np.ndarray | None = field(default=None, repr=False)

    @property
    def rows(self) -> int:
        return self.tensor.rows

    @property
    def cols(self) -> int:
        return self.tensor.cols

    def transposed(self) -> np.ndarray:
        if self._transposed is None:
            self._transposed = np.ascontiguousarray(dequantize(self.tensor).T)
        return self._transposed


def _float_value(x: np.ndarray, cols: int | None = None, what: str = "value") -> np.ndarray:
    if x.dtype != np.float32 or x.ndim != 2 or (cols is not None and x.shape[1] != cols):
        raise OpError(
            f"{what}: expected float32 [rows, {cols if cols is not None else 'cols'}], got {x.dtype} {x.shape}"
        )
    return np.ascontiguousarray(x)


def embed(table: Tensor, ids: np.ndarray) -> np.ndarray:
    """[R, width]: row ids[r] of the embedding table, dequantized."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu" or ids.size == 0:
        raise OpError(f"token ids must be a non-empty integer vector, got {ids.dtype} {ids.shape}")
    if (ids < 0).any() or (ids >= table.rows).any():
        raise OpError(f"a token id outside the vocabulary of {table.rows}")
    rows = [dequantize(table, slice(int(i), int(i) + 1)) for i in ids]
    return canonical(np.concatenate(rows))


def rms_norm(x: np.ndarray, weight: np.ndarray, epsilon: float) -> np.ndarray:
    """Each row: `total = sum x[i] * x[i]` in order, `scale = 1 / sqrt(total / n + eps)`, `y[i] = w[i] * (x[i] * scale)`."""
    weight = np.asarray(weight, np.float32).reshape(-1)
    x = _float_value(x, weight.size, "rms_norm input")
    out = np.empty_like(x)
    with np.errstate(all="ignore"):
        _rms_norm(x, weight, F32(epsilon), out)
    return canonical(out)


def matmul(x: np.ndarray, weight: Matrix, rows: tuple[int, int] | None = None) -> np.ndarray:
    """[R, out] = x[R, in] @ W^T: `acc = +0; acc += w[j][i] * x[r][i]` for i = 0.. (rows: only W's rows start..stop)."""
    x = _float_value(x, weight.cols, "matmul input")
    start, stop = rows if rows is not None else (0, weight.rows)
    if not 0 <= start < stop <= weight.rows:
        raise OpError(f"rows {start}..{stop} of a matrix of {weight.rows}")
    out = np.empty((x.shape[0], stop - start), np.float32)
    with np.errstate(all="ignore"):
        _matmul(x, weight.transposed(), start, out)
    return canonical(out)


def rope(x: np.ndarray, table: np.ndarray, first_position: int, heads: int) -> np.ndarray:
    """Rotate each head's pairs (2i, 2i+1) of row r by the angles of position first_position + r:
    `y[2i] = a * cos - b * sin`, `y[2i+1] = a * sin + b * cos` (each product rounded, then the sum)."""
    x = _float_value(x, None, "rope input")
    head_dim = table.shape[1]
    if x.shape[1] != heads * head_dim:
        raise OpError(f"rope of {x.shape[1]} values for {heads} heads of {head_dim}")
    if not (0 <= first_position and first_position + x.shape[0] <= table.shape[0]):
        raise OpError(
            f"positions {first_position}..{first_position + x.shape[0] - 1} beyond the table's {table.shape[0]}"
        )
    out = np.empty_like(x)
    with np.errstate(all="ignore"):
        _rope(x, table, first_position, heads, out)
    return canonical(out)


def kv_append(cache: np.ndarray | None, new: np.ndarray) -> np.ndarray:
    """The cache with the new rows after its own (values moved, not computed): [T + R, cols]."""
    new = _float_value(new, None, "kv_append rows")
    if cache is None:
        return new.copy()
    cache = _float_value(cache, new.shape[1], "kv cache")
    return np.concatenate([cache, new])


def attention_scale(head_dim: int) -> np.float32:
    """1 / sqrt(head_dim) in float32: `1.0f / sqrtf((float)head_dim)` (0.125 for 64)."""
    return F32(1) / np.sqrt(F32(head_dim))


def attention(q: np.ndarray, keys: np.ndarray, values: np.ndarray, heads: int, kv_heads: int) -> np.ndarray:
    """Causal grouped-query attention of q's rows, at the last positions of the caches [T, kv_heads * head_dim].

    For query row r (position p = T - R + r) and head h (kv head g = h / (heads / kv_heads)):
    `s[t] = (sum q[d] * k[t][d] in order) * scale` for t = 0..p; `m` = the first largest s (a NaN is never
    larger); `e[t] = exp(s[t] - m)`; `total = sum e[t]` in order; `w[t] = e[t] / total`;
    `out[d] = sum w[t] * v[t][d]` in order over t. Output [R, heads * head_dim]."""
    q = _float_value(q, None, "attention queries")
    keys, values = (_float_value(a, None, "kv cache") for a in (keys, values))
    head_dim = q.shape[1] // heads if heads else 0
    if heads % kv_heads or q.shape[1] != heads * head_dim or keys.shape != values.shape:
        raise OpError(f"attention of {q.shape} over {keys.shape} / {values.shape}")
    if keys.shape[1] != kv_heads * head_dim or keys.shape[0] < q.shape[0]:
        raise OpError(f"a cache of {keys.shape} for {q.shape[0]} queries of {kv_heads} kv heads")
    out = np.empty_like(q)
    with np.errstate(all="ignore"):
        _attention(q, keys, values, heads, kv_heads, attention_scale(head_dim), out)
    return canonical(out)


def swiglu(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    """`(g / (1 + exp(-g))) * u` elementwise: SiLU of the gate times the up projection."""
    gate = _float_value(gate, None, "swiglu gate")
    up = _float_value(up, gate.shape[1], "swiglu up")
    if gate.shape != up.shape:
        raise OpError(f"swiglu of {gate.shape} and {up.shape}")
    out = np.empty_like(gate)
    with np.errstate(all="ignore"):
        _swiglu(gate, up, out)
    return canonical(out)


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`a + b` elementwise (a residual connection)."""
    a = _float_value(a, None, "add")
    b = _float_value(b, a.shape[1], "add")
    if a.shape != b.shape:
        raise OpError(f"add of {a.shape} and {b.shape}")
    with np.errstate(all="ignore"):
        return canonical(a + b)


def last_row(x: np.ndarray) -> np.ndarray:
    """[1, cols]: the last row (the position whose logits choose the next token)."""
    return _float_value(x, None, "last_row").copy()[-1:]


def concat(parts: list[np.ndarray]) -> np.ndarray:
    """The parts side by side along the columns (the chunks of one product)."""
    rows = parts[0].shape[0]
    for part in parts:
        _float_value(part, None, "concat")
        if part.shape[0] != rows:
            raise OpError(f"concat of {[p.shape for p in parts]}")
    return np.concatenate(parts, axis=1)


def argmax(logits: np.ndarray) -> np.ndarray:
    """int32 [1]: the first index of the largest of the one row (`if (v > best)`: a NaN is never larger)."""
    logits = _float_value(logits, None, "argmax")
    if logits.shape[0] != 1:
        raise OpError(f"argmax of {logits.shape}: one row expected")
    row = logits[0]
    best = 0
    largest = row[0]
    # numpy's argmax returns the first maximum but takes NaN as the largest; ours never does
    finite_order = np.where(np.isnan(row), -np.inf, row)
    candidate = int(np.argmax(finite_order))
    if not np.isnan(largest) and finite_order[candidate] > largest:
        best = candidate
    return np.array([best], dtype=np.int32)
