/* The graph executor: shapes are checked before any kernel runs; kernels do
 * their float32 operations in the order docs/models.md gives, which the numpy
 * reference (opml/models/reference.py) follows exactly. */
#include "inference.h"

#define NEGATIVE_INFINITY_BITS 0xff800000u

struct value {
    struct shape shape;
    const float *data;
};

static uint32_t elements(const struct value *v) { return shape_elements(&v->shape); }

static float *allocate(uint32_t count) { return (float *)opml_alloc((size_t)count * sizeof(float)); }

static int linear(const struct graph *g, const struct node *n, const struct value *x, struct value *y) {
    if (n->tensor_count < 1) return EXIT_BAD_SHAPE;
    const struct tensor *w = &g->tensors[n->tensors[0]];
    uint32_t in = elements(x);
    if (w->shape.rank != 2 || w->shape.dims[1] != in) return EXIT_BAD_SHAPE;
    uint32_t out = w->shape.dims[0];
    const float *bias = NULL;
    if (n->tensor_count == 2) {
        const struct tensor *b = &g->tensors[n->tensors[1]];
        if (b->shape.rank != 1 || b->shape.dims[0] != out) return EXIT_BAD_SHAPE;
        bias = b->data;
    }
    float *result = allocate(out);
    if (!result) return EXIT_OUT_OF_MEMORY;
    for (uint32_t j = 0; j < out; j++) {
        const float *row = w->data + j * in;
        float acc = bias ? bias[j] : 0.0f;
        for (uint32_t i = 0; i < in; i++) acc += row[i] * x->data[i];
        result[j] = acc;
    }
    y->shape.rank = 1;
    y->shape.dims[0] = out;
    y->data = result;
    return EXIT_OK;
}

/* Output size of a window of `k` taps, stride `s`, padding `p` over `size` positions (0 if none fit). */
static uint32_t window_count(uint32_t size, int32_t k, int32_t s, int32_t p) {
    if (k <= 0 || s <= 0 || p < 0) return 0;
    int64_t span = (int64_t)size + 2 * p - k;
    return span < 0 ? 0 : (uint32_t)(span / s + 1);
}

static int conv2d(const struct graph *g, const struct node *n, const struct value *x, struct value *y) {
    if (n->tensor_count < 1 || n->param_count != 4 || x->shape.rank != 3) return EXIT_BAD_SHAPE;
    const struct tensor *w = &g->tensors[n->tensors[0]];
    int32_t sh = n->params[0], sw = n->params[1], ph = n->params[2], pw = n->params[3];
    uint32_t c = x->shape.dims[0], h = x->shape.dims[1], wd = x->shape.dims[2];
    if (w->shape.rank != 4 || w->shape.dims[1] != c) return EXIT_BAD_SHAPE;
    uint32_t oc = w->shape.dims[0], kh = w->shape.dims[2], kw = w->shape.dims[3];
    uint32_t oh = window_count(h, (int32_t)kh, sh, ph), ow = window_count(wd, (int32_t)kw, sw, pw);
    if (oh == 0 || ow == 0) return EXIT_BAD_SHAPE;
    const float *bias = NULL;
    if (n->tensor_count == 2) {
        const struct tensor *b = &g->tensors[n->tensors[1]];
        if (b->shape.rank != 1 || b->shape.dims[0] != oc) return EXIT_BAD_SHAPE;
        bias = b->data;
    }
    y->shape.rank = 3;
    y->shape.dims[0] = oc;
    y->shape.dims[1] = oh;
    y->shape.dims[2] = ow;
    if (!elements(y)) return EXIT_MODEL_TOO_LARGE;
    float *result = allocate(elements(y));
    if (!result) return EXIT_OUT_OF_MEMORY;
    for (uint32_t o = 0; o < oc; o++) {
        for (uint32_t oy = 0; oy < oh; oy++) {
            for (uint32_t ox = 0; ox < ow; ox++) {
                float acc = bias ? bias[o] : 0.0f;
                for (uint32_t i = 0; i < c; i++) {
                    for (uint32_t ky = 0; ky < kh; ky++) {
                        int32_t iy = (int32_t)(oy * sh + ky) - ph;
                        if (iy < 0 || iy >= (int32_t)h) continue; /* padding: no term */
                        for (uint32_t kx = 0; kx < kw; kx++) {
                            int32_t ix = (int32_t)(ox * sw + kx) - pw;
                            if (ix < 0 || ix >= (int32_t)wd) continue;
                            acc += w->data[((o * c + i) * kh + ky) * kw + kx] * x->data[(i * h + iy) * wd + ix];
                        }
                    }
                }
                result[(o * oh + oy) * ow + ox] = acc;
            }
        }
    }
    y->data = result;
    return EXIT_OK;
}

static int pool2d(const struct node *n, const struct value *x, struct value *y, int is_max) {
    if (n->param_count != 6 || x->shape.rank != 3) return EXIT_BAD_SHAPE;
    int32_t kh = n->params[0], kw = n->params[1], sh = n->params[2], sw = n->params[3];
    int32_t ph = n->params[4], pw = n->params[5];
    uint32_t c = x->shape.dims[0], h = x->shape.dims[1], wd = x->shape.dims[2];
    uint32_t oh = window_count(h, kh, sh, ph), ow = window_count(wd, kw, sw, pw);
    if (oh == 0 || ow == 0 || 2 * ph > kh || 2 * pw > kw) return EXIT_BAD_SHAPE;
    y->shape.rank = 3;
    y->shape.dims[0] = c;
    y->shape.dims[1] = oh;
    y->shape.dims[2] = ow;
    float *result = allocate(elements(y));
    if (!result) return EXIT_OUT_OF_MEMORY;
    union {
        uint32_t u;
        float f;
    } negative_infinity = {NEGATIVE_INFINITY_BITS};
    float divisor = (float)(kh * kw); /* padding counts, as PyTorch's default */
    for (uint32_t i = 0; i < c; i++) {
        for (uint32_t oy = 0; oy < oh; oy++) {
            for (uint32_t ox = 0; ox < ow; ox++) {
                float acc = is_max ? negative_infinity.f : 0.0f;
                for (int32_t ky = 0; ky < kh; ky++) {
                    int32_t iy = (int32_t)oy * sh + ky - ph;
                    if (iy < 0 || iy >= (int32_t)h) continue;
                    for (int32_t kx = 0; kx < kw; kx++) {
                        int32_t ix = (int32_t)ox * sw + kx - pw;
                        if (ix < 0 || ix >= (int32_t)wd) continue;
                        float v = x->data[(i * h + iy) * wd + ix];
                        if (is_max) {
                            if (v > acc) acc = v;
                        } else {
                            acc += v;
                        }
                    }
                }
                result[(i * oh + oy) * ow + ox] = is_max ? acc : acc / divisor;
            }
        }
    }
    y->data = result;
    return EXIT_OK;
}

static int elementwise(const struct node *n, const struct value *x, struct value *y) {
    uint32_t count = elements(x);
    float *result = allocate(count);
    if (!result) return EXIT_OUT_OF_MEMORY;
    for (uint32_t i = 0; i < count; i++) {
        float v = x->data[i];
        if (n->op == OP_RELU) result[i] = v < 0.0f ? 0.0f : v;
        else if (n->op == OP_SIGMOID) result[i] = opml_sigmoidf(v);
        else result[i] = opml_tanhf(v);
    }
    y->shape = x->shape;
    y->data = result;
    return EXIT_OK;
}

static int add(const struct value *a, const struct value *b, struct value *y) {
    if (a->shape.rank != b->shape.rank) return EXIT_BAD_SHAPE;
    for (uint32_t i = 0; i < a->shape.rank; i++)
        if (a->shape.dims[i] != b->shape.dims[i]) return EXIT_BAD_SHAPE;
    uint32_t count = elements(a);
    float *result = allocate(count);
    if (!result) return EXIT_OUT_OF_MEMORY;
    for (uint32_t i = 0; i < count; i++) result[i] = a->data[i] + b->data[i];
    y->shape = a->shape;
    y->data = result;
    return EXIT_OK;
}

static int softmax(const struct value *x, struct value *y) {
    uint32_t count = elements(x);
    float *result = allocate(count);
    if (!result) return EXIT_OUT_OF_MEMORY;
    float max = x->data[0];
    for (uint32_t i = 1; i < count; i++)
        if (x->data[i] > max) max = x->data[i];
    float sum = 0.0f;
    for (uint32_t i = 0; i < count; i++) {
        result[i] = opml_expf(x->data[i] - max);
        sum += result[i];
    }
    for (uint32_t i = 0; i < count; i++) result[i] = result[i] / sum;
    y->shape.rank = 1;
    y->shape.dims[0] = count;
    y->data = result;
    return EXIT_OK;
}

static int run_node(const struct graph *g, const struct node *n, const struct value *values, struct value *y) {
    const struct value *x = &values[n->inputs[0]];
    switch (n->op) {
    case OP_LINEAR: return linear(g, n, x, y);
    case OP_CONV2D: return conv2d(g, n, x, y);
    case OP_MAXPOOL2D: return pool2d(n, x, y, 1);
    case OP_AVGPOOL2D: return pool2d(n, x, y, 0);
    case OP_RELU:
    case OP_SIGMOID:
    case OP_TANH: return elementwise(n, x, y);
    case OP_SOFTMAX: return softmax(x, y);
    case OP_FLATTEN:
        y->shape.rank = 1;
        y->shape.dims[0] = elements(x);
        y->data = x->data;
        return EXIT_OK;
    case OP_ADD:
        if (n->input_count != 2) return EXIT_BAD_SHAPE;
        return add(x, &values[n->inputs[1]], y);
    default: return EXIT_UNSUPPORTED_OP;
    }
}

int run_graph(const struct graph *g, const uint8_t *input, uint32_t input_length, const float **output,
              uint32_t *output_count) {
    static struct value values[MAX_NODES + 1];
    uint32_t count = shape_elements(&g->input_shape);
    uint32_t expected = g->input_type == INPUT_U8 ? count : 4u * count;
    if (input_length != expected) return EXIT_BAD_INPUT_LENGTH;
    values[0].shape = g->input_shape;
    if (g->input_type == INPUT_U8) {
        float *converted = allocate(count);
        if (!converted) return EXIT_OUT_OF_MEMORY;
        for (uint32_t i = 0; i < count; i++) converted[i] = (float)input[i];
        values[0].data = converted;
    } else {
        values[0].data = (const float *)input; /* big-endian floats, 4-byte aligned */
    }
    for (uint32_t i = 0; i < g->node_count; i++) {
        int error = run_node(g, &g->nodes[i], values, &values[i + 1]);
        if (error) return error;
    }
    *output = values[g->node_count].data;
    *output_count = elements(&values[g->node_count]);
    return EXIT_OK;
}
