/* Weights as float32, bit for bit opml/models/llm/quant.py:
 *   F16:  the half's value, exact;
 *   Q4_1: (float)q * d + m, the product rounded (it is always exact), then the sum rounded;
 *   Q8_0: (float)q * d, exact for every finite d.
 * The VM is big-endian and the blocks little-endian: a half is read as two bytes. */
#include "llm.h"
#include "dot.h"

#define HALF_SIGN 0x8000u
#define HALF_EXPONENT 0x1fu
#define HALF_FRACTION 0x3ffu
#define HALF_HIDDEN_BIT 0x400u
#define EXPONENT_REBIAS (127u - 15u)
#define FLOAT_EXPONENT_MASK 0x7f800000u

typedef union {
    float f;
    uint32_t u;
} float_bits;

static uint32_t half_to_float_bits(uint32_t h) {
    uint32_t sign = (h & HALF_SIGN) << 16, exponent = (h >> 10) & HALF_EXPONENT, fraction = h & HALF_FRACTION;
    if (exponent == HALF_EXPONENT) return sign | FLOAT_EXPONENT_MASK | (fraction << 13); /* inf, NaN */
    if (exponent == 0) {
        if (fraction == 0) return sign;
        uint32_t shifts = 0; /* a subnormal half is a normal float */
        while (!(fraction & HALF_HIDDEN_BIT)) {
            fraction <<= 1;
            shifts++;
        }
        return sign | ((EXPONENT_REBIAS + 1u - shifts) << 23) | ((fraction & HALF_FRACTION) << 13);
    }
    return sign | ((exponent + EXPONENT_REBIAS) << 23) | (fraction << 13);
}

float llm_half(const uint8_t *p) {
    float_bits v;
    v.u = half_to_float_bits((uint32_t)p[0] | ((uint32_t)p[1] << 8));
    return v.f;
}

/* (float)q * d for a finite, nonzero d whose significand has at most 11 bits (a half's): the exact
 * product, built with integer operations (the product of 11 and 8 bits always fits a float). */
static float exact_product(int32_t q, float d) {
    float_bits v = {d};
    uint32_t exponent = (v.u >> 23) & 0xffu;
    if (q == 0 || exponent == 0 || exponent == 0xffu) return (float)q * d; /* zeros, infinities, NaNs */
    uint32_t magnitude = q < 0 ? (uint32_t)-q : (uint32_t)q;
    uint32_t product = (((v.u & 0x007fffffu) | 0x00800000u) >> 13) * magnitude; /* <= 2^11 * 2^8 */
    uint32_t top = 31u - (uint32_t)__builtin_clz(product);                        /* its highest bit */
    uint32_t sign = (v.u & 0x80000000u) ^ (q < 0 ? 0x80000000u : 0u);
    /* value = product * 2^(exponent - 127 - 10): a float with biased exponent top + exponent - 10 */
    v.u = sign | ((top + exponent - 10u) << 23) | ((product << (23u - top)) & 0x007fffffu);
    return v.f;
}

/* The 16 values of a Q4_1 block: table[q] = (float)q * d + m. */
static const float SMALL_INTEGERS[16] = {0.0f, 1.0f, 2.0f,  3.0f,  4.0f,  5.0f,  6.0f,  7.0f,
                                         8.0f, 9.0f, 10.0f, 11.0f, 12.0f, 13.0f, 14.0f, 15.0f};

static void q4_1_row(const uint8_t *block, uint32_t blocks, float *out) {
    float table[16];
    for (uint32_t b = 0; b < blocks; b++, block += LLM_Q4_1_BLOCK_BYTES, out += LLM_BLOCK_WEIGHTS) {
        float d = llm_half(block), m = llm_half(block + 2);
        for (uint32_t q = 0; q < 16; q++) table[q] = opml_mac(m, SMALL_INTEGERS[q], d); /* m + q * d */
        const uint8_t *quants = block + 4;
        for (uint32_t j = 0; j < 16; j++) {
            uint32_t byte = quants[j];
            out[j] = table[byte & 15u];
            out[j + 16] = table[byte >> 4];
        }
    }
}

static void q8_0_row(const uint8_t *block, uint32_t blocks, float *out) {
    for (uint32_t b = 0; b < blocks; b++, block += LLM_Q8_0_BLOCK_BYTES, out += LLM_BLOCK_WEIGHTS) {
        float d = llm_half(block);
        const int8_t *quants = (const int8_t *)(block + 2);
        for (uint32_t j = 0; j < LLM_BLOCK_WEIGHTS; j++) out[j] = exact_product(quants[j], d);
    }
}

void llm_dequantize_row(const struct llm_tensor *t, uint32_t row, float *out) {
    const uint8_t *data = t->data + row * llm_row_bytes(t->type, t->cols);
    switch (t->type) {
    case LLM_F32: memcpy(out, data, t->cols * 4u); break;
    case LLM_F16:
        for (uint32_t i = 0; i < t->cols; i++) out[i] = llm_half(data + 2u * i);
        break;
    case LLM_Q4_1: q4_1_row(data, t->cols / LLM_BLOCK_WEIGHTS, out); break;
    default: q8_0_row(data, t->cols / LLM_BLOCK_WEIGHTS, out); break;
    }
}
