/* Benchmark guest: a float32 784-128-10 MLP (ReLU after the hidden layer).
 *
 * model region: W1[128][784], b1[128], W2[10][128], b2[10] as big-endian float32
 * input region: x[784] as big-endian float32
 * output region: the 10 output activations as big-endian float32
 *
 * Each neuron starts from its bias and adds w * x in index order, so a numpy
 * reference doing the same float32 operations gets the same bits. */
#include "opml.h"

#define IN 784
#define HIDDEN 128
#define OUT 10

static void dense(const float *weights, const float *bias, const float *x, float *y, int n_in, int n_out, int relu) {
    for (int j = 0; j < n_out; j++) {
        float acc = bias[j];
        const float *row = weights + j * n_in;
        for (int i = 0; i < n_in; i++) acc += row[i] * x[i];
        y[j] = (relu && acc < 0.0f) ? 0.0f : acc;
    }
}

int main(void) {
    uint32_t model_length, input_length;
    const float *model = (const float *)opml_model(&model_length);
    const float *x = (const float *)opml_input(&input_length);
    if (model_length != 4u * (IN * HIDDEN + HIDDEN + HIDDEN * OUT + OUT)) return 2;
    if (input_length != 4u * IN) return 3;
    const float *w1 = model, *b1 = w1 + IN * HIDDEN, *w2 = b1 + HIDDEN, *b2 = w2 + HIDDEN * OUT;
    static float hidden[HIDDEN];
    float *out = (float *)opml_output_buffer();
    dense(w1, b1, x, hidden, IN, HIDDEN, 1);
    dense(w2, b2, hidden, out, HIDDEN, OUT, 0);
    opml_set_output_length(4u * OUT);
    return 0;
}
