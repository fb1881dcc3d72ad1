/* The enumeration of a generation's graph: node i's step, layer, role and operand slots, and each value's
 * shape (llm_graph.h; opml/models/llm/graph.py's GenerationGraph is the same arithmetic). */
#include "llm_graph.h"

/* Offsets of a step's nodes: the embedding, the layers, then the head. */
#define EMBED_OFFSET 0u
#define FIRST_LAYER_OFFSET 1u

static uint32_t final_norm_offset(const struct llm_graph *g) {
    return FIRST_LAYER_OFFSET + LLM_GRAPH_LAYER_NODES * g->config->layers;
}

static uint32_t head_offset(const struct llm_graph *g, uint32_t chunk) { return final_norm_offset(g) + 1u + chunk; }

static uint32_t argmax_offset(const struct llm_graph *g) { return head_offset(g, g->head_chunks); }

/* The value slot of the node at `offset` of `step`: value j + 1 is node j's. */
static uint32_t slot_at(const struct llm_graph *g, uint32_t step, uint32_t offset) {
    return step * g->step_nodes + offset + 1u;
}

static uint32_t layer_slot(const struct llm_graph *g, uint32_t step, uint32_t layer, uint32_t role) {
    return slot_at(g, step, FIRST_LAYER_OFFSET + LLM_GRAPH_LAYER_NODES * layer + (role - ROLE_ATTN_NORM));
}

int llm_graph_layout(const struct llm_config *config, uint32_t prompt_length, uint32_t max_new_tokens,
                     struct llm_graph *g) {
    if (prompt_length == 0 || max_new_tokens == 0 || max_new_tokens > LLM_GRAPH_MAX_NEW_TOKENS) return 0;
    if (prompt_length > config->positions || max_new_tokens > config->positions - prompt_length) return 0;
    g->config = config;
    g->prompt_length = prompt_length;
    g->max_new_tokens = max_new_tokens;
    g->head_rows = LLM_GRAPH_HEAD_CHUNK_WEIGHTS / config->width; /* width <= 2^16: at least 128 rows */
    g->head_chunks = (config->vocab + g->head_rows - 1u) / g->head_rows;
    g->step_nodes = FIRST_LAYER_OFFSET + LLM_GRAPH_LAYER_NODES * config->layers + 1u + g->head_chunks + 1u;
    uint64_t nodes = (uint64_t)max_new_tokens * g->step_nodes;
    if (nodes + 1u > LLM_GRAPH_VALUE_TREE_SLOTS) return 0;
    g->node_count = (uint32_t)nodes;
    return 1;
}

uint32_t llm_graph_rows(const struct llm_graph *g, uint32_t step) { return step == 0 ? g->prompt_length : 1u; }

uint32_t llm_graph_first_position(const struct llm_graph *g, uint32_t step) {
    return step == 0 ? 0u : g->prompt_length + step - 1u;
}

void llm_graph_head_rows(const struct llm_graph *g, uint32_t chunk, uint32_t *first, uint32_t *stop) {
    *first = chunk * g->head_rows;
    *stop = chunk + 1u == g->head_chunks ? g->config->vocab : *first + g->head_rows;
}

static void operands(struct llm_graph_node *node, uint32_t count, uint32_t a, uint32_t b, uint32_t c) {
    node->operand_count = count;
    node->operands[0] = a, node->operands[1] = b, node->operands[2] = c;
}

/* A layer node's operands: x is the layer's input (the embedding, or the previous layer's output). */
static void layer_operands(const struct llm_graph *g, struct llm_graph_node *node) {
    uint32_t s = node->step, l = node->layer;
#define AT(role) layer_slot(g, s, l, role)
    uint32_t x = l == 0 ? slot_at(g, s, EMBED_OFFSET) : layer_slot(g, s, l - 1u, ROLE_FFN_RESIDUAL);
    switch (node->role) {
    case ROLE_ATTN_NORM: operands(node, 1, x, 0, 0); break;
    case ROLE_Q:
    case ROLE_K:
    case ROLE_V: operands(node, 1, AT(ROLE_ATTN_NORM), 0, 0); break;
    case ROLE_Q_ROPE: operands(node, 1, AT(ROLE_Q), 0, 0); break;
    case ROLE_K_ROPE: operands(node, 1, AT(ROLE_K), 0, 0); break;
    case ROLE_K_CACHE: /* step 0's cache is its own rows */
        if (s == 0) operands(node, 1, AT(ROLE_K_ROPE), 0, 0);
        else operands(node, 2, layer_slot(g, s - 1u, l, ROLE_K_CACHE), AT(ROLE_K_ROPE), 0);
        break;
    case ROLE_V_CACHE:
        if (s == 0) operands(node, 1, AT(ROLE_V), 0, 0);
        else operands(node, 2, layer_slot(g, s - 1u, l, ROLE_V_CACHE), AT(ROLE_V), 0);
        break;
    case ROLE_ATTENTION: operands(node, 3, AT(ROLE_Q_ROPE), AT(ROLE_K_CACHE), AT(ROLE_V_CACHE)); break;
    case ROLE_O: operands(node, 1, AT(ROLE_ATTENTION), 0, 0); break;
    case ROLE_ATTN_RESIDUAL: operands(node, 2, x, AT(ROLE_O), 0); break;
    case ROLE_FFN_NORM: operands(node, 1, AT(ROLE_ATTN_RESIDUAL), 0, 0); break;
    case ROLE_GATE:
    case ROLE_UP: operands(node, 1, AT(ROLE_FFN_NORM), 0, 0); break;
    case ROLE_SWIGLU: operands(node, 2, AT(ROLE_GATE), AT(ROLE_UP), 0); break;
    case ROLE_DOWN: operands(node, 1, AT(ROLE_SWIGLU), 0, 0); break;
    default: operands(node, 2, AT(ROLE_ATTN_RESIDUAL), AT(ROLE_DOWN), 0); break; /* ROLE_FFN_RESIDUAL */
    }
#undef AT
}

void llm_graph_node(const struct llm_graph *g, uint32_t index, struct llm_graph_node *node) {
    uint32_t s = index / g->step_nodes, offset = index % g->step_nodes;
    node->index = index, node->step = s, node->layer = 0, node->chunk = 0;
    uint32_t tokens_before = s == 0 ? 0u : slot_at(g, s - 1u, argmax_offset(g)); /* the previous step's tokens */
    if (offset == EMBED_OFFSET) {
        node->role = ROLE_EMBED;
        operands(node, 1, tokens_before, 0, 0); /* step 0: value 0, the input */
    } else if (offset < final_norm_offset(g)) {
        node->layer = (offset - FIRST_LAYER_OFFSET) / LLM_GRAPH_LAYER_NODES;
        node->role = ROLE_ATTN_NORM + (offset - FIRST_LAYER_OFFSET) % LLM_GRAPH_LAYER_NODES;
        layer_operands(g, node);
    } else if (offset == final_norm_offset(g)) {
        node->role = ROLE_FINAL_NORM;
        operands(node, 1, layer_slot(g, s, g->config->layers - 1u, ROLE_FFN_RESIDUAL), 0, 0);
    } else if (offset < argmax_offset(g)) {
        node->role = ROLE_HEAD;
        node->chunk = offset - head_offset(g, 0);
        uint32_t normed = slot_at(g, s, final_norm_offset(g));
        if (node->chunk == 0) operands(node, 1, normed, 0, 0);
        else operands(node, 2, normed, slot_at(g, s, offset - 1u), 0);
    } else {
        node->role = ROLE_ARGMAX;
        uint32_t logits = slot_at(g, s, head_offset(g, g->head_chunks - 1u));
        if (s == 0) operands(node, 1, logits, 0, 0);
        else operands(node, 2, logits, tokens_before, 0);
    }
}

void llm_graph_value_shape(const struct llm_graph *g, uint32_t slot, struct llm_value_shape *shape) {
    struct llm_graph_node node;
    llm_graph_node(g, slot - 1u, &node);
    const struct llm_config *c = g->config;
    uint32_t rows = llm_graph_rows(g, node.step), kv_width = c->kv_heads * c->head_dim;
    shape->tokens = 0, shape->max_tokens = 0;
    shape->may_be_finished = node.step > 0;
    shape->rows = rows, shape->cols = c->width; /* most roles: [rows, width] (heads * head_dim == width) */
    switch (node.role) {
    case ROLE_K:
    case ROLE_V:
    case ROLE_K_ROPE: shape->cols = kv_width; break;
    case ROLE_K_CACHE:
    case ROLE_V_CACHE: shape->rows = g->prompt_length + node.step, shape->cols = kv_width; break;
    case ROLE_GATE:
    case ROLE_UP:
    case ROLE_SWIGLU: shape->cols = c->ffn; break;
    case ROLE_FINAL_NORM: shape->rows = 1; break;
    case ROLE_HEAD: {
        uint32_t first, stop;
        llm_graph_head_rows(g, node.chunk, &first, &stop);
        shape->rows = 1, shape->cols = stop;
        break;
    }
    case ROLE_ARGMAX:
        shape->tokens = 1, shape->max_tokens = node.step + 1u, shape->may_be_finished = 0;
        shape->rows = 0, shape->cols = 0;
        break;
    default: break;
    }
}
