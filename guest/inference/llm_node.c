/* The node program: one op of an LLM's forward pass, on the OPLM model in the model region and the
 * values in the input region; its output value in the output region (opml/models/llm/node.py is
 * the Python side and documents the request).
 *
 * Input region (big-endian u32 words):
 *   op, param count, params[], tensor count, tensors[] (directory indices), value count, then per
 *   value: kind (0 float32, 1 int32), rows, cols, rows * cols words.
 * Output region: kind, rows, cols, the words. */
#include "llm.h"

#define MAX_PARAMS 8u
#define MAX_NODE_TENSORS 2u
#define MAX_VALUES 64u
#define KIND_F32 0u
#define KIND_I32 1u

enum {
    NODE_EMBED = 1,
    NODE_RMS_NORM = 2,
    NODE_MATMUL = 3,
    NODE_ROPE = 4,
    NODE_KV_APPEND = 5,
    NODE_ATTENTION = 6,
    NODE_SWIGLU = 7,
    NODE_ADD = 8,
    NODE_LAST_ROW = 9,
    NODE_CONCAT = 10,
    NODE_ARGMAX = 11,
};

struct node_value {
    uint32_t kind, rows, cols;
    const void *data;
};

struct request {
    uint32_t op, param_count, tensor_count, value_count;
    int32_t params[MAX_PARAMS];
    const struct llm_tensor *tensors[MAX_NODE_TENSORS];
    uint32_t tensor_indices[MAX_NODE_TENSORS];
    struct node_value values[MAX_VALUES];
};

static struct llm_model model;
static struct request request;

void fail_message(const char *message) {
    opml_puts(2, "llm node: ");
    opml_puts(2, message);
    opml_puts(2, "\n");
}

static int fail(int code) {
    static const char *const messages[] = {
        [EXIT_BAD_MAGIC] = "not an OPLM model file",
        [EXIT_BAD_VERSION] = "unsupported OPLM version",
        [EXIT_TRUNCATED_MODEL] = "model file is truncated",
        [EXIT_BAD_SHAPE] = "shapes do not fit (model or node)",
        [EXIT_MODEL_TOO_LARGE] = "a value is too large",
        [EXIT_UNSUPPORTED_OP] = "unknown op",
        [EXIT_TRAILING_BYTES] = "model file has bytes after its end",
        [EXIT_BAD_INPUT_LENGTH] = "malformed node request",
        [EXIT_OUT_OF_MEMORY] = "out of memory",
        [EXIT_BAD_INDEX] = "a token id outside the vocabulary",
    };
    fail_message(messages[code] ? messages[code] : "error");
    return code;
}

/* The request's words, bounds-checked: a short request is EXIT_BAD_INPUT_LENGTH. */
static int read_request(const uint8_t *input, uint32_t length, struct request *q) {
    struct reader r = {input, length, 0, 0};
    q->op = read_u32(&r);
    q->param_count = read_u32(&r);
    if (r.error || q->param_count > MAX_PARAMS) return EXIT_BAD_INPUT_LENGTH;
    for (uint32_t i = 0; i < q->param_count; i++) q->params[i] = (int32_t)read_u32(&r);
    q->tensor_count = read_u32(&r);
    if (r.error || q->tensor_count > MAX_NODE_TENSORS) return EXIT_BAD_INPUT_LENGTH;
    for (uint32_t i = 0; i < q->tensor_count; i++) {
        uint32_t index = read_u32(&r);
        if (r.error) return EXIT_BAD_INPUT_LENGTH;
        if (index >= model.tensor_count) return EXIT_BAD_SHAPE;
        q->tensor_indices[i] = index;
        q->tensors[i] = &model.tensors[index];
    }
    q->value_count = read_u32(&r);
    if (r.error || q->value_count > MAX_VALUES) return EXIT_BAD_INPUT_LENGTH;
    for (uint32_t i = 0; i < q->value_count; i++) {
        struct node_value *v = &q->values[i];
        v->kind = read_u32(&r);
        v->rows = read_u32(&r);
        v->cols = read_u32(&r);
        if (r.error || v->kind > KIND_I32) return EXIT_BAD_INPUT_LENGTH;
        if (v->rows == 0 || v->cols == 0) return EXIT_BAD_SHAPE;
        uint64_t count = (uint64_t)v->rows * v->cols;
        if (count > MAX_ELEMENTS) return EXIT_MODEL_TOO_LARGE;
        v->data = read_floats(&r, (uint32_t)count);
        if (r.error) return EXIT_BAD_INPUT_LENGTH;
    }
    return r.position == length ? EXIT_OK : EXIT_BAD_INPUT_LENGTH;
}

/* The output value: its header in the output region, its words after it. */
static uint32_t *output_words(uint32_t kind, uint32_t rows, uint32_t cols, int *error) {
    uint64_t count = (uint64_t)rows * cols;
    if (count > (OPML_MAX_VALUE_BYTES - 12u) / 4u) {
        *error = EXIT_MODEL_TOO_LARGE;
        return NULL;
    }
    uint8_t *out = opml_output_buffer();
    opml_store_be32(out, kind);
    opml_store_be32(out + 4, rows);
    opml_store_be32(out + 8, cols);
    opml_set_output_length(12u + (uint32_t)count * 4u);
    *error = EXIT_OK;
    return (uint32_t *)(out + 12);
}

static float *floats_out(uint32_t rows, uint32_t cols, int *error) {
    return (float *)output_words(KIND_F32, rows, cols, error);
}

/* The request has `values` values, all float32 unless the op says, `tensors` tensors and at most `params` params. */
static int arity(const struct request *q, uint32_t values, uint32_t tensors, uint32_t params) {
    if (q->value_count != values || q->tensor_count != tensors || q->param_count != params) return 0;
    for (uint32_t i = 0; i < values; i++)
        if (q->values[i].kind != KIND_F32) return 0;
    return 1;
}

static int is_matrix_type(uint32_t type) {
    return type == LLM_F32 || type == LLM_F16 || type == LLM_Q4_1 || type == LLM_Q8_0;
}

static int embed(const struct request *q) {
    const struct node_value *ids = &q->values[0];
    if (q->value_count != 1 || q->tensor_count != 1 || q->param_count != 0) return EXIT_BAD_SHAPE;
    if (ids->kind != KIND_I32 || ids->rows != 1) return EXIT_BAD_SHAPE;
    const struct llm_tensor *table = q->tensors[0];
    if (q->tensor_indices[0] != LLM_TOKEN_EMBD) return EXIT_BAD_SHAPE;
    const int32_t *tokens = ids->data;
    for (uint32_t i = 0; i < ids->cols; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= table->rows) return EXIT_BAD_INDEX;
    int error;
    float *out = floats_out(ids->cols, table->cols, &error);
    if (!error) llm_embed(table, tokens, ids->cols, out);
    return error;
}

static int rms_norm(const struct request *q) {
    if (!arity(q, 1, 1, 0)) return EXIT_BAD_SHAPE;
    const struct llm_tensor *w = q->tensors[0];
    const struct node_value *x = &q->values[0];
    if (w->type != LLM_F32 || w->rows != 1 || x->cols != w->cols) return EXIT_BAD_SHAPE;
    int error;
    float *out = floats_out(x->rows, x->cols, &error);
    if (!error) llm_rms_norm(x->data, x->rows, x->cols, (const float *)w->data, model.config.rms_epsilon, out);
    return error;
}

static int matmul(const struct request *q) {
    if (q->value_count != 1 || q->tensor_count != 1 || (q->param_count != 0 && q->param_count != 2))
        return EXIT_BAD_SHAPE;
    const struct llm_tensor *w = q->tensors[0];
    const struct node_value *x = &q->values[0];
    if (x->kind != KIND_F32 || !is_matrix_type(w->type) || x->cols != w->cols) return EXIT_BAD_SHAPE;
    uint32_t first = 0, stop = w->rows;
    if (q->param_count == 2) first = (uint32_t)q->params[0], stop = (uint32_t)q->params[1];
    if (first >= stop || stop > w->rows) return EXIT_BAD_SHAPE;
    int error;
    float *out = floats_out(x->rows, stop - first, &error);
    if (error) return error;
    float *row_buffer = opml_alloc((size_t)w->cols * 4u);
    if (!row_buffer) return EXIT_OUT_OF_MEMORY;
    llm_matmul(x->data, x->rows, w, first, stop - first, row_buffer, out);
    return EXIT_OK;
}

static int rope(const struct request *q) {
    if (!arity(q, 1, 1, 2) || q->tensor_indices[0] != LLM_ROPE) return EXIT_BAD_SHAPE;
    const struct node_value *x = &q->values[0];
    const struct llm_tensor *table = q->tensors[0];
    uint32_t first = (uint32_t)q->params[0], heads = (uint32_t)q->params[1], head_dim = table->cols;
    if (heads == 0 || heads > x->cols || (uint64_t)heads * head_dim != x->cols) return EXIT_BAD_SHAPE;
    if (first >= table->rows || x->rows > table->rows - first) return EXIT_BAD_SHAPE;
    int error;
    float *out = floats_out(x->rows, x->cols, &error);
    if (!error) llm_rope(x->data, x->rows, heads, head_dim, (const float *)table->data, first, out);
    return error;
}

static int kv_append(const struct request *q) {
    if (!arity(q, 2, 0, 0)) return EXIT_BAD_SHAPE;
    const struct node_value *cache = &q->values[0], *rows = &q->values[1];
    if (cache->cols != rows->cols || cache->rows > MAX_ELEMENTS - rows->rows) return EXIT_BAD_SHAPE;
    int error;
    float *out = floats_out(cache->rows + rows->rows, cache->cols, &error);
    if (error) return error;
    memcpy(out, cache->data, cache->rows * cache->cols * 4u);
    memcpy(out + cache->rows * cache->cols, rows->data, rows->rows * rows->cols * 4u);
    return EXIT_OK;
}

static int attention(const struct request *q) {
    if (!arity(q, 3, 0, 2)) return EXIT_BAD_SHAPE;
    const struct node_value *x = &q->values[0], *keys = &q->values[1], *values = &q->values[2];
    uint32_t heads = (uint32_t)q->params[0], kv_heads = (uint32_t)q->params[1];
    if (heads == 0 || kv_heads == 0 || heads > x->cols || heads % kv_heads || x->cols % heads) return EXIT_BAD_SHAPE;
    uint32_t head_dim = x->cols / heads;
    if (keys->rows != values->rows || keys->cols != values->cols || keys->cols != kv_heads * head_dim)
        return EXIT_BAD_SHAPE;
    if (keys->rows < x->rows) return EXIT_BAD_SHAPE;
    int error;
    float *out = floats_out(x->rows, x->cols, &error);
    if (error) return error;
    float *scores = opml_alloc((size_t)keys->rows * 4u);
    if (!scores) return EXIT_OUT_OF_MEMORY;
    llm_attention(x->data, x->rows, keys->data, values->data, keys->rows, heads, kv_heads, head_dim, scores, out);
    return EXIT_OK;
}

static int elementwise(const struct request *q) {
    if (!arity(q, 2, 0, 0)) return EXIT_BAD_SHAPE;
    const struct node_value *a = &q->values[0], *b = &q->values[1];
    if (a->rows != b->rows || a->cols != b->cols) return EXIT_BAD_SHAPE;
    int error;
    float *out = floats_out(a->rows, a->cols, &error);
    if (error) return error;
    if (q->op == NODE_SWIGLU) llm_swiglu(a->data, b->data, a->rows * a->cols, out);
    else llm_add(a->data, b->data, a->rows * a->cols, out);
    return EXIT_OK;
}

static int last_row(const struct request *q) {
    if (!arity(q, 1, 0, 0)) return EXIT_BAD_SHAPE;
    const struct node_value *x = &q->values[0];
    int error;
    float *out = floats_out(1, x->cols, &error);
    if (!error) memcpy(out, (const float *)x->data + (x->rows - 1) * x->cols, x->cols * 4u);
    return error;
}

static int concat(const struct request *q) {
    if (q->value_count < 1 || !arity(q, q->value_count, 0, 0)) return EXIT_BAD_SHAPE;
    uint32_t rows = q->values[0].rows, cols = 0;
    for (uint32_t i = 0; i < q->value_count; i++) {
        if (q->values[i].rows != rows || q->values[i].cols > MAX_ELEMENTS - cols) return EXIT_BAD_SHAPE;
        cols += q->values[i].cols;
    }
    int error;
    float *out = floats_out(rows, cols, &error);
    if (error) return error;
    for (uint32_t r = 0; r < rows; r++) {
        for (uint32_t i = 0; i < q->value_count; i++) {
            const struct node_value *part = &q->values[i];
            memcpy(out, (const float *)part->data + r * part->cols, part->cols * 4u);
            out += part->cols;
        }
    }
    return EXIT_OK;
}

static int argmax(const struct request *q) {
    if (!arity(q, 1, 0, 0) || q->values[0].rows != 1) return EXIT_BAD_SHAPE;
    int error;
    uint32_t *out = output_words(KIND_I32, 1, 1, &error);
    if (!error) *out = llm_argmax(q->values[0].data, q->values[0].cols);
    return error;
}

static int run_node(const struct request *q) {
    switch (q->op) {
    case NODE_EMBED: return embed(q);
    case NODE_RMS_NORM: return rms_norm(q);
    case NODE_MATMUL: return matmul(q);
    case NODE_ROPE: return rope(q);
    case NODE_KV_APPEND: return kv_append(q);
    case NODE_ATTENTION: return attention(q);
    case NODE_SWIGLU:
    case NODE_ADD: return elementwise(q);
    case NODE_LAST_ROW: return last_row(q);
    case NODE_CONCAT: return concat(q);
    case NODE_ARGMAX: return argmax(q);
    default: return EXIT_UNSUPPORTED_OP;
    }
}

int main(void) {
    uint32_t model_length, input_length;
    const uint8_t *data = opml_model(&model_length);
    const uint8_t *input = opml_input(&input_length);
    if (model_length > OPML_MAX_MODEL_BYTES) return fail(EXIT_TRUNCATED_MODEL);
    if (input_length > OPML_MAX_INPUT_BYTES) return fail(EXIT_BAD_INPUT_LENGTH);
    int error = llm_parse_model(data, model_length, &model);
    if (!error) error = read_request(input, input_length, &request);
    if (!error) error = run_node(&request);
    if (error) {
        opml_set_output_length(0);
        return fail(error);
    }
    return EXIT_OK;
}
