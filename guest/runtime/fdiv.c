/* Correctly rounded float32 division (IEEE 754, round to nearest, ties to even).
 *
 * It replaces compiler-rt's __divsf3, which truncates quotients that are subnormal:
 * the guest must compute what a native float32 reference computes, bit for bit.
 * NaNs follow x86: a NaN operand comes back quieted (the first one if both are);
 * an invalid division (0/0, inf/inf) gives the default NaN 0xffc00000. */
#include "opml.h"

#define SIGN 0x80000000u
#define EXPONENT 0x7f800000u
#define FRACTION 0x007fffffu
#define IMPLICIT_ONE 0x00800000u
#define QUIET 0x00400000u
#define DEFAULT_NAN 0xffc00000u
#define EXTRA_BITS 3 /* guard and two more below the 24-bit significand */

typedef union {
    float f;
    uint32_t u;
} float_bits;

static float from_bits(uint32_t u) {
    float_bits v;
    v.u = u;
    return v.f;
}

/* The significand with its implicit one, and the unbiased-plus-127 exponent,
 * of a finite nonzero magnitude (subnormals are normalized). */
static uint32_t unpack(uint32_t magnitude, int32_t *exponent) {
    uint32_t significand = magnitude & FRACTION;
    *exponent = (int32_t)(magnitude >> 23);
    if (*exponent == 0) {
        *exponent = 1;
        while (!(significand & IMPLICIT_ONE)) {
            significand <<= 1;
            (*exponent)--;
        }
        return significand;
    }
    return significand | IMPLICIT_ONE;
}

float __divsf3(float a, float b) {
    float_bits x = {a}, y = {b};
    uint32_t sign = (x.u ^ y.u) & SIGN;
    uint32_t ax = x.u & ~SIGN, ay = y.u & ~SIGN;
    if (ax > EXPONENT) return from_bits(x.u | QUIET);
    if (ay > EXPONENT) return from_bits(y.u | QUIET);
    if (ax == EXPONENT) return from_bits(ay == EXPONENT ? DEFAULT_NAN : sign | EXPONENT);
    if (ay == EXPONENT) return from_bits(sign);
    if (ay == 0) return from_bits(ax == 0 ? DEFAULT_NAN : sign | EXPONENT);
    if (ax == 0) return from_bits(sign);

    int32_t ea, eb;
    uint32_t ma = unpack(ax, &ea), mb = unpack(ay, &eb);
    /* ma / mb is in (1/2, 2): 27 or 28 quotient bits, the rest goes to sticky */
    uint64_t numerator = (uint64_t)ma << 27;
    uint32_t q = (uint32_t)(numerator / mb);
    uint32_t sticky = (numerator % mb) != 0;
    int32_t e;
    if (q >= (1u << 27)) {
        sticky |= q & 1;
        q >>= 1;
        e = ea - eb + 127;
    } else {
        e = ea - eb + 126;
    }
    /* now the quotient is q / 2^26 * 2^(e - 127) with q in [2^26, 2^27) */
    if (e >= 255) return from_bits(sign | EXPONENT);
    if (e <= 0) { /* subnormal: shift the extra bits out into sticky */
        uint32_t shift = (uint32_t)(1 - e);
        if (shift > 27) {
            sticky |= q != 0;
            q = 0;
        } else {
            sticky |= (q & ((1u << shift) - 1)) != 0;
            q >>= shift;
        }
    }
    uint32_t guard = (q >> (EXTRA_BITS - 1)) & 1;
    uint32_t below = (q & ((1u << (EXTRA_BITS - 1)) - 1)) | sticky;
    q >>= EXTRA_BITS;
    if (guard && (below || (q & 1))) q++;
    /* a normal significand carries its implicit one into the exponent field */
    uint32_t result = e <= 0 ? q : ((uint32_t)(e - 1) << 23) + q;
    if (result >= EXPONENT) result = EXPONENT;
    return from_bits(sign | result);
}
