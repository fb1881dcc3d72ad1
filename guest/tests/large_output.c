/* Writes an output of the length its input asks for: a big-endian u32 (0xFFFFFFFF, beyond the output
 * region, when the input is shorter than 4 bytes), then that many bytes 1, 2, ..., 255, 1, 2, ... (never
 * zero). Up to OPML_MAX_OUTPUT_BYTES its result is that output; beyond, the registry's result is "output too
 * large" and carries no bytes. Only the length prefix is written for lengths above FILL_LIMIT. */
#include "opml.h"

#define FILL_LIMIT (1u << 20)
#define FILL_PERIOD 255u

int main(void) {
    uint32_t input_length;
    const uint8_t *input = opml_input(&input_length);
    uint32_t length = input_length >= 4 ? opml_load_be32(input) : 0xFFFFFFFFu;
    if (length <= FILL_LIMIT) {
        volatile uint8_t *out = opml_output_buffer();
        for (uint32_t i = 0; i < length; i++) out[i] = (uint8_t)(i % FILL_PERIOD + 1u);
    }
    opml_set_output_length(length);
    return 0;
}
