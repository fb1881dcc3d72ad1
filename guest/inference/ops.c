/* The graph executor: shapes are checked before any kernel runs; kernels do
 * their float32 operations in the order docs/models.md gives, which the numpy
 * reference (opml/models/reference.py) follows exactly, checks included. */
#include "inference.h"
#include "dot.h"

#define NEGATIVE_INFINITY_BITS 0xff800000u

static uint32_t elements(const struct value *v) { return shape_elements(&v->shape); }

static float *allocate(uint32_t count) { return (float *)opml_alloc((size_t)count * sizeof(float)); }

static float float_from_bits(int32_t bits) {
    union {
        int32_t i;
        float f;
    } v = {bits};
    return v.f;
}

/* y's shape, and room for its values; a shape over MAX_ELEMENTS is too large. */
static float *shaped_output(struct value *y, uint32_t rank, const uint32_t *dims, int *error) {
    y->shape.rank = rank;
    for (uint32_t i = 0; i < rank; i++) y->shape.dims[i] = dims[i];
    *error = EXIT_OK;
    if (!elements(y)) {
        *error = EXIT_MODEL_TOO_LARGE;
        return NULL;
    }
    float *result = allocate(elements(y));
    if (!result) *error = EXIT_OUT_OF_MEMORY;
    y->data = result;
    return result;
}

/* A node's tensor as a value (an operand that is a constant). */
static struct value tensor_value(const struct graph *g, const struct node *n, uint32_t which) {
    const struct tensor *t = &g->tensors[n->tensors[which]];
    struct value v = {t->shape, t->data};
    return v;
}

/* The bias of a linear or conv2d node: its second tensor, [out], if it has one. */
static int optional_bias(const struct graph *g, const struct node *n, uint32_t out, const float **bias) {
    *bias = NULL;
    if (n->tensor_count < 2) return EXIT_OK;
    const struct tensor *b = &g->tensors[n->tensors[1]];
    if (b->shape.rank != 1 || b->shape.dims[0] != out) return EXIT_BAD_SHAPE;
    *bias = b->data;
    return EXIT_OK;
}

/* y[..., j] = bias[j] + sum_i w[j][i] x[..., i]: over the last axis, or over all of x when only
 * its element count is `in` (a feature map into a classifier: the input is flattened). */
static int linear(const struct graph *g, const struct node *n, const struct value *x, struct value *y) {
    if (n->tensor_count < 1) return EXIT_BAD_SHAPE;
    const struct tensor *w = &g->tensors[n->tensors[0]];
    if (w->shape.rank != 2) return EXIT_BAD_SHAPE;
    uint32_t in = w->shape.dims[1], out = w->shape.dims[0];
    struct shape shape = x->shape;
    if (shape.dims[shape.rank - 1] != in) {
        if (elements(x) != in) return EXIT_BAD_SHAPE;
        shape.rank = 1;
    }
    shape.dims[shape.rank - 1] = out;
    const float *bias;
    int error = optional_bias(g, n, out, &bias);
    if (error) return error;
    float *result = shaped_output(y, shape.rank, shape.dims, &error);
    if (error) return error;
    uint32_t rows = elements(x) / in;
    for (uint32_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * in;
        for (uint32_t j = 0; j < out; j++) {
            result[r * out + j] = opml_dot(bias ? bias[j] : 0.0f, w->data + j * in, xr, in, 1);
        }
    }
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
    const float *bias;
    int error = optional_bias(g, n, oc, &bias);
    if (error) return error;
    uint32_t dims[3] = {oc, oh, ow};
    float *result = shaped_output(y, 3, dims, &error);
    if (error) return error;
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
                            acc = opml_mac(acc, w->data[((o * c + i) * kh + ky) * kw + kx],
                                           x->data[(i * h + iy) * wd + ix]);
                        }
                    }
                }
                result[(o * oh + oy) * ow + ox] = acc;
            }
        }
    }
    return EXIT_OK;
}

static int pool2d(const struct node *n, const struct value *x, struct value *y, int is_max) {
    if (n->param_count != 6 || x->shape.rank != 3) return EXIT_BAD_SHAPE;
    int32_t kh = n->params[0], kw = n->params[1], sh = n->params[2], sw = n->params[3];
    int32_t ph = n->params[4], pw = n->params[5];
    uint32_t c = x->shape.dims[0], h = x->shape.dims[1], wd = x->shape.dims[2];
    uint32_t oh = window_count(h, kh, sh, ph), ow = window_count(wd, kw, sw, pw);
    if (oh == 0 || ow == 0 || 2 * ph > kh || 2 * pw > kw) return EXIT_BAD_SHAPE;
    uint32_t dims[3] = {c, oh, ow};
    int error;
    float *result = shaped_output(y, 3, dims, &error);
    if (error) return error;
    float negative_infinity = float_from_bits((int32_t)NEGATIVE_INFINITY_BITS);
    float divisor = (float)(kh * kw); /* padding counts, as PyTorch's default */
    for (uint32_t i = 0; i < c; i++) {
        for (uint32_t oy = 0; oy < oh; oy++) {
            for (uint32_t ox = 0; ox < ow; ox++) {
                float acc = is_max ? negative_infinity : 0.0f;
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
    return EXIT_OK;
}

static float apply_elementwise(uint32_t op, float v) {
    switch (op) {
    case OP_RELU: return v < 0.0f ? 0.0f : v;
    case OP_SIGMOID: return opml_sigmoidf(v);
    case OP_TANH: return opml_tanhf(v);
    case OP_SQRT: return opml_sqrtf(v);
    default: return opml_erff(v);
    }
}

static int elementwise(const struct node *n, const struct value *x, struct value *y) {
    int error;
    float *result = shaped_output(y, x->shape.rank, x->shape.dims, &error);
    if (error) return error;
    for (uint32_t i = 0; i < elements(x); i++) result[i] = apply_elementwise(n->op, x->data[i]);
    return EXIT_OK;
}

/* clip: params min, max as float32 bits; x < min ? min : x > max ? max : x (a NaN stays). */
static int clip(const struct node *n, const struct value *x, struct value *y) {
    if (n->param_count != 2) return EXIT_BAD_SHAPE;
    float low = float_from_bits(n->params[0]), high = float_from_bits(n->params[1]);
    int error;
    float *result = shaped_output(y, x->shape.rank, x->shape.dims, &error);
    if (error) return error;
    for (uint32_t i = 0; i < elements(x); i++) {
        float v = x->data[i];
        result[i] = v < low ? low : v > high ? high : v;
    }
    return EXIT_OK;
}

/* --- binary ops: add, sub, mul, div with broadcasting ------------------------------------- */

/* `s` as a shape of MAX_RANK axes, aligned at the last one (numpy's broadcasting): its dims,
 * and its strides with 0 along the axes where it has size 1 and is repeated. */
static void aligned(const struct shape *s, uint32_t dims[MAX_RANK], uint32_t strides[MAX_RANK]) {
    uint32_t stride = 1, pad = MAX_RANK - s->rank;
    for (int i = MAX_RANK - 1; i >= 0; i--) {
        uint32_t size = i < (int)pad ? 1 : s->dims[i - pad];
        dims[i] = size;
        strides[i] = size == 1 ? 0 : stride;
        stride *= size;
    }
}

static float apply_binary(uint32_t op, float a, float b) {
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    default: return a / b;
    }
}

/* a op b. b is the second input, or the node's tensor; param 1 puts the tensor first. */
static int binary(const struct graph *g, const struct node *n, const struct value *values, struct value *y) {
    struct value a = values[n->inputs[0]], b;
    if (n->input_count == 2 && n->tensor_count == 0) b = values[n->inputs[1]];
    else if (n->input_count == 1 && n->tensor_count == 1) b = tensor_value(g, n, 0);
    else return EXIT_BAD_SHAPE;
    if (n->param_count > 1 || (n->param_count == 1 && (uint32_t)n->params[0] > 1)) return EXIT_BAD_SHAPE;
    if (n->param_count == 1 && n->params[0] == 1) {
        struct value t = a;
        a = b;
        b = t;
    }
    uint32_t a_dims[MAX_RANK], a_strides[MAX_RANK], b_dims[MAX_RANK], b_strides[MAX_RANK], dims[MAX_RANK];
    aligned(&a.shape, a_dims, a_strides);
    aligned(&b.shape, b_dims, b_strides);
    for (int i = 0; i < MAX_RANK; i++) {
        if (a_dims[i] != b_dims[i] && a_dims[i] != 1 && b_dims[i] != 1) return EXIT_BAD_SHAPE;
        dims[i] = a_dims[i] == 1 ? b_dims[i] : a_dims[i];
    }
    uint32_t rank = a.shape.rank > b.shape.rank ? a.shape.rank : b.shape.rank;
    int error;
    float *result = shaped_output(y, rank, dims + MAX_RANK - rank, &error);
    if (error) return error;
    uint32_t k = 0;
    for (uint32_t i0 = 0; i0 < dims[0]; i0++)
        for (uint32_t i1 = 0; i1 < dims[1]; i1++)
            for (uint32_t i2 = 0; i2 < dims[2]; i2++)
                for (uint32_t i3 = 0; i3 < dims[3]; i3++) {
                    uint32_t ia = i0 * a_strides[0] + i1 * a_strides[1] + i2 * a_strides[2] + i3 * a_strides[3];
                    uint32_t ib = i0 * b_strides[0] + i1 * b_strides[1] + i2 * b_strides[2] + i3 * b_strides[3];
                    result[k++] = apply_binary(n->op, a.data[ia], b.data[ib]);
                }
    return EXIT_OK;
}

/* --- transformer ops ----------------------------------------------------------------------- */

/* [..., M, K] @ [..., K, N] -> [..., M, N], the leading (batch) dims equal:
 * acc = 0, then acc += a[m][k] * b[k][n] for k = 0.. */
static int matmul(const struct value *a, const struct value *b, struct value *y) {
    uint32_t rank = a->shape.rank;
    if (rank < 2 || b->shape.rank != rank) return EXIT_BAD_SHAPE;
    for (uint32_t i = 0; i + 2 < rank; i++)
        if (a->shape.dims[i] != b->shape.dims[i]) return EXIT_BAD_SHAPE;
    uint32_t m = a->shape.dims[rank - 2], k = a->shape.dims[rank - 1], n = b->shape.dims[rank - 1];
    if (b->shape.dims[rank - 2] != k) return EXIT_BAD_SHAPE;
    struct shape shape = a->shape;
    shape.dims[rank - 1] = n;
    int error;
    float *result = shaped_output(y, rank, shape.dims, &error);
    if (error) return error;
    uint32_t batches = elements(a) / (m * k);
    for (uint32_t t = 0; t < batches; t++) {
        const float *at = a->data + t * m * k, *bt = b->data + t * k * n;
        float *yt = result + t * m * n;
        for (uint32_t i = 0; i < m; i++) {
            for (uint32_t j = 0; j < n; j++) yt[i * n + j] = opml_dot(0.0f, at + i * k, bt + j, k, n);
        }
    }
    return EXIT_OK;
}

/* params: a permutation of the axes; y.dims[i] = x.dims[perm[i]]. */
static int transpose(const struct node *n, const struct value *x, struct value *y) {
    uint32_t rank = x->shape.rank;
    if (n->param_count != rank) return EXIT_BAD_SHAPE;
    uint32_t seen = 0, x_strides[MAX_RANK], dims[MAX_RANK] = {1, 1, 1, 1}, strides[MAX_RANK] = {0, 0, 0, 0};
    for (uint32_t i = 0; i < rank; i++) {
        uint32_t axis = (uint32_t)n->params[i];
        if (axis >= rank || (seen & (1u << axis))) return EXIT_BAD_SHAPE;
        seen |= 1u << axis;
    }
    uint32_t stride = 1;
    for (int i = (int)rank - 1; i >= 0; i--) {
        x_strides[i] = stride;
        stride *= x->shape.dims[i];
    }
    uint32_t pad = MAX_RANK - rank;
    for (uint32_t i = 0; i < rank; i++) {
        dims[pad + i] = x->shape.dims[n->params[i]];
        strides[pad + i] = x_strides[n->params[i]];
    }
    int error;
    float *result = shaped_output(y, rank, dims + pad, &error);
    if (error) return error;
    uint32_t k = 0;
    for (uint32_t i0 = 0; i0 < dims[0]; i0++)
        for (uint32_t i1 = 0; i1 < dims[1]; i1++)
            for (uint32_t i2 = 0; i2 < dims[2]; i2++)
                for (uint32_t i3 = 0; i3 < dims[3]; i3++)
                    result[k++] = x->data[i0 * strides[0] + i1 * strides[1] + i2 * strides[2] + i3 * strides[3]];
    return EXIT_OK;
}

/* params: the new dims, as many elements as x has; y shares x's values. */
static int reshape(const struct node *n, const struct value *x, struct value *y) {
    if (n->param_count == 0 || n->param_count > MAX_RANK) return EXIT_BAD_SHAPE;
    uint64_t count = 1;
    for (uint32_t i = 0; i < n->param_count; i++) {
        if (n->params[i] <= 0) return EXIT_BAD_SHAPE;
        y->shape.dims[i] = (uint32_t)n->params[i];
        count *= (uint32_t)n->params[i];
        if (count > elements(x)) return EXIT_BAD_SHAPE;
    }
    if (count != elements(x)) return EXIT_BAD_SHAPE;
    y->shape.rank = n->param_count;
    y->data = x->data;
    return EXIT_OK;
}

/* params: index; y = x[index] along the first axis, sharing x's values. */
static int select(const struct node *n, const struct value *x, struct value *y) {
    if (n->param_count != 1 || x->shape.rank < 2) return EXIT_BAD_SHAPE;
    if (n->params[0] < 0 || (uint32_t)n->params[0] >= x->shape.dims[0]) return EXIT_BAD_SHAPE;
    y->shape.rank = x->shape.rank - 1;
    for (uint32_t i = 0; i < y->shape.rank; i++) y->shape.dims[i] = x->shape.dims[i + 1];
    y->data = x->data + (uint32_t)n->params[0] * elements(y);
    return EXIT_OK;
}

/* tensor: a table [rows, ...]; y[i] = table[x[i]] for each element of x, an index (a float
 * holding an integer below rows: else EXIT_BAD_INDEX). */
static int gather(const struct graph *g, const struct node *n, const struct value *x, struct value *y) {
    if (n->tensor_count != 1) return EXIT_BAD_SHAPE;
    const struct tensor *table = &g->tensors[n->tensors[0]];
    uint32_t rows = table->shape.dims[0], rank = x->shape.rank + table->shape.rank - 1;
    if (rows > MAX_GATHER_ROWS || rank > MAX_RANK) return EXIT_BAD_SHAPE;
    uint32_t dims[MAX_RANK];
    for (uint32_t i = 0; i < x->shape.rank; i++) dims[i] = x->shape.dims[i];
    for (uint32_t i = 1; i < table->shape.rank; i++) dims[x->shape.rank + i - 1] = table->shape.dims[i];
    int error;
    float *result = shaped_output(y, rank, dims, &error);
    if (error) return error;
    uint32_t row = shape_elements(&table->shape) / rows;
    for (uint32_t i = 0; i < elements(x); i++) {
        float index = x->data[i];
        if (!(index >= 0.0f && index < (float)rows)) return EXIT_BAD_INDEX;
        uint32_t r = (uint32_t)index;
        if ((float)r != index) return EXIT_BAD_INDEX;
        memcpy(result + i * row, table->data + r * row, row * sizeof(float));
    }
    return EXIT_OK;
}

/* tensors: gamma, beta [n]; params: epsilon (float32 bits). Over each row of the last axis:
 * mean = sum / n, var = sum((x - mean)^2) / n, y = (x - mean) / sqrt(var + eps) * gamma + beta. */
static int layernorm(const struct graph *g, const struct node *n, const struct value *x, struct value *y) {
    if (n->tensor_count != 2 || n->param_count != 1) return EXIT_BAD_SHAPE;
    uint32_t size = x->shape.dims[x->shape.rank - 1];
    const struct tensor *gamma = &g->tensors[n->tensors[0]], *beta = &g->tensors[n->tensors[1]];
    if (gamma->shape.rank != 1 || gamma->shape.dims[0] != size) return EXIT_BAD_SHAPE;
    if (beta->shape.rank != 1 || beta->shape.dims[0] != size) return EXIT_BAD_SHAPE;
    float epsilon = float_from_bits(n->params[0]), count = (float)size;
    int error;
    float *result = shaped_output(y, x->shape.rank, x->shape.dims, &error);
    if (error) return error;
    for (uint32_t r = 0; r < elements(x) / size; r++) {
        const float *row = x->data + r * size;
        float mean = 0.0f, variance = 0.0f;
        for (uint32_t i = 0; i < size; i++) mean += row[i];
        mean = mean / count;
        for (uint32_t i = 0; i < size; i++) {
            float d = row[i] - mean;
            variance = opml_mac(variance, d, d);
        }
        variance = variance / count;
        float deviation = opml_sqrtf(variance + epsilon);
        for (uint32_t i = 0; i < size; i++)
            result[r * size + i] = (row[i] - mean) / deviation * gamma->data[i] + beta->data[i];
    }
    return EXIT_OK;
}

/* params: axis, keepdims. Along the axis, in order: sum: acc = 0, acc += v; l2: acc = 0,
 * acc += v * v, then sqrt(acc). Without keepdims the axis goes (a vector becomes [1]). */
static int reduce(const struct node *n, const struct value *x, struct value *y) {
    if (n->param_count != 2) return EXIT_BAD_SHAPE;
    uint32_t axis = (uint32_t)n->params[0], keep = (uint32_t)n->params[1], rank = x->shape.rank;
    if (axis >= rank || keep > 1) return EXIT_BAD_SHAPE;
    uint32_t outer = 1, inner = 1, length = x->shape.dims[axis];
    for (uint32_t i = 0; i < axis; i++) outer *= x->shape.dims[i];
    for (uint32_t i = axis + 1; i < rank; i++) inner *= x->shape.dims[i];
    struct shape shape = x->shape;
    if (keep) {
        shape.dims[axis] = 1;
    } else if (rank == 1) {
        shape.dims[0] = 1;
    } else {
        for (uint32_t i = axis; i + 1 < rank; i++) shape.dims[i] = shape.dims[i + 1];
        shape.rank--;
    }
    int error;
    float *result = shaped_output(y, shape.rank, shape.dims, &error);
    if (error) return error;
    for (uint32_t o = 0; o < outer; o++) {
        for (uint32_t i = 0; i < inner; i++) {
            const float *v = x->data + o * length * inner + i;
            float acc = 0.0f;
            for (uint32_t k = 0; k < length; k++)
                acc = n->op == OP_REDUCE_SUM ? acc + v[k * inner] : opml_mac(acc, v[k * inner], v[k * inner]);
            result[o * inner + i] = n->op == OP_REDUCE_SUM ? acc : opml_sqrtf(acc);
        }
    }
    return EXIT_OK;
}

/* No params: over all elements, written as a vector. params [rank - 1]: over each row of the
 * last axis, shape kept. A row: m = running max, e = exp(x - m), sum in order, e / sum. */
static int softmax(const struct node *n, const struct value *x, struct value *y) {
    uint32_t count = elements(x), size = count;
    int error;
    float *result;
    if (n->param_count == 0) {
        result = shaped_output(y, 1, &count, &error);
    } else {
        if (n->param_count != 1 || (uint32_t)n->params[0] != x->shape.rank - 1) return EXIT_BAD_SHAPE;
        size = x->shape.dims[x->shape.rank - 1];
        result = shaped_output(y, x->shape.rank, x->shape.dims, &error);
    }
    if (error) return error;
    for (uint32_t start = 0; start < count; start += size) {
        const float *row = x->data + start;
        float *out = result + start;
        float max = row[0];
        for (uint32_t i = 1; i < size; i++)
            if (row[i] > max) max = row[i];
        float sum = 0.0f;
        for (uint32_t i = 0; i < size; i++) {
            out[i] = opml_expf(row[i] - max);
            sum += out[i];
        }
        for (uint32_t i = 0; i < size; i++) out[i] = out[i] / sum;
    }
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
    case OP_TANH:
    case OP_SQRT:
    case OP_ERF: return elementwise(n, x, y);
    case OP_CLIP: return clip(n, x, y);
    case OP_SOFTMAX: return softmax(n, x, y);
    case OP_FLATTEN:
        y->shape.rank = 1;
        y->shape.dims[0] = elements(x);
        y->data = x->data;
        return EXIT_OK;
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV: return binary(g, n, values, y);
    case OP_MATMUL:
        if (n->input_count != 2) return EXIT_BAD_SHAPE;
        return matmul(x, &values[n->inputs[1]], y);
    case OP_TRANSPOSE: return transpose(n, x, y);
    case OP_RESHAPE: return reshape(n, x, y);
    case OP_SELECT: return select(n, x, y);
    case OP_GATHER: return gather(g, n, x, y);
    case OP_LAYERNORM: return layernorm(g, n, x, y);
    case OP_REDUCE_SUM:
    case OP_REDUCE_L2: return reduce(n, x, y);
    default: return EXIT_UNSUPPORTED_OP;
    }
}

/* The input region's bytes as the graph's input value: u8 and i32 elements become floats. */
static int input_value(const struct graph *g, const uint8_t *input, uint32_t input_length, struct value *x) {
    uint32_t count = shape_elements(&g->input_shape);
    uint32_t expected = g->input_type == INPUT_U8 ? count : 4u * count;
    if (input_length != expected) return EXIT_BAD_INPUT_LENGTH;
    x->shape = g->input_shape;
    if (g->input_type == INPUT_F32) {
        x->data = (const float *)input; /* big-endian floats, 4-byte aligned */
        return EXIT_OK;
    }
    float *converted = allocate(count);
    if (!converted) return EXIT_OUT_OF_MEMORY;
    for (uint32_t i = 0; i < count; i++)
        converted[i] = g->input_type == INPUT_U8 ? (float)input[i] : (float)(int32_t)opml_load_be32(input + 4 * i);
    x->data = converted;
    return EXIT_OK;
}

int run_graph(const struct graph *g, const uint8_t *input, uint32_t input_length, const float **output,
              uint32_t *output_count) {
    static struct value values[MAX_NODES + 1];
    int error = input_value(g, input, input_length, &values[0]);
    if (error) return error;
    for (uint32_t i = 0; i < g->node_count; i++) {
        error = run_node(g, &g->nodes[i], values, &values[i + 1]);
        if (error) return error;
    }
    *output = values[g->node_count].data;
    *output_count = elements(&values[g->node_count]);
    return EXIT_OK;
}
