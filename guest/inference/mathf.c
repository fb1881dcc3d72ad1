/* Deterministic float32 exp, sigmoid and tanh from +, -, *, / and integer ops only,
 * in a fixed order, so opml/models/reference.py can reproduce every bit. */
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
