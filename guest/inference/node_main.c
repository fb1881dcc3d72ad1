/* The node program: node i of the graph model in the model region, computed from its operands, its
 * value written to the output region (docs/two-phase.md, "The node program"; opml/graph/native.py
 * makes the same checks and computes the same value natively).
 *
 * Memory at the start (opml/vm/layout.py, the node run's regions):
 *   0x10000000             the request's input (value 0): u32 length, then the bytes
 *   0x30000000             node header: u32 length, then big-endian u32s i, n, k, slots[k]
 *   0x40000000             the model file: u32 length, then the bytes
 *   0x80000000 + j * 2^28  operand j (j < k): u32 length, then the value in slot slots[j]
 * The heap starts at 0xC0000000 (the VM state's heap field says so; opml_alloc asks brk).
 *
 * Checks, in this order: the model parses (the inference program's exit codes), n is the graph's node
 * count (30), i < n (31), k and the slots are exactly node i's inputs (32), each operand is a value
 * node i can take (33); then node i's value, canonical, goes to the output region (u32 length, then
 * the value) and the program exits 0. */
#include "node.h"

#define HEADER_FIXED_WORDS 3u /* i, n, k before the slots */
#define FLOAT_EXPONENT_BITS 0x7f800000u
#define FLOAT_FRACTION_BITS 0x007fffffu

static struct graph model_graph;
/* Values by slot, as ops.c's kernels index them (value 0 is the input, k node k-1's output); only
 * node i's operand slots are ever set. */
static struct value values[MAX_NODES + 1];

void fail_message(const char *message) {
    opml_puts(2, "node: ");
    opml_puts(2, message);
    opml_puts(2, "\n");
}

static int fail(int code) {
    static const char *const messages[] = {
        [EXIT_BAD_MAGIC] = "unknown model format (bad magic)",
        [EXIT_BAD_VERSION] = "unsupported graph format version",
        [EXIT_TRUNCATED_MODEL] = "model file is truncated",
        [EXIT_BAD_SHAPE] = "model shapes do not fit together",
        [EXIT_MODEL_TOO_LARGE] = "a value is too large",
        [EXIT_UNSUPPORTED_OP] = "model uses an unsupported operation",
        [EXIT_TRAILING_BYTES] = "model file has bytes after its end",
        [EXIT_OUT_OF_MEMORY] = "out of memory",
        [EXIT_BAD_INDEX] = "a gather index is not a row of its table",
        [EXIT_WRONG_NODE_COUNT] = "the header's node count is not the model's",
        [EXIT_BAD_NODE_INDEX] = "the header's node index is past the last node",
        [EXIT_WRONG_OPERANDS] = "the header's operand slots are not the node's inputs",
        [EXIT_BAD_OPERAND] = "an operand is not a value the node can take",
    };
    fail_message(messages[code] ? messages[code] : "error");
    return code;
}

/* A region's bytes after its u32 length. */
static const uint8_t *region_bytes(uint32_t address, uint32_t *length) {
    *length = opml_load_be32((const void *)address);
    return (const uint8_t *)(address + 4u);
}

/* The model region as a graph, either format (the inference program's main does the same). */
static int read_model(struct graph *g) {
    uint32_t length;
    const uint8_t *model = opml_model(&length);
    if (length > OPML_MAX_MODEL_BYTES) return EXIT_TRUNCATED_MODEL;
    struct reader r = {model, length, 0, 0};
    uint32_t magic = read_u32(&r);
    int error;
    if (r.error) error = r.error;
    else if (magic == SEED_MAGIC) error = parse_seed_model(&r, g);
    else if (magic == GRAPH_MAGIC) error = parse_graph_model(&r, g);
    else error = EXIT_BAD_MAGIC;
    if (!error && r.position != r.length) error = EXIT_TRAILING_BYTES;
    return error;
}

/* The header against the graph: its node count, its node index (*index), then its operand slots. */
static int check_header(const struct graph *g, uint32_t *index) {
    uint32_t length;
    const uint8_t *header = region_bytes(OPML_NODE_HEADER_ADDR, &length);
    if (length < HEADER_FIXED_WORDS * 4u) return EXIT_WRONG_NODE_COUNT; /* it names no node count */
    uint32_t i = opml_load_be32(header), n = opml_load_be32(header + 4), k = opml_load_be32(header + 8);
    if (n != g->node_count) return EXIT_WRONG_NODE_COUNT;
    if (i >= n) return EXIT_BAD_NODE_INDEX;
    const struct node *node = &g->nodes[i];
    if (k != node->input_count || length != (HEADER_FIXED_WORDS + k) * 4u) return EXIT_WRONG_OPERANDS;
    for (uint32_t j = 0; j < k; j++)
        if (opml_load_be32(header + 4u * (HEADER_FIXED_WORDS + j)) != node->inputs[j]) return EXIT_WRONG_OPERANDS;
    *index = i;
    return EXIT_OK;
}

/* Canonical float32 bits: one NaN, and no negative zero. */
static int is_canonical(uint32_t bits) {
    if (bits == NEGATIVE_ZERO_BITS) return 0;
    if ((bits & FLOAT_EXPONENT_BITS) == FLOAT_EXPONENT_BITS && (bits & FLOAT_FRACTION_BITS))
        return bits == CANONICAL_NAN_BITS;
    return 1;
}

static uint32_t canonical(uint32_t bits) {
    if (bits == NEGATIVE_ZERO_BITS) return 0;
    if ((bits & FLOAT_EXPONENT_BITS) == FLOAT_EXPONENT_BITS && (bits & FLOAT_FRACTION_BITS))
        return CANONICAL_NAN_BITS;
    return bits;
}

/* A value's bytes as an operand: float32, rank 1 to 4 without a zero dimension (every value of a graph
 * has such a shape), at most MAX_ELEMENTS elements, exactly as long as its shape says, canonical. */
static int decode_value(const uint8_t *bytes, uint32_t length, struct value *v) {
    if (length < VALUE_HEADER_BYTES) return EXIT_BAD_OPERAND;
    uint32_t kind = opml_load_be32(bytes), rank = opml_load_be32(bytes + 4);
    if (kind != VALUE_KIND_F32 || rank == 0 || rank > MAX_RANK) return EXIT_BAD_OPERAND;
    uint32_t data_offset = VALUE_HEADER_BYTES + 4u * rank;
    if (length < data_offset) return EXIT_BAD_OPERAND;
    v->shape.rank = rank;
    for (uint32_t i = 0; i < rank; i++) {
        v->shape.dims[i] = opml_load_be32(bytes + VALUE_HEADER_BYTES + 4u * i);
        if (v->shape.dims[i] == 0) return EXIT_BAD_OPERAND;
    }
    uint32_t count = shape_elements(&v->shape);
    if (count == 0 || length - data_offset != 4u * count) return EXIT_BAD_OPERAND; /* too many, or a wrong length */
    const uint32_t *words = (const uint32_t *)(bytes + data_offset);                /* big-endian, as MIPS reads */
    for (uint32_t i = 0; i < count; i++)
        if (!is_canonical(words[i])) return EXIT_BAD_OPERAND;
    v->data = (const float *)words;
    return EXIT_OK;
}

/* Node `index`'s operands from their regions into values[]: value 0 decoded as the model's input (as the
 * inference program decodes its input region), any other as a value. */
static int read_operands(const struct graph *g, uint32_t index) {
    const struct node *node = &g->nodes[index];
    for (uint32_t j = 0; j < node->input_count; j++) {
        uint32_t slot = node->inputs[j], length;
        const uint8_t *bytes = region_bytes(OPML_OPERANDS_ADDR + j * OPML_REGION_BYTES, &length);
        if (length > OPML_MAX_REGION_DATA_BYTES) return EXIT_BAD_OPERAND;
        int error;
        if (slot == 0) {
            error = node_input_value(g, bytes, length, &values[0]);
            if (error == EXIT_BAD_INPUT_LENGTH) error = EXIT_BAD_OPERAND;
        } else {
            error = decode_value(bytes, length, &values[slot]);
        }
        if (error) return error;
    }
    return EXIT_OK;
}

static uint32_t float_bits(float f) {
    union {
        float f;
        uint32_t bits;
    } v = {f};
    return v.bits;
}

/* y as a value in the output region: u32 length, then kind, rank, dims and the canonical elements. */
static int write_value(const struct value *y) {
    uint32_t rank = y->shape.rank, count = shape_elements(&y->shape);
    uint32_t data_offset = VALUE_HEADER_BYTES + 4u * rank;
    if (count > (OPML_MAX_VALUE_BYTES - data_offset) / 4u) return EXIT_MODEL_TOO_LARGE;
    uint8_t *out = opml_output_buffer();
    opml_store_be32(out, VALUE_KIND_F32);
    opml_store_be32(out + 4, rank);
    for (uint32_t i = 0; i < rank; i++) opml_store_be32(out + VALUE_HEADER_BYTES + 4u * i, y->shape.dims[i]);
    uint32_t *words = (uint32_t *)(out + data_offset);
    for (uint32_t i = 0; i < count; i++) words[i] = canonical(float_bits(y->data[i]));
    opml_set_output_length(data_offset + 4u * count);
    return EXIT_OK;
}

int main(void) {
    int error = read_model(&model_graph);
    if (error) return fail(error);
    uint32_t index;
    error = check_header(&model_graph, &index);
    if (error) return fail(error);
    error = read_operands(&model_graph, index);
    if (error) return fail(error);
    struct value y;
    error = node_kernel(&model_graph, index, values, &y);
    if (error == EXIT_BAD_SHAPE) error = EXIT_BAD_OPERAND; /* the model parsed: the operands' shapes do not fit */
    if (error) return fail(error);
    error = write_value(&y);
    if (error) return fail(error);
    return EXIT_OK;
}
