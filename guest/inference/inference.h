/* The inference program: model formats, the graph it runs, exit codes.
 * docs/models.md is the prose version; opml/models/ is the Python side. */
#ifndef INFERENCE_H
#define INFERENCE_H

#include "opml.h"

/* Exit codes (documented in docs/models.md; all below the VM's fault codes). */
enum {
    EXIT_OK = 0,
    EXIT_BAD_MAGIC = 10,
    EXIT_BAD_VERSION = 11,
    EXIT_TRUNCATED_MODEL = 12,
    EXIT_BAD_SHAPE = 13,
    EXIT_MODEL_TOO_LARGE = 14,
    EXIT_UNSUPPORTED_OP = 15,
    EXIT_TRAILING_BYTES = 16,
    EXIT_BAD_INPUT_LENGTH = 20,
    EXIT_OUT_OF_MEMORY = 21,
    EXIT_BAD_INDEX = 22,
};

#define SEED_MAGIC 0x67676d6cu  /* "ggml" */
#define GRAPH_MAGIC 0x4f504d47u /* "OPMG" */
#define GRAPH_VERSION 1u

#define MAX_RANK 4
#define MAX_NODES 256
#define MAX_TENSORS 512
#define MAX_NODE_INPUTS 2
#define MAX_NODE_TENSORS 2
#define MAX_NODE_PARAMS 8
/* Upper bound on the elements of any one tensor or activation (1 GiB of floats). */
#define MAX_ELEMENTS (1u << 28)

enum op {
    OP_LINEAR = 1,
    OP_CONV2D = 2,
    OP_RELU = 3,
    OP_MAXPOOL2D = 4,
    OP_AVGPOOL2D = 5,
    OP_FLATTEN = 6,
    OP_ADD = 7,
    OP_SOFTMAX = 8,
    OP_SIGMOID = 9,
    OP_TANH = 10,
    OP_SUB = 11,
    OP_MUL = 12,
    OP_DIV = 13,
    OP_MATMUL = 14,
    OP_TRANSPOSE = 15,
    OP_RESHAPE = 16,
    OP_SELECT = 17,
    OP_GATHER = 18,
    OP_LAYERNORM = 19,
    OP_REDUCE_SUM = 20,
    OP_REDUCE_L2 = 21,
    OP_CLIP = 22,
    OP_SQRT = 23,
    OP_ERF = 24,
};

/* Rows of a GATHER table: an index is a float, exact up to 2^24. */
#define MAX_GATHER_ROWS (1u << 24)

enum input_type { INPUT_U8 = 0, INPUT_F32 = 1, INPUT_I32 = 2 };

struct shape {
    uint32_t rank;
    uint32_t dims[MAX_RANK];
};

struct tensor {
    struct shape shape;
    const float *data; /* points into the model region */
};

struct node {
    uint32_t op;
    uint32_t input_count, inputs[MAX_NODE_INPUTS]; /* value ids: 0 = graph input, k = node k-1 */
    uint32_t tensor_count, tensors[MAX_NODE_TENSORS];
    uint32_t param_count;
    int32_t params[MAX_NODE_PARAMS];
};

struct graph {
    uint32_t input_type;
    struct shape input_shape;
    uint32_t tensor_count;
    struct tensor tensors[MAX_TENSORS];
    uint32_t node_count;
    struct node nodes[MAX_NODES];
};

/* A value of the graph while it runs: its shape and its elements (float32). */
struct value {
    struct shape shape;
    const float *data;
};

/* Bounds-checked big-endian reader over the model bytes. */
struct reader {
    const uint8_t *data;
    uint32_t length, position;
    int error;
};

uint32_t read_u32(struct reader *r);
const float *read_floats(struct reader *r, uint32_t count);
uint32_t shape_elements(const struct shape *s); /* 0 if over MAX_ELEMENTS */

int parse_seed_model(struct reader *r, struct graph *g);
int parse_graph_model(struct reader *r, struct graph *g);
/* Runs the graph; on success *output points at the last node's values. */
int run_graph(const struct graph *g, const uint8_t *input, uint32_t input_length, const float **output,
              uint32_t *output_count);

float opml_expf(float x);
float opml_sigmoidf(float x);
float opml_tanhf(float x);
float opml_erff(float x);
float opml_sqrtf(float x);

void fail_message(const char *message);

#endif
