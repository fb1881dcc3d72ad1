/* The LLM side of the guest: the OPLM model file (docs/llm.md; opml/models/llm/format.py is the
 * Python side), weights dequantized bit for bit as opml/models/llm/quant.py does, and the ops of a
 * llama forward pass (opml/models/llm/ops.py is the numpy reference, equal bit for bit). */
#ifndef LLM_H
#define LLM_H

#include "inference.h"

#define LLM_MAGIC 0x4f504c4du /* "OPLM" */
#define LLM_VERSION 1u
#define LLM_CONFIG_WORDS 12u
#define LLM_ENTRY_WORDS 5u
#define LLM_GLOBAL_TENSORS 4u /* token_embd, output_norm, output, rope */
#define LLM_LAYER_TENSORS 9u
#define LLM_DATA_ALIGNMENT 32u
#define LLM_BLOCK_WEIGHTS 32u

#define LLM_MAX_LAYERS 256u
#define LLM_MAX_WIDTH (1u << 16)
#define LLM_MAX_HEAD_DIM 256u
#define LLM_MAX_VOCAB (1u << 24)
#define LLM_MAX_POSITIONS (1u << 16)
#define LLM_MAX_TENSORS (LLM_GLOBAL_TENSORS + LLM_LAYER_TENSORS * LLM_MAX_LAYERS)

/* Tensor indices in the directory. */
enum {
    LLM_TOKEN_EMBD = 0,
    LLM_OUTPUT_NORM = 1,
    LLM_OUTPUT = 2,
    LLM_ROPE = 3,
};
/* Roles within a layer: tensor LLM_GLOBAL_TENSORS + 9 * layer + role. */
enum {
    LLM_ATTN_NORM,
    LLM_ATTN_Q,
    LLM_ATTN_K,
    LLM_ATTN_V,
    LLM_ATTN_OUTPUT,
    LLM_FFN_NORM,
    LLM_FFN_GATE,
    LLM_FFN_UP,
    LLM_FFN_DOWN,
};

/* GGML's numbers for the tensor types. */
enum { LLM_F32 = 0, LLM_F16 = 1, LLM_Q4_1 = 3, LLM_Q8_0 = 8 };
#define LLM_Q4_1_BLOCK_BYTES 20u
#define LLM_Q8_0_BLOCK_BYTES 34u

struct llm_config {
    uint32_t layers, width, ffn, heads, kv_heads, head_dim, vocab, positions;
    float rope_base, rms_epsilon;
    uint32_t bos, eos;
};

struct llm_tensor {
    uint32_t type, rows, cols;
    const uint8_t *data; /* in the model region */
};

struct llm_model {
    struct llm_config config;
    uint32_t tensor_count;
    struct llm_tensor tensors[LLM_MAX_TENSORS];
};

/* Parses and checks a model file (the checks of format.py's parse_model); EXIT_OK or an exit code. */
int llm_parse_model(const uint8_t *data, uint32_t length, struct llm_model *model);

/* Bytes of one row of `cols` weights of this type (0 for an unknown type). */
uint32_t llm_row_bytes(uint32_t type, uint32_t cols);

/* The float32 value of a little-endian half at p, converted exactly. */
float llm_half(const uint8_t *p);
/* Row `row` of a tensor as float32, dequantized exactly as quant.py does. */
void llm_dequantize_row(const struct llm_tensor *t, uint32_t row, float *out);

/* NaN -> 0x7fc00000, -0 -> +0: every op's output. */
void llm_canonical(float *values, uint32_t count);

/* The ops (ops.py has each one's float order). Shapes are checked by the caller. */
void llm_embed(const struct llm_tensor *table, const int32_t *ids, uint32_t count, float *out);
void llm_rms_norm(const float *x, uint32_t rows, uint32_t n, const float *weight, float epsilon, float *out);
void llm_matmul(const float *x, uint32_t rows, const struct llm_tensor *w, uint32_t first, uint32_t count,
                float *row_buffer, float *out);
void llm_rope(const float *x, uint32_t rows, uint32_t heads, uint32_t head_dim, const float *table,
              uint32_t first_position, float *out);
void llm_attention(const float *q, uint32_t rows, const float *keys, const float *values, uint32_t positions,
                   uint32_t heads, uint32_t kv_heads, uint32_t head_dim, float *scores, float *out);
void llm_swiglu(const float *gate, const float *up, uint32_t count, float *out);
void llm_add(const float *a, const float *b, uint32_t count, float *out);
uint32_t llm_argmax(const float *x, uint32_t count);

#endif
