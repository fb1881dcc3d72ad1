/* The OPLM model file: header, config, directory; every check of opml/models/llm/format.py's
 * parse_model, so a file either parses in both or fails in both. */
#include "llm.h"

static float float_from_bits(uint32_t bits) {
    union {
        uint32_t u;
        float f;
    } v = {bits};
    return v.f;
}

uint32_t llm_row_bytes(uint32_t type, uint32_t cols) {
    switch (type) {
    case LLM_F32: return 4u * cols;
    case LLM_F16: return 2u * cols;
    case LLM_Q4_1: return cols / LLM_BLOCK_WEIGHTS * LLM_Q4_1_BLOCK_BYTES;
    case LLM_Q8_0: return cols / LLM_BLOCK_WEIGHTS * LLM_Q8_0_BLOCK_BYTES;
    default: return 0;
    }
}

static int valid_config(const struct llm_config *c) {
    if (c->layers < 1 || c->layers > LLM_MAX_LAYERS) return 0;
    if (c->width < 1 || c->width > LLM_MAX_WIDTH || c->width % LLM_BLOCK_WEIGHTS) return 0;
    if (c->ffn < 1 || c->ffn > LLM_MAX_WIDTH || c->ffn % LLM_BLOCK_WEIGHTS) return 0;
    if (c->head_dim < 2 || c->head_dim > LLM_MAX_HEAD_DIM || c->head_dim % 2) return 0;
    if (c->heads < 1 || c->heads > c->width || c->heads * c->head_dim != c->width) return 0;
    if (c->kv_heads < 1 || c->heads % c->kv_heads) return 0;
    if (c->vocab < 1 || c->vocab > LLM_MAX_VOCAB) return 0;
    if (c->positions < 1 || c->positions > LLM_MAX_POSITIONS) return 0;
    if (c->bos >= c->vocab || c->eos >= c->vocab) return 0;
    float eps = c->rms_epsilon;
    if (eps != eps || !(eps >= 0.0f) || eps > 3.4028234663852886e38f) return 0; /* finite, >= 0 */
    return 1;
}

/* (rows, cols) of the tensor at directory index i. */
static void expected_shape(const struct llm_config *c, uint32_t i, uint32_t *rows, uint32_t *cols) {
    uint32_t q_rows = c->heads * c->head_dim, kv_rows = c->kv_heads * c->head_dim;
    uint32_t role = i < LLM_GLOBAL_TENSORS ? 0 : (i - LLM_GLOBAL_TENSORS) % LLM_LAYER_TENSORS;
    if (i == LLM_TOKEN_EMBD || i == LLM_OUTPUT) *rows = c->vocab, *cols = c->width;
    else if (i == LLM_ROPE) *rows = c->positions, *cols = c->head_dim;
    else if (i == LLM_OUTPUT_NORM) *rows = 1, *cols = c->width;
    else switch (role) {
        case LLM_ATTN_NORM:
        case LLM_FFN_NORM: *rows = 1, *cols = c->width; break;
        case LLM_ATTN_Q: *rows = q_rows, *cols = c->width; break;
        case LLM_ATTN_K:
        case LLM_ATTN_V: *rows = kv_rows, *cols = c->width; break;
        case LLM_ATTN_OUTPUT: *rows = c->width, *cols = q_rows; break;
        case LLM_FFN_GATE:
        case LLM_FFN_UP: *rows = c->ffn, *cols = c->width; break;
        default: *rows = c->width, *cols = c->ffn; break; /* ffn_down */
        }
}

/* Norms and the RoPE table are F32. */
static int must_be_f32(uint32_t i) {
    if (i == LLM_OUTPUT_NORM || i == LLM_ROPE) return 1;
    if (i < LLM_GLOBAL_TENSORS) return 0;
    uint32_t role = (i - LLM_GLOBAL_TENSORS) % LLM_LAYER_TENSORS;
    return role == LLM_ATTN_NORM || role == LLM_FFN_NORM;
}

int llm_parse_model(const uint8_t *data, uint32_t length, struct llm_model *model) {
    struct reader r = {data, length, 0, 0};
    uint32_t magic = read_u32(&r), version = read_u32(&r);
    if (r.error) return r.error;
    if (magic != LLM_MAGIC) return EXIT_BAD_MAGIC;
    if (version != LLM_VERSION) return EXIT_BAD_VERSION;
    uint32_t words[LLM_CONFIG_WORDS];
    for (uint32_t i = 0; i < LLM_CONFIG_WORDS; i++) words[i] = read_u32(&r);
    if (r.error) return r.error;
    struct llm_config *c = &model->config;
    c->layers = words[0], c->width = words[1], c->ffn = words[2], c->heads = words[3];
    c->kv_heads = words[4], c->head_dim = words[5], c->vocab = words[6], c->positions = words[7];
    c->rope_base = float_from_bits(words[8]), c->rms_epsilon = float_from_bits(words[9]);
    c->bos = words[10], c->eos = words[11];
    if (!valid_config(c)) return EXIT_BAD_SHAPE;
    uint32_t count = read_u32(&r);
    if (r.error) return r.error;
    if (count != LLM_GLOBAL_TENSORS + LLM_LAYER_TENSORS * c->layers) return EXIT_BAD_SHAPE;
    model->tensor_count = count;
    uint32_t end = r.position + count * LLM_ENTRY_WORDS * 4u; /* data starts after the directory */
    uint32_t embedding[LLM_ENTRY_WORDS];
    for (uint32_t i = 0; i < count; i++) {
        uint32_t entry[LLM_ENTRY_WORDS];
        for (uint32_t k = 0; k < LLM_ENTRY_WORDS; k++) entry[k] = read_u32(&r);
        if (r.error) return r.error;
        uint32_t type = entry[0], rows = entry[1], cols = entry[2], offset = entry[3], bytes = entry[4];
        uint32_t want_rows, want_cols;
        expected_shape(c, i, &want_rows, &want_cols);
        if (type != LLM_F32 && type != LLM_F16 && type != LLM_Q4_1 && type != LLM_Q8_0) return EXIT_BAD_SHAPE;
        if (rows != want_rows || cols != want_cols) return EXIT_BAD_SHAPE;
        if (must_be_f32(i) && type != LLM_F32) return EXIT_BAD_SHAPE;
        if ((type == LLM_Q4_1 || type == LLM_Q8_0) && cols % LLM_BLOCK_WEIGHTS) return EXIT_BAD_SHAPE;
        if ((uint64_t)rows * llm_row_bytes(type, cols) != bytes) return EXIT_BAD_SHAPE;
        if (i == LLM_TOKEN_EMBD) memcpy(embedding, entry, sizeof entry);
        int tied = i == LLM_OUTPUT && memcmp(entry, embedding, sizeof entry) == 0;
        if (!tied) {
            if (offset % LLM_DATA_ALIGNMENT || offset < end) return EXIT_BAD_SHAPE;
            if (offset > length || bytes > length - offset) return EXIT_TRUNCATED_MODEL;
            end = offset + bytes;
        }
        struct llm_tensor *t = &model->tensors[i];
        t->type = type, t->rows = rows, t->cols = cols, t->data = data + offset;
    }
    return end == length ? EXIT_OK : EXIT_TRAILING_BYTES;
}
