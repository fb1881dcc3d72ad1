/* The inference program: model region -> graph, input region -> output region.
 *
 * Output region: u32 predicted class (the first index of the largest score),
 * u32 score count, then the scores (the last node's values) as float32,
 * all big-endian. Errors exit with the codes of inference.h and a message on
 * stderr. */
#include "inference.h"

static struct graph model_graph;

void fail_message(const char *message) {
    opml_puts(2, "inference: ");
    opml_puts(2, message);
    opml_puts(2, "\n");
}

static int fail(int code) {
    static const char *const messages[] = {
        [EXIT_BAD_MAGIC] = "unknown model format (bad magic)",
        [EXIT_BAD_VERSION] = "unsupported graph format version",
        [EXIT_TRUNCATED_MODEL] = "model file is truncated",
        [EXIT_BAD_SHAPE] = "model shapes do not fit together",
        [EXIT_MODEL_TOO_LARGE] = "model is too large",
        [EXIT_UNSUPPORTED_OP] = "model uses an unsupported operation",
        [EXIT_TRAILING_BYTES] = "model file has bytes after its end",
        [EXIT_BAD_INPUT_LENGTH] = "input has the wrong length for this model",
        [EXIT_OUT_OF_MEMORY] = "out of memory",
        [EXIT_BAD_INDEX] = "a gather index is not a row of its table",
    };
    fail_message(messages[code] ? messages[code] : "error");
    return code;
}

int main(void) {
    uint32_t model_length, input_length;
    const uint8_t *model = opml_model(&model_length);
    const uint8_t *input = opml_input(&input_length);
    if (model_length > OPML_MAX_MODEL_BYTES) return fail(EXIT_TRUNCATED_MODEL);
    if (input_length > OPML_MAX_INPUT_BYTES) return fail(EXIT_BAD_INPUT_LENGTH);
    struct reader r = {model, model_length, 0, 0};
    uint32_t magic = read_u32(&r);
    int error;
    if (r.error) error = r.error;
    else if (magic == SEED_MAGIC) error = parse_seed_model(&r, &model_graph);
    else if (magic == GRAPH_MAGIC) error = parse_graph_model(&r, &model_graph);
    else error = EXIT_BAD_MAGIC;
    if (!error && r.position != r.length) error = EXIT_TRAILING_BYTES;
    if (error) return fail(error);

    const float *scores;
    uint32_t count;
    error = run_graph(&model_graph, input, input_length, &scores, &count);
    if (error) return fail(error);

    uint32_t best = 0;
    for (uint32_t i = 1; i < count; i++)
        if (scores[i] > scores[best]) best = i;
    uint8_t *out = opml_output_buffer();
    opml_store_be32(out, best);
    opml_store_be32(out + 4, count);
    memcpy(out + 8, scores, (size_t)count * 4u);
    opml_set_output_length(8u + (size_t)count * 4u);
    return EXIT_OK;
}
