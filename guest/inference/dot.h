/* Multiply-adds in float32, bit for bit what `acc += a * b` computes without FMA contraction
 * (the product rounded, then the sum rounded, to nearest even), in about half the steps of
 * compiler-rt's __mulsf3 and __addsf3: matrix products are almost all of a model's steps. */
#ifndef OPML_DOT_H
#define OPML_DOT_H

#include "types.h"

/* acc + a[0] * b[0] + a[1] * b[stride] + ... (n terms), each step rounded: acc += a[i] * b[i * stride]. */
float opml_dot(float acc, const float *a, const float *b, uint32_t n, uint32_t stride);

/* acc + a * b, rounded twice. */
static inline float opml_mac(float acc, float a, float b) { return opml_dot(acc, &a, &b, 1, 0); }

#endif
