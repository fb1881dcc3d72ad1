/* The LLM node program of the two-phase game: node i of a greedy generation's graph (llm_graph.h), on the
 * OPLM model in the model region, computed from its operands and written as a value to the output region
 * (docs/llm-graph.md; opml/models/llm/graph.py's node_program makes the same checks natively).
 *
 * Memory at the start (docs/two-phase.md, "The link"):
 *   0x10000000             the request's input: u32 length, then M, P and the P prompt ids
 *   0x30000000             node header: u32 length, then big-endian u32s i, n, k, slots[k]
 *   0x40000000             the OPLM model file: u32 length, then the bytes
 *   0x80000000 + j * 2^28  operand j (j < k): u32 length, then the value in slot slots[j]
 * The heap starts at 0xC0000000.
 *
 * Checks, in this order: the model parses (10-16, as llm_model.c), the input is a generation the model can
 * run (34), n is this graph's node count (30), i < n (31), k and the slots are node i's operands (32),
 * each operand is the value its slot holds, of its shape (33); then node i's value, canonical, goes to the
 * output region and the program exits 0. Node i's op, tensors and params come from the graph (the model
 * and i), never from the header or the operands. */
#include "llm_graph.h"

#define HEADER_FIXED_WORDS 3u /* i, n, k before the slots */
#define FLOAT_EXPONENT_BITS 0x7f800000u
#define FLOAT_FRACTION_BITS 0x007fffffu
#define MATRIX_RANK 2u
#define TOKENS_RANK 1u

static struct llm_model model;

void fail_message(const char *message) {
    opml_puts(2, "llm graph node: ");
    opml_puts(2, message);
    opml_puts(2, "\n");
}

static int fail(int code) {
    static const char *const messages[] = {
        [EXIT_BAD_MAGIC] = "not an OPLM model file",
        [EXIT_BAD_VERSION] = "unsupported OPLM version",
        [EXIT_TRUNCATED_MODEL] = "model file is truncated",
        [EXIT_BAD_SHAPE] = "the model's shapes do not fit",
        [EXIT_MODEL_TOO_LARGE] = "a value is larger than a region",
        [EXIT_TRAILING_BYTES] = "model file has bytes after its end",
        [EXIT_OUT_OF_MEMORY] = "out of memory",
        [EXIT_WRONG_NODE_COUNT] = "the header's node count is not this generation's",
        [EXIT_BAD_NODE_INDEX] = "the header's node index is past the last node",
        [EXIT_WRONG_OPERANDS] = "the header's operand slots are not the node's",
        [EXIT_BAD_OPERAND] = "an operand is not the value its slot holds",
        [EXIT_BAD_GENERATION] = "the input is not a generation this model can run",
    };
    fail_message(messages[code] ? messages[code] : "error");
    opml_set_output_length(0);
    return code;
}

/* --- the request's input ------------------------------------------------------------------------------ */

struct generation {
    const uint8_t *input;
    uint32_t input_length;
    const uint32_t *prompt; /* P ids, big-endian words as the VM loads them */
    struct llm_graph graph;
};

/* M, P and the ids: exactly 8 + 4P bytes, every id in the vocabulary, and a graph the model can run. */
static int read_generation(const uint8_t *input, uint32_t length, struct generation *r) {
    if (length < LLM_GRAPH_INPUT_WORDS * 4u) return EXIT_BAD_GENERATION;
    uint32_t max_new_tokens = opml_load_be32(input), prompt_length = opml_load_be32(input + 4);
    uint32_t id_bytes = length - LLM_GRAPH_INPUT_WORDS * 4u;
    if (id_bytes % 4u || id_bytes / 4u != prompt_length) return EXIT_BAD_GENERATION;
    r->input = input, r->input_length = length;
    r->prompt = (const uint32_t *)(input + LLM_GRAPH_INPUT_WORDS * 4u);
    for (uint32_t k = 0; k < prompt_length; k++)
        if (r->prompt[k] >= model.config.vocab) return EXIT_BAD_GENERATION;
    if (!llm_graph_layout(&model.config, prompt_length, max_new_tokens, &r->graph)) return EXIT_BAD_GENERATION;
    return EXIT_OK;
}

/* --- the header -------------------------------------------------------------------------------------- */

static const uint8_t *region_bytes(uint32_t address, uint32_t *length) {
    *length = opml_load_be32((const void *)address);
    return (const uint8_t *)(address + 4u);
}

/* The header against the graph: its node count, its node index, then its operand slots (node i's). */
static int check_header(const struct llm_graph *g, struct llm_graph_node *node) {
    uint32_t length;
    const uint8_t *header = region_bytes(OPML_NODE_HEADER_ADDR, &length);
    if (length < HEADER_FIXED_WORDS * 4u) return EXIT_WRONG_NODE_COUNT; /* it names no node count */
    uint32_t i = opml_load_be32(header), n = opml_load_be32(header + 4), k = opml_load_be32(header + 8);
    if (n != g->node_count) return EXIT_WRONG_NODE_COUNT;
    if (i >= n) return EXIT_BAD_NODE_INDEX;
    llm_graph_node(g, i, node);
    if (k != node->operand_count || length != (HEADER_FIXED_WORDS + k) * 4u) return EXIT_WRONG_OPERANDS;
    for (uint32_t j = 0; j < k; j++)
        if (opml_load_be32(header + 4u * (HEADER_FIXED_WORDS + j)) != node->operands[j]) return EXIT_WRONG_OPERANDS;
    return EXIT_OK;
}

/* --- operands ---------------------------------------------------------------------------------------- */

/* An operand as the node reads it: the finished step's value, float32 [rows, cols], or the tokens so far. */
struct operand {
    uint32_t finished;
    uint32_t rows, cols;
    const float *floats;
    uint32_t token_count;
    const uint32_t *tokens;
};

static int is_canonical(uint32_t bits) {
    if (bits == NEGATIVE_ZERO_BITS) return 0;
    if ((bits & FLOAT_EXPONENT_BITS) == FLOAT_EXPONENT_BITS && (bits & FLOAT_FRACTION_BITS))
        return bits == CANONICAL_NAN_BITS;
    return 1;
}

/* The bytes of slot `slot` (>= 1) as the value of the shape its node makes: float32 [rows, cols] with every
 * element canonical; the tokens so far, int32 [count] with 1 <= count <= max and ids in the vocabulary; or,
 * from a step s >= 1, the finished step's value float32 [0]. */
static int read_value(const struct llm_graph *g, uint32_t slot, const uint8_t *bytes, uint32_t length,
                      struct operand *v) {
    struct llm_value_shape shape;
    llm_graph_value_shape(g, slot, &shape);
    if (length < VALUE_HEADER_BYTES + 4u) return EXIT_BAD_OPERAND;
    uint32_t kind = opml_load_be32(bytes), rank = opml_load_be32(bytes + 4), first = opml_load_be32(bytes + 8);
    v->finished = 0;
    if (kind == VALUE_KIND_F32 && rank == 1 && first == 0 && length == VALUE_HEADER_BYTES + 4u) {
        if (!shape.may_be_finished) return EXIT_BAD_OPERAND;
        v->finished = 1;
        return EXIT_OK;
    }
    if (shape.tokens) {
        if (kind != VALUE_KIND_I32 || rank != TOKENS_RANK || first < 1 || first > shape.max_tokens) return EXIT_BAD_OPERAND;
        if (length != VALUE_HEADER_BYTES + 4u + 4u * first) return EXIT_BAD_OPERAND;
        v->token_count = first;
        v->tokens = (const uint32_t *)(bytes + VALUE_HEADER_BYTES + 4u);
        for (uint32_t k = 0; k < first; k++)
            if (v->tokens[k] >= model.config.vocab) return EXIT_BAD_OPERAND;
        return EXIT_OK;
    }
    if (kind != VALUE_KIND_F32 || rank != MATRIX_RANK || length < VALUE_HEADER_BYTES + 8u) return EXIT_BAD_OPERAND;
    uint32_t rows = first, cols = opml_load_be32(bytes + 12);
    if (rows != shape.rows || cols != shape.cols) return EXIT_BAD_OPERAND;
    if ((uint64_t)length != VALUE_HEADER_BYTES + 8u + 4ull * rows * cols) return EXIT_BAD_OPERAND;
    const uint32_t *words = (const uint32_t *)(bytes + VALUE_HEADER_BYTES + 8u);
    for (uint32_t k = 0; k < rows * cols; k++)
        if (!is_canonical(words[k])) return EXIT_BAD_OPERAND;
    v->rows = rows, v->cols = cols, v->floats = (const float *)words;
    return EXIT_OK;
}

/* Node i's operands from their regions. Slot 0 must be the request's input itself (the link proves its
 * root at slot 0, the input region's root). */
static int read_operands(const struct generation *r, const struct llm_graph_node *node, struct operand *in) {
    for (uint32_t j = 0; j < node->operand_count; j++) {
        uint32_t slot = node->operands[j], length;
        const uint8_t *bytes = region_bytes(OPML_OPERANDS_ADDR + j * OPML_REGION_BYTES, &length);
        if (length > OPML_MAX_REGION_DATA_BYTES) return EXIT_BAD_OPERAND;
        if (slot == 0) {
            if (length != r->input_length || memcmp(bytes, r->input, length) != 0) return EXIT_BAD_OPERAND;
            in[j].finished = 0;
            continue;
        }
        int error = read_value(&r->graph, slot, bytes, length, &in[j]);
        if (error) return error;
    }
    return EXIT_OK;
}

/* --- the node's value -------------------------------------------------------------------------------- */

/* The output region's value header for float32 [rows, cols]; its elements' place, or NULL (*error 14) when
 * the value is larger than a region holds. */
static float *output_floats(uint32_t rows, uint32_t cols, int *error) {
    uint64_t bytes = VALUE_HEADER_BYTES + 8u + 4ull * rows * cols;
    if (bytes > OPML_MAX_REGION_DATA_BYTES) {
        *error = EXIT_MODEL_TOO_LARGE;
        return NULL;
    }
    uint8_t *out = opml_output_buffer();
    opml_store_be32(out, VALUE_KIND_F32);
    opml_store_be32(out + 4, MATRIX_RANK);
    opml_store_be32(out + 8, rows);
    opml_store_be32(out + 12, cols);
    opml_set_output_length((uint32_t)bytes);
    *error = EXIT_OK;
    return (float *)(out + VALUE_HEADER_BYTES + 8u);
}

/* The finished step's value: float32 [0]. */
static int write_finished(void) {
    uint8_t *out = opml_output_buffer();
    opml_store_be32(out, VALUE_KIND_F32);
    opml_store_be32(out + 4, 1);
    opml_store_be32(out + 8, 0);
    opml_set_output_length(VALUE_HEADER_BYTES + 4u);
    return EXIT_OK;
}

/* The tokens so far: `count` ids of `before`, then `next` unless it is NO_TOKEN. */
#define NO_TOKEN 0xffffffffu
static int write_tokens(const uint32_t *before, uint32_t count, uint32_t next) {
    uint32_t total = count + (next != NO_TOKEN);
    uint8_t *out = opml_output_buffer();
    opml_store_be32(out, VALUE_KIND_I32);
    opml_store_be32(out + 4, TOKENS_RANK);
    opml_store_be32(out + 8, total);
    uint32_t *ids = (uint32_t *)(out + VALUE_HEADER_BYTES + 4u);
    for (uint32_t k = 0; k < count; k++) ids[k] = before[k];
    if (next != NO_TOKEN) ids[count] = next;
    opml_set_output_length(VALUE_HEADER_BYTES + 4u + 4u * total);
    return EXIT_OK;
}

static void copy_floats(float *to, const float *from, uint32_t count) {
    const uint32_t *source = (const uint32_t *)from; /* word by word: a quarter of memcpy's steps */
    uint32_t *target = (uint32_t *)to;
    for (uint32_t k = 0; k < count; k++) target[k] = source[k];
}

static const struct llm_tensor *layer_tensor(uint32_t layer, uint32_t role) {
    return &model.tensors[LLM_GLOBAL_TENSORS + LLM_LAYER_TENSORS * layer + role];
}

/* The weight matrix of a layer's product node. */
static const struct llm_tensor *matrix_of(const struct llm_graph_node *node) {
    switch (node->role) {
    case ROLE_Q: return layer_tensor(node->layer, LLM_ATTN_Q);
    case ROLE_K: return layer_tensor(node->layer, LLM_ATTN_K);
    case ROLE_V: return layer_tensor(node->layer, LLM_ATTN_V);
    case ROLE_O: return layer_tensor(node->layer, LLM_ATTN_OUTPUT);
    case ROLE_GATE: return layer_tensor(node->layer, LLM_FFN_GATE);
    case ROLE_UP: return layer_tensor(node->layer, LLM_FFN_UP);
    default: return layer_tensor(node->layer, LLM_FFN_DOWN);
    }
}

/* out = x @ rows first..stop - 1 of w (each weight row dequantized once into a heap buffer). */
static int matmul(const struct operand *x, const struct llm_tensor *w, uint32_t first, uint32_t stop, float *out) {
    float *row_buffer = opml_alloc((size_t)w->cols * 4u);
    if (!row_buffer) return EXIT_OUT_OF_MEMORY;
    llm_matmul(x->floats, x->rows, w, first, stop - first, row_buffer, out);
    return EXIT_OK;
}

static int rms_norm(const float *x, uint32_t rows, const struct llm_tensor *norm, float *out) {
    llm_rms_norm(x, rows, model.config.width, (const float *)norm->data, model.config.rms_epsilon, out);
    return EXIT_OK;
}

/* The step's embedding: step 0 the prompt's rows, step s >= 1 the last token so far (the finished value
 * when it is the end of the sequence). */
static int embed(const struct generation *r, const struct llm_graph_node *node, const struct operand *in) {
    const uint32_t *ids = r->prompt;
    uint32_t count = r->graph.prompt_length;
    if (node->step > 0) {
        ids = &in[0].tokens[in[0].token_count - 1u], count = 1;
        if (*ids == model.config.eos) return write_finished();
    }
    int error;
    float *out = output_floats(count, model.config.width, &error);
    if (!error) llm_embed(&model.tensors[LLM_TOKEN_EMBD], (const int32_t *)ids, count, out);
    return error;
}

/* The tokens so far: the previous step's, then the logits' argmax (none when the step is finished). */
static int argmax(const struct llm_graph_node *node, const struct operand *in) {
    const uint32_t *before = node->step > 0 ? in[1].tokens : NULL;
    uint32_t count = node->step > 0 ? in[1].token_count : 0;
    uint32_t next = in[0].finished ? NO_TOKEN : llm_argmax(in[0].floats, in[0].cols);
    return write_tokens(before, count, next);
}

/* A cache: the previous step's rows (none at step 0), then the step's. */
static int append_rows(const struct llm_graph_node *node, const struct operand *in, uint32_t rows, uint32_t cols) {
    int error;
    float *out = output_floats(rows, cols, &error);
    if (error) return error;
    const struct operand *before = node->step > 0 ? &in[0] : NULL, *added = &in[node->step > 0 ? 1 : 0];
    uint32_t before_count = before ? before->rows * before->cols : 0;
    if (before) copy_floats(out, before->floats, before_count);
    copy_floats(out + before_count, added->floats, added->rows * added->cols);
    return EXIT_OK;
}

/* Chunk c of the logits: chunk c - 1's logits, then rows first..stop - 1 of the LM head. */
static int head(const struct llm_graph *g, const struct llm_graph_node *node, const struct operand *in) {
    uint32_t first, stop;
    llm_graph_head_rows(g, node->chunk, &first, &stop);
    int error;
    float *out = output_floats(1, stop, &error);
    if (error) return error;
    if (node->chunk > 0) copy_floats(out, in[1].floats, first);
    return matmul(&in[0], &model.tensors[LLM_OUTPUT], first, stop, out + first);
}

/* Node i's value from its operands, which read_operands checked to be its slots' values. */
static int compute(const struct generation *r, const struct llm_graph_node *node, const struct operand *in) {
    const struct llm_graph *g = &r->graph;
    const struct llm_config *c = &model.config;
    if (node->role == ROLE_EMBED) return embed(r, node, in);
    if (node->role == ROLE_ARGMAX) return argmax(node, in);
    for (uint32_t j = 0; j < node->operand_count; j++)
        if (in[j].finished) return write_finished(); /* a finished step's node: nothing to compute */
    struct llm_value_shape shape;
    llm_graph_value_shape(g, node->index + 1u, &shape);
    if (node->role == ROLE_HEAD) return head(g, node, in);
    if (node->role == ROLE_K_CACHE || node->role == ROLE_V_CACHE) return append_rows(node, in, shape.rows, shape.cols);
    int error;
    float *out = output_floats(shape.rows, shape.cols, &error);
    if (error) return error;
    uint32_t rows = shape.rows, first_position = llm_graph_first_position(g, node->step);
    switch (node->role) {
    case ROLE_ATTN_NORM: return rms_norm(in[0].floats, rows, layer_tensor(node->layer, LLM_ATTN_NORM), out);
    case ROLE_FFN_NORM: return rms_norm(in[0].floats, rows, layer_tensor(node->layer, LLM_FFN_NORM), out);
    case ROLE_FINAL_NORM: /* the last row only: its logits choose the next token */
        return rms_norm(in[0].floats + (in[0].rows - 1u) * c->width, 1, &model.tensors[LLM_OUTPUT_NORM], out);
    case ROLE_Q_ROPE:
    case ROLE_K_ROPE: {
        uint32_t heads = node->role == ROLE_Q_ROPE ? c->heads : c->kv_heads;
        llm_rope(in[0].floats, rows, heads, c->head_dim, (const float *)model.tensors[LLM_ROPE].data, first_position,
                 out);
        return EXIT_OK;
    }
    case ROLE_ATTENTION: {
        float *scores = opml_alloc((size_t)in[1].rows * 4u);
        if (!scores) return EXIT_OUT_OF_MEMORY;
        llm_attention(in[0].floats, rows, in[1].floats, in[2].floats, in[1].rows, c->heads, c->kv_heads, c->head_dim,
                      scores, out);
        return EXIT_OK;
    }
    case ROLE_ATTN_RESIDUAL:
    case ROLE_FFN_RESIDUAL: llm_add(in[0].floats, in[1].floats, rows * shape.cols, out); return EXIT_OK;
    case ROLE_SWIGLU: llm_swiglu(in[0].floats, in[1].floats, rows * shape.cols, out); return EXIT_OK;
    default: return matmul(&in[0], matrix_of(node), 0, matrix_of(node)->rows, out); /* Q K V O GATE UP DOWN */
    }
}

int main(void) {
    uint32_t model_length, input_length;
    const uint8_t *data = opml_model(&model_length);
    const uint8_t *input = opml_input(&input_length);
    if (model_length > OPML_MAX_MODEL_BYTES) return fail(EXIT_TRUNCATED_MODEL);
    int error = llm_parse_model(data, model_length, &model);
    if (error) return fail(error);
    static struct generation request;
    if (input_length > OPML_MAX_INPUT_BYTES) return fail(EXIT_BAD_GENERATION);
    error = read_generation(input, input_length, &request);
    if (error) return fail(error);
    struct llm_graph_node node;
    error = check_header(&request.graph, &node);
    if (error) return fail(error);
    struct operand in[LLM_GRAPH_MAX_OPERANDS];
    error = read_operands(&request, &node, in);
    if (error) return fail(error);
    error = compute(&request, &node, in);
    if (error) return fail(error);
    return EXIT_OK;
}
