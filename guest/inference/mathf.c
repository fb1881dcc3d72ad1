/* Deterministic float32 exp, sigmoid, tanh, erf and sqrt from +, -, *, / and integer
 * ops only, in a fixed order, so opml/models/reference.py can reproduce every bit. */
#include "inference.h"

#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693145751953125f /* few mantissa bits: k * LN2_HI is exact */
#define LN2_LO 1.42860682030941723212e-6f
#define EXP_OVERFLOW 88.72283935546875f
#define EXP_UNDERFLOW -103.972084045410f

static float from_bits(uint32_t bits) {
    union {
        uint32_t u;
        float f;
    } v = {bits};
    return v.f;
}

/* 2^n for -126 <= n <= 127. */
static float power_of_two(int n) { return from_bits((uint32_t)(n + 127) << 23); }

float opml_expf(float x) {
    if (x != x) return x;
    if (x > EXP_OVERFLOW) return from_bits(0x7f800000u);
    if (x < EXP_UNDERFLOW) return 0.0f;
    /* x = k ln2 + r with |r| <= ln2 / 2 (Cody-Waite: ln2 in two parts) */
    float kf = x * LOG2E;
    int k = (int)(kf + (kf >= 0.0f ? 0.5f : -0.5f));
    float r = x - (float)k * LN2_HI;
    r = r - (float)k * LN2_LO;
    /* e^r by its Taylor series to degree 7, Horner's rule */
    float p = 1.98412698e-4f;
    p = p * r + 1.38888889e-3f;
    p = p * r + 8.33333333e-3f;
    p = p * r + 4.16666667e-2f;
    p = p * r + 1.66666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* times 2^k in two halves, so results near the ends of the range stay exact */
    int half = k / 2;
    return (p * power_of_two(half)) * power_of_two(k - half);
}

/* A NaN argument comes back as it is: NaN payloads otherwise depend on the soft float. */
float opml_sigmoidf(float x) { return x != x ? x : 1.0f / (1.0f + opml_expf(-x)); }

float opml_tanhf(float x) {
    if (x != x) return x;
    float magnitude = x < 0.0f ? -x : x;
    if (magnitude > 9.0f) return x < 0.0f ? -1.0f : 1.0f;
    float t = opml_expf(-2.0f * magnitude);
    float y = (1.0f - t) / (1.0f + t);
    return x < 0.0f ? -y : y;
}

/* erf(x) = x + x * P(x^2) for |x| < 1: P is the Taylor series of erf(x) / x - 1 to x^20. */
static const float ERF_SMALL[11] = {
    1.2837917e-01f, -3.7612638e-01f, 1.1283792e-01f, -2.6866172e-02f, 5.223978e-03f, -8.548327e-04f,
    1.20553326e-04f, -1.492565e-05f, 1.6462114e-06f, -1.6365844e-07f, 1.4807193e-08f,
};
/* erf(x) = 1 - exp(-x^2) * Q(1 / x) for 1 <= |x| < 4: Q is a least-squares fit of erfc(x) exp(x^2)
 * (degree 8 in 1 / x, on 20,001 points of [1, 4]). Beyond 4, erf rounds to +-1 in float32. */
static const float ERF_LARGE[9] = {
    0.00027267227f, 0.55901647f, 0.042087357f, -0.47150075f, 0.49553958f, -0.23834717f, 0.01941438f,
    0.031199962f, -0.010098984f,
};

/* Within 1.5 ulp of the true erf over all floats; a NaN argument comes back as it is. */
float opml_erff(float x) {
    if (x != x) return x;
    float magnitude = x < 0.0f ? -x : x;
    float y;
    if (magnitude < 1.0f) {
        float z = magnitude * magnitude;
        float p = ERF_SMALL[10];
        for (int i = 9; i >= 0; i--) p = p * z + ERF_SMALL[i];
        y = magnitude + magnitude * p;
    } else if (magnitude < 4.0f) {
        float t = 1.0f / magnitude;
        float q = ERF_LARGE[8];
        for (int i = 7; i >= 0; i--) q = q * t + ERF_LARGE[i];
        y = 1.0f - opml_expf(-(magnitude * magnitude)) * q;
    } else {
        y = 1.0f;
    }
    return x < 0.0f ? -y : y;
}

/* The correctly rounded square root (IEEE 754, to nearest), with x86's NaNs as __divsf3 has
 * them: a NaN comes back quieted, the root of a negative number is the default NaN 0xffc00000. */
float opml_sqrtf(float x) {
    union {
        float f;
        uint32_t u;
    } v = {x};
    uint32_t magnitude = v.u & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return from_bits(v.u | 0x00400000u);
    if (magnitude == 0 || v.u == 0x7f800000u) return x; /* +-0 and +inf are their own roots */
    if (v.u >> 31) return from_bits(0xffc00000u);
    /* x = m * 2^e with m an integer of 24 bits (subnormals normalized) */
    int e = (int)(magnitude >> 23);
    uint32_t m = magnitude & 0x007fffffu;
    if (e == 0) {
        e = 1;
        while (!(m & 0x00800000u)) {
            m <<= 1;
            e--;
        }
    } else {
        m |= 0x00800000u;
    }
    e -= 150;
    /* x = radicand * 2^(e - 26) with e even and radicand in [2^48, 2^50): its root has 25 bits, one
     * more than the result */
    uint64_t radicand = (uint64_t)m << (26 - (e & 1));
    e += e & 1;
    uint64_t root = 0, bit = 1ull << 50;
    while (bit > radicand) bit >>= 2;
    while (bit) { /* digit by digit: root = floor(sqrt(radicand)) */
        if (radicand >= root + bit) {
            radicand -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    /* round the last bit off: a tie is impossible for a square root, a remainder breaks it anyway */
    uint32_t result = (uint32_t)(root >> 1);
    if ((root & 1u) && (radicand != 0 || (result & 1u))) result++;
    /* the root's value is result * 2^((e - 26) / 2 + 1); put it in float32 bits (result < 2^24 + 1) */
    int exponent = (e - 26) / 2 + 1 + 23 + 127;
    return from_bits(((uint32_t)(exponent - 1) << 23) + result);
}
