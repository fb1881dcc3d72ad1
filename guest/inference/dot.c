/* opml_dot: a fast path for normal operands whose product and sum are normal, and compiler-rt's
 * operations for everything else (zeros, subnormals, infinities, NaNs, overflow, underflow), so
 * the result is always the one `acc += a * b` gives. The running sum is kept unpacked (sign,
 * exponent, significand) between steps. tests/vm/test_float_ops.py checks it against numpy,
 * natively on millions of operand triples and in the VM. */
#include "dot.h"

#define SIGN 0x80000000u
#define FRACTION 0x007fffffu
#define ONE 0x00800000u /* the implicit bit of a normal significand */
#define EXTRA 6         /* bits kept below the significand while adding */
#define HALF (1u << (EXTRA - 1))

typedef union {
    float f;
    uint32_t u;
} float_bits;

/* The general case: compiler-rt's multiply, then its add. */
__attribute__((noinline)) static float mac_slow(float acc, float a, float b) { return acc + a * b; }

/* 1 <= biased exponent <= 254: a normal, finite float. */
static inline int is_normal(uint32_t exponent) { return exponent - 1u < 254u; }

float opml_dot(float acc, const float *a, const float *b, uint32_t n, uint32_t stride) {
    float_bits sum = {acc};
    /* the running sum, unpacked while it is normal: sign, biased exponent, 24-bit significand */
    uint32_t s = sum.u & SIGN, e = (sum.u >> 23) & 0xffu, m = (sum.u & FRACTION) | ONE;
    int unpacked = is_normal(e);
    for (uint32_t i = 0; i < n; i++, a++, b += stride) {
        float_bits fa = {*a}, fb = {*b};
        uint32_t ux = fa.u, uy = fb.u;
        uint32_t ex = (ux >> 23) & 0xffu, ey = (uy >> 23) & 0xffu;
        if (!unpacked || !is_normal(ex) || !is_normal(ey)) goto slow;

        /* the product: 24 x 24 bits with the top one at bit 55 or 54 of hi:lo, rounded to 24 bits */
        uint64_t wide = (uint64_t)((ux << 8) | SIGN) * ((uy & FRACTION) | ONE);
        uint32_t hi = (uint32_t)(wide >> 32), lo = (uint32_t)wide;
        int32_t ep = (int32_t)(ex + ey) - 127;
        if (hi & ONE) {
            ep++;
        } else {
            hi = (hi << 1) | (lo >> 31);
            lo <<= 1;
        }
        hi += lo > SIGN - (hi & 1u); /* round to nearest, ties to even */
        if (hi >> 24) {
            hi >>= 1;
            ep++;
        }
        if ((uint32_t)ep - 1u >= 254u) goto slow; /* the product overflows or is subnormal */
        uint32_t sp = (ux ^ uy) & SIGN;

        /* the sum: big (sign sb, exponent eb, significand mb) plus small, |big| >= |small| */
        uint32_t sb, eb, mb, ss, ms, d;
        if ((int32_t)e > ep || ((int32_t)e == ep && m >= hi)) {
            sb = s, eb = e, mb = m, ss = sp, ms = hi, d = e - (uint32_t)ep;
        } else {
            sb = sp, eb = (uint32_t)ep, mb = hi, ss = s, ms = m, d = (uint32_t)ep - e;
        }
        mb <<= EXTRA; /* top bit at 29 */
        ms <<= EXTRA;
        if (d >= 30) {
            ms = 1; /* only a sticky bit is left of it */
        } else if (d) {
            ms = (ms >> d) | ((ms << (32 - d)) != 0);
        }
        uint32_t r;
        if (sb == ss) {
            r = mb + ms;
            if (r >> 30) {
                r = (r >> 1) | (r & 1u);
                eb++;
            }
        } else {
            r = mb - ms;
            if (r == 0) { /* x - x is +0 when rounding to nearest */
                sum.u = 0;
                e = 0;
                unpacked = 0;
                continue;
            }
            uint32_t shift = (uint32_t)__builtin_clz(r) - 2u;
            r <<= shift;
            if ((int32_t)eb <= (int32_t)shift) goto slow; /* the sum is subnormal */
            eb -= shift;
        }
        uint32_t low = r & ((1u << EXTRA) - 1u);
        r >>= EXTRA;
        r += low > HALF - (r & 1u);
        if (r >> 24) {
            r >>= 1;
            eb++;
        }
        if (eb >= 255u) goto slow; /* overflow */
        s = sb, e = eb, m = r;
        continue;

    slow:
        if (unpacked) sum.u = s | (((e - 1u) << 23) + m); /* m's implicit bit carries into the exponent */
        sum.f = mac_slow(sum.f, fa.f, fb.f);
        s = sum.u & SIGN, e = (sum.u >> 23) & 0xffu, m = (sum.u & FRACTION) | ONE;
        unpacked = is_normal(e);
    }
    if (unpacked) sum.u = s | (((e - 1u) << 23) + m);
    return sum.f;
}
