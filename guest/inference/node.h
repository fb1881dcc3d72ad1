/* The node program (docs/two-phase.md): one node of a graph model, run alone on operands that the
 * linked two-phase game proved. opml/graph/ is the Python side. */
#ifndef NODE_H
#define NODE_H

#include "inference.h"

/* Exit codes beyond the inference program's (docs/two-phase.md, "The node program"). */
enum {
    EXIT_WRONG_NODE_COUNT = 30, /* the header's node count is not the graph's */
    EXIT_BAD_NODE_INDEX = 31,   /* the header's node index is not below the node count */
    EXIT_WRONG_OPERANDS = 32,   /* the header's operand slots are not exactly the node's inputs */
    EXIT_BAD_OPERAND = 33,      /* an operand is not a value the node can take */
};

/* A value (docs/two-phase.md, "Values"): big-endian u32 kind, u32 rank, u32 dims[rank], then the
 * elements, 4 bytes each, row-major. Every float element is canonical. */
#define VALUE_KIND_F32 0u
#define VALUE_KIND_I32 1u
#define VALUE_HEADER_BYTES 8u /* kind and rank */
#define CANONICAL_NAN_BITS 0x7fc00000u
#define NEGATIVE_ZERO_BITS 0x80000000u

/* The graph's kernels, from ops.c (compiled into node_ops.c). */
/* Computes node `index` of g from values[v] for each of its inputs v: EXIT_OK or ops.c's exit code. */
int node_kernel(const struct graph *g, uint32_t index, const struct value *values, struct value *y);
/* The input bytes as the graph's input value (u8 and i32 elements become floats), as the inference
 * program decodes its input region: EXIT_OK, EXIT_BAD_INPUT_LENGTH or EXIT_OUT_OF_MEMORY. */
int node_input_value(const struct graph *g, const uint8_t *input, uint32_t input_length, struct value *x);

#endif
