/* The graph's kernels for the node program, exactly the inference program's.
 *
 * ops.c keeps its kernels static, and the whole-run inference program is built from it as it is, so
 * that its ELF (whose memory root P is registered on-chain) does not change because a second program
 * shares the code. This unit compiles ops.c into itself and exports the two entry points the node
 * program needs: one node's kernel, and the decoding of the model's input. */
#include "ops.c"
#include "node.h"

int node_kernel(const struct graph *g, uint32_t index, const struct value *values, struct value *y) {
    return run_node(g, &g->nodes[index], values, y);
}

int node_input_value(const struct graph *g, const uint8_t *input, uint32_t input_length, struct value *x) {
    return input_value(g, input, input_length, x);
}
