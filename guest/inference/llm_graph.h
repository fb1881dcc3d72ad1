/* Greedy generation of an OPLM model as a fixed graph of the linked two-phase game (docs/llm-graph.md;
 * opml/models/llm/graph.py is the Python side, equal to this one).
 *
 * The request's input (value 0), big-endian u32 words: max_new_tokens M, prompt length P, then the P
 * prompt token ids. The graph's nodes are a pure function of the model's config, P and M: M steps of
 * LLM_GRAPH_LAYER_NODES nodes per layer between an embedding and the head, the same nodes for every
 * step (step 0 is the prompt's pass, step s >= 1 feeds the token step s - 1 chose), so
 *
 *     node count = M * (1 + LLM_GRAPH_LAYER_NODES * layers + 1 + head chunks + 1).
 *
 * This file is the enumeration alone: node i's step, layer, role and operand slots, and the shape of
 * each value. */
#ifndef LLM_GRAPH_H
#define LLM_GRAPH_H

#include "llm.h"
#include "node.h"

/* The request's input is not a generation this model can run (docs/llm-graph.md, "The input"). */
#define EXIT_BAD_GENERATION 34

#define LLM_GRAPH_INPUT_WORDS 2u   /* max_new_tokens, prompt length: before the ids */
#define LLM_GRAPH_LAYER_NODES 17u  /* ATTN_NORM .. FFN_RESIDUAL */
#define LLM_GRAPH_MAX_OPERANDS 4u  /* a node run has four operand regions */
/* The LM head is split into chunks of at most this many weights (rows of the tied embedding), so that
 * no node's VM run is long: 2^23 Q8_0 weights take about 1e9 steps, a few seconds. */
#define LLM_GRAPH_HEAD_CHUNK_WEIGHTS (1u << 23)
/* Values 0..n are the slots of the value tree (docs/two-phase.md): n + 1 <= 2^20. */
#define LLM_GRAPH_VALUE_TREE_SLOTS (1u << 20)
/* The output (the generated ids: kind, rank, dim, then M ids) must fit a result's output. */
#define LLM_GRAPH_MAX_NEW_TOKENS ((OPML_MAX_OUTPUT_BYTES - 12u) / 4u)

/* The role of a node within its step. A layer's roles are contiguous, in the order they run. */
enum llm_graph_role {
    ROLE_EMBED = 0, /* the step's token ids -> [rows, width] */
    ROLE_ATTN_NORM, /* rms_norm(x) */
    ROLE_Q,         /* matmul(attn_norm, attn_q) */
    ROLE_K,         /* matmul(attn_norm, attn_k) */
    ROLE_V,         /* matmul(attn_norm, attn_v) */
    ROLE_Q_ROPE,    /* rope(q) */
    ROLE_K_ROPE,    /* rope(k) */
    ROLE_K_CACHE,   /* the previous step's key cache, then k_rope's rows */
    ROLE_V_CACHE,   /* the previous step's value cache, then v's rows */
    ROLE_ATTENTION, /* attention(q_rope, k_cache, v_cache) */
    ROLE_O,         /* matmul(attention, attn_output) */
    ROLE_ATTN_RESIDUAL, /* x + o */
    ROLE_FFN_NORM,  /* rms_norm(attn_residual) */
    ROLE_GATE,      /* matmul(ffn_norm, ffn_gate) */
    ROLE_UP,        /* matmul(ffn_norm, ffn_up) */
    ROLE_SWIGLU,    /* swiglu(gate, up) */
    ROLE_DOWN,      /* matmul(swiglu, ffn_down) */
    ROLE_FFN_RESIDUAL, /* attn_residual + down: the layer's output */
    ROLE_FINAL_NORM,   /* rms_norm of the last layer's last row, output_norm */
    ROLE_HEAD,      /* chunk c of the logits: the previous chunk's logits, then rows of the LM head */
    ROLE_ARGMAX,    /* the tokens so far: the previous step's, then the argmax of the logits */
};

/* The graph of one request: the model's config, P and M. */
struct llm_graph {
    const struct llm_config *config;
    uint32_t prompt_length, max_new_tokens;
    uint32_t head_rows, head_chunks; /* rows of the LM head per chunk, and the chunk count */
    uint32_t step_nodes, node_count;
};

/* Node i of the graph: its place and the value slots it reads, in order. */
struct llm_graph_node {
    uint32_t index, step, role;
    uint32_t layer; /* for a layer's roles */
    uint32_t chunk; /* for ROLE_HEAD */
    uint32_t operand_count, operands[LLM_GRAPH_MAX_OPERANDS];
};

/* What a value slot holds (other than slot 0, the input): float32 [rows, cols], or the tokens so far
 * (int32 [count], 1 <= count <= max_tokens). A value of a step s >= 1 other than the tokens may instead
 * be the finished step's value: float32 [0] (docs/llm-graph.md, "The end of the sequence"). */
struct llm_value_shape {
    uint32_t tokens;                /* 1: the tokens so far */
    uint32_t rows, cols;            /* float32 [rows, cols] */
    uint32_t max_tokens;            /* for the tokens */
    uint32_t may_be_finished;       /* from a step s >= 1 */
};

/* The graph of a request of P prompt tokens and M new ones; 0 if it is not one the model can run (P or M
 * zero, P + M above the context, M above LLM_GRAPH_MAX_NEW_TOKENS, more values than the value tree holds). */
int llm_graph_layout(const struct llm_config *config, uint32_t prompt_length, uint32_t max_new_tokens,
                     struct llm_graph *g);
/* Node `index` (< g->node_count). */
void llm_graph_node(const struct llm_graph *g, uint32_t index, struct llm_graph_node *node);
/* The shape of the value in `slot` (1..node_count). */
void llm_graph_value_shape(const struct llm_graph *g, uint32_t slot, struct llm_value_shape *shape);
/* The step's first position (its rows are at positions first..first + rows - 1) and its rows. */
uint32_t llm_graph_first_position(const struct llm_graph *g, uint32_t step);
uint32_t llm_graph_rows(const struct llm_graph *g, uint32_t step);
/* Rows first..stop - 1 of the LM head are chunk c's. */
void llm_graph_head_rows(const struct llm_graph *g, uint32_t chunk, uint32_t *first, uint32_t *stop);

#endif
