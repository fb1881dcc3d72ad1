/* Our versioned graph format "OPMG" (docs/models.md): input type and shape,
 * tensors (rank, dims outermost first, float32 values), then nodes in
 * topological order. The last node's value is the output. */
#include "inference.h"

static int read_shape(struct reader *r, struct shape *s) {
    s->rank = read_u32(r);
    if (r->error) return r->error;
    if (s->rank == 0 || s->rank > MAX_RANK) return EXIT_BAD_SHAPE;
    for (uint32_t i = 0; i < s->rank; i++) {
        s->dims[i] = read_u32(r);
        if (r->error) return r->error;
        if (s->dims[i] == 0) return EXIT_BAD_SHAPE;
    }
    return shape_elements(s) ? EXIT_OK : EXIT_MODEL_TOO_LARGE;
}

static int read_node(struct reader *r, struct graph *g, uint32_t index) {
    struct node *n = &g->nodes[index];
    n->op = read_u32(r);
    n->input_count = read_u32(r);
    if (r->error) return r->error;
    if (n->input_count == 0 || n->input_count > MAX_NODE_INPUTS) return EXIT_BAD_SHAPE;
    for (uint32_t i = 0; i < n->input_count; i++) {
        n->inputs[i] = read_u32(r);
        if (!r->error && n->inputs[i] > index) return EXIT_BAD_SHAPE; /* only earlier values */
    }
    n->tensor_count = read_u32(r);
    if (r->error) return r->error;
    if (n->tensor_count > MAX_NODE_TENSORS) return EXIT_BAD_SHAPE;
    for (uint32_t i = 0; i < n->tensor_count; i++) {
        n->tensors[i] = read_u32(r);
        if (!r->error && n->tensors[i] >= g->tensor_count) return EXIT_BAD_SHAPE;
    }
    n->param_count = read_u32(r);
    if (r->error) return r->error;
    if (n->param_count > MAX_NODE_PARAMS) return EXIT_BAD_SHAPE;
    for (uint32_t i = 0; i < n->param_count; i++) n->params[i] = (int32_t)read_u32(r);
    return r->error;
}

int parse_graph_model(struct reader *r, struct graph *g) {
    if (read_u32(r) != GRAPH_VERSION) return r->error ? r->error : EXIT_BAD_VERSION;
    g->input_type = read_u32(r);
    if (r->error) return r->error;
    if (g->input_type > INPUT_I32) return EXIT_BAD_SHAPE;
    int error = read_shape(r, &g->input_shape);
    if (error) return error;
    g->tensor_count = read_u32(r);
    if (r->error) return r->error;
    if (g->tensor_count > MAX_TENSORS) return EXIT_MODEL_TOO_LARGE;
    for (uint32_t i = 0; i < g->tensor_count; i++) {
        struct tensor *t = &g->tensors[i];
        error = read_shape(r, &t->shape);
        if (error) return error;
        t->data = read_floats(r, shape_elements(&t->shape));
        if (r->error) return r->error;
    }
    g->node_count = read_u32(r);
    if (r->error) return r->error;
    if (g->node_count == 0) return EXIT_BAD_SHAPE;
    if (g->node_count > MAX_NODES) return EXIT_MODEL_TOO_LARGE;
    for (uint32_t i = 0; i < g->node_count; i++) {
        error = read_node(r, g, i);
        if (error) return error;
    }
    return EXIT_OK;
}
