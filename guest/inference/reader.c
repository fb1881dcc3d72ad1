/* Bounds-checked reading of the model bytes: every read past the end sets an
 * error instead of touching memory outside the model. */
#include "inference.h"

uint32_t read_u32(struct reader *r) {
    if (r->error) return 0;
    if (r->length - r->position < 4 || r->position > r->length) {
        r->error = EXIT_TRUNCATED_MODEL;
        return 0;
    }
    uint32_t value = opml_load_be32(r->data + r->position);
    r->position += 4;
    return value;
}

const float *read_floats(struct reader *r, uint32_t count) {
    if (r->error) return NULL;
    if (count > MAX_ELEMENTS) {
        r->error = EXIT_MODEL_TOO_LARGE;
        return NULL;
    }
    uint32_t bytes = count * 4u;
    if (r->length - r->position < bytes) {
        r->error = EXIT_TRUNCATED_MODEL;
        return NULL;
    }
    const float *values = (const float *)(r->data + r->position);
    r->position += bytes;
    return values;
}

uint32_t shape_elements(const struct shape *s) {
    uint64_t count = 1;
    for (uint32_t i = 0; i < s->rank; i++) {
        count *= s->dims[i];
        if (count > MAX_ELEMENTS) return 0;
    }
    return (uint32_t)count;
}
