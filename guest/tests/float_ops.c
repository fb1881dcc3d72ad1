/* Soft-float check: input = u32 op (0 add, 1 sub, 2 mul, 3 div, 4 int->float, 5 float->int)
 * followed by pairs of big-endian float32; output = one result per pair. Op 6: triples
 * (acc, a, b), one opml_mac each; op 7: rows of acc and DOT_LENGTH pairs, one opml_dot each.
 * Compared bit for bit with numpy in tests/vm/test_float_ops.py. */
#include "check.h"
#include "dot.h"

#define DOT_LENGTH 16

/* Ops 6 and 7: the inference program's multiply-adds over groups of `group` floats. */
static int multiply_adds(uint32_t op, const float *values, uint32_t length) {
    uint32_t group = op == 6 ? 3 : 1 + 2 * DOT_LENGTH, count = length / (4 * group);
    float *out = (float *)opml_output_buffer();
    for (uint32_t i = 0; i < count; i++) {
        const float *g = values + i * group;
        out[i] = op == 6 ? opml_mac(g[0], g[1], g[2]) : opml_dot(g[0], g + 1, g + 1 + DOT_LENGTH, DOT_LENGTH, 1);
    }
    opml_set_output_length(4 * count);
    return 0;
}

int main(void) {
    uint32_t length;
    const uint8_t *input = opml_input(&length);
    if (length < 4) return 1;
    uint32_t op = opml_load_be32(input);
    if (op == 6 || op == 7) return multiply_adds(op, (const float *)(input + 4), length - 4);
    const float *pairs = (const float *)(input + 4);
    uint32_t count = (length - 4) / 8;
    float *out = (float *)opml_output_buffer();
    for (uint32_t i = 0; i < count; i++) {
        float a = pairs[2 * i], b = pairs[2 * i + 1];
        float r;
        if (op == 0) r = a + b;
        else if (op == 1) r = a - b;
        else if (op == 2) r = a * b;
        else if (op == 3) r = a / b;
        else if (op == 4) r = (float)(int32_t)opml_load_be32(&pairs[2 * i]);
        else {
            int32_t v = (int32_t)a;
            opml_store_be32(&r, (uint32_t)v);
        }
        out[i] = r;
    }
    opml_set_output_length(4 * count);
    return 0;
}
