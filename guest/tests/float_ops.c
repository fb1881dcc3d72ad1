/* Soft-float check: input = u32 op (0 add, 1 sub, 2 mul, 3 div, 4 int->float, 5 float->int)
 * followed by pairs of big-endian float32; output = one result per pair. Compared
 * bit for bit with numpy in tests/vm/test_float_ops.py. */
#include "check.h"

int main(void) {
    uint32_t length;
    const uint8_t *input = opml_input(&length);
    if (length < 4) return 1;
    uint32_t op = opml_load_be32(input);
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
