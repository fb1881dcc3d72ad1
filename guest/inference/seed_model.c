/* The seed's format (OPML by ORA): magic "ggml", then for each of fc1.weight,
 * fc1.bias, fc2.weight, fc2.bias: n_dims, the dims innermost first, float32 values.
 * It becomes the graph  linear -> relu -> linear -> softmax  over raw u8 pixels. */
#include "inference.h"

/* Reads one tensor; its dims are stored innermost first, ours outermost first. */
static int read_seed_tensor(struct reader *r, struct graph *g, uint32_t expected_rank) {
    uint32_t rank = read_u32(r);
    if (r->error) return r->error;
    if (rank != expected_rank) return EXIT_BAD_SHAPE;
    struct tensor *t = &g->tensors[g->tensor_count];
    t->shape.rank = rank;
    for (uint32_t i = 0; i < rank; i++) t->shape.dims[rank - 1 - i] = read_u32(r);
    if (r->error) return r->error;
    for (uint32_t i = 0; i < rank; i++)
        if (t->shape.dims[i] == 0) return EXIT_BAD_SHAPE;
    uint32_t count = shape_elements(&t->shape);
    if (count == 0) return EXIT_MODEL_TOO_LARGE;
    t->data = read_floats(r, count);
    if (r->error) return r->error;
    g->tensor_count++;
    return EXIT_OK;
}

static void add_node(struct graph *g, uint32_t op, uint32_t input, int32_t weight, int32_t bias) {
    struct node *n = &g->nodes[g->node_count++];
    n->op = op;
    n->input_count = 1;
    n->inputs[0] = input;
    n->tensor_count = weight < 0 ? 0 : 2;
    n->tensors[0] = (uint32_t)weight;
    n->tensors[1] = (uint32_t)bias;
    n->param_count = 0;
}

int parse_seed_model(struct reader *r, struct graph *g) {
    static const uint32_t ranks[4] = {2, 1, 2, 1};
    for (int i = 0; i < 4; i++) {
        int error = read_seed_tensor(r, g, ranks[i]);
        if (error) return error;
    }
    const struct shape *w1 = &g->tensors[0].shape, *b1 = &g->tensors[1].shape;
    const struct shape *w2 = &g->tensors[2].shape, *b2 = &g->tensors[3].shape;
    if (b1->dims[0] != w1->dims[0] || w2->dims[1] != w1->dims[0] || b2->dims[0] != w2->dims[0]) return EXIT_BAD_SHAPE;
    g->input_type = INPUT_U8;
    g->input_shape.rank = 1;
    g->input_shape.dims[0] = w1->dims[1];
    add_node(g, OP_LINEAR, 0, 0, 1);
    add_node(g, OP_RELU, 1, -1, -1);
    add_node(g, OP_LINEAR, 2, 2, 3);
    add_node(g, OP_SOFTMAX, 3, -1, -1);
    return EXIT_OK;
}
