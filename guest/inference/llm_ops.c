/* The ops of a llama forward pass, in the float32 order opml/models/llm/ops.py states (and equal to it
 * bit for bit): every sum in order from +0, each multiply-add two roundings (opml_dot), no FMA.
 * Every output goes through llm_canonical. */
#include "llm.h"
#include "dot.h"

#define CANONICAL_NAN 0x7fc00000u

typedef union {
    float f;
    uint32_t u;
} float_bits;

void llm_canonical(float *values, uint32_t count) {
    uint32_t *bits = (uint32_t *)values;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t magnitude = bits[i] & 0x7fffffffu;
        if (magnitude > 0x7f800000u) bits[i] = CANONICAL_NAN;
        else if (magnitude == 0) bits[i] = 0; /* -0 -> +0 */
    }
}

void llm_embed(const struct llm_tensor *table, const int32_t *ids, uint32_t count, float *out) {
    for (uint32_t r = 0; r < count; r++) llm_dequantize_row(table, (uint32_t)ids[r], out + r * table->cols);
    llm_canonical(out, count * table->cols);
}

/* Each row: total = sum x[i] * x[i]; scale = 1 / sqrt(total / n + eps); y[i] = w[i] * (x[i] * scale). */
void llm_rms_norm(const float *x, uint32_t rows, uint32_t n, const float *weight, float epsilon, float *out) {
    for (uint32_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float total = opml_dot(0.0f, xr, xr, n, 1);
        float scale = 1.0f / opml_sqrtf(total / (float)n + epsilon);
        for (uint32_t i = 0; i < n; i++) out[r * n + i] = weight[i] * (xr[i] * scale);
    }
    llm_canonical(out, rows * n);
}

/* out[r][j] = sum over i of w[first + j][i] * x[r][i]: each weight row dequantized once into
 * row_buffer (w->cols floats), then one opml_dot per input row. */
void llm_matmul(const float *x, uint32_t rows, const struct llm_tensor *w, uint32_t first, uint32_t count,
                float *row_buffer, float *out) {
    uint32_t n = w->cols;
    for (uint32_t j = 0; j < count; j++) {
        llm_dequantize_row(w, first + j, row_buffer);
        for (uint32_t r = 0; r < rows; r++) out[r * count + j] = opml_dot(0.0f, row_buffer, x + r * n, n, 1);
    }
    llm_canonical(out, rows * count);
}

/* Pairs (2i, 2i+1) of each head of row r, rotated by the angles of position first_position + r:
 * table row p holds cos(theta[p][i]) for i < head_dim / 2, then sin(theta[p][i]). */
void llm_rope(const float *x, uint32_t rows, uint32_t heads, uint32_t head_dim, const float *table,
              uint32_t first_position, float *out) {
    uint32_t half = head_dim / 2, width = heads * head_dim;
    for (uint32_t r = 0; r < rows; r++) {
        const float *cosines = table + (first_position + r) * head_dim, *sines = cosines + half;
        for (uint32_t h = 0; h < heads; h++) {
            uint32_t base = r * width + h * head_dim;
            for (uint32_t i = 0; i < half; i++) {
                float a = x[base + 2 * i], b = x[base + 2 * i + 1], c = cosines[i], s = sines[i];
                out[base + 2 * i] = a * c - b * s;
                out[base + 2 * i + 1] = a * s + b * c;
            }
        }
    }
    llm_canonical(out, rows * width);
}

/* Causal grouped-query attention of q's rows at the last `rows` of `positions` cached positions;
 * scores: room for `positions` floats. */
void llm_attention(const float *q, uint32_t rows, const float *keys, const float *values, uint32_t positions,
                   uint32_t heads, uint32_t kv_heads, uint32_t head_dim, float *scores, float *out) {
    uint32_t width = heads * head_dim, kv_width = kv_heads * head_dim, group = heads / kv_heads;
    uint32_t first = positions - rows;
    float scale = 1.0f / opml_sqrtf((float)head_dim);
    for (uint32_t r = 0; r < rows; r++) {
        uint32_t count = first + r + 1;
        for (uint32_t h = 0; h < heads; h++) {
            const float *qh = q + r * width + h * head_dim;
            uint32_t kb = (h / group) * head_dim;
            for (uint32_t t = 0; t < count; t++) scores[t] = opml_dot(0.0f, qh, keys + t * kv_width + kb, head_dim, 1) * scale;
            float largest = scores[0];
            for (uint32_t t = 1; t < count; t++)
                if (scores[t] > largest) largest = scores[t];
            float total = 0.0f;
            for (uint32_t t = 0; t < count; t++) {
                scores[t] = opml_expf(scores[t] - largest);
                total += scores[t];
            }
            for (uint32_t t = 0; t < count; t++) scores[t] = scores[t] / total;
            float *oh = out + r * width + h * head_dim;
            for (uint32_t d = 0; d < head_dim; d++) oh[d] = opml_dot(0.0f, scores, values + kb + d, count, kv_width);
        }
    }
    llm_canonical(out, rows * width);
}

/* (g / (1 + exp(-g))) * u: SiLU of the gate times the up projection. */
void llm_swiglu(const float *gate, const float *up, uint32_t count, float *out) {
    for (uint32_t i = 0; i < count; i++) {
        float g = gate[i];
        out[i] = (g / (1.0f + opml_expf(-g))) * up[i];
    }
    llm_canonical(out, count);
}

void llm_add(const float *a, const float *b, uint32_t count, float *out) {
    for (uint32_t i = 0; i < count; i++) out[i] = a[i] + b[i];
    llm_canonical(out, count);
}

/* The first index of the largest (a NaN is never larger). */
uint32_t llm_argmax(const float *x, uint32_t count) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < count; i++)
        if (x[i] > x[best]) best = i;
    return best;
}
