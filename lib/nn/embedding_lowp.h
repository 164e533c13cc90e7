/* An embedding table kept in reduced precision for inference (docs/precision.md): CLIP's
 * token embedding (49408 x 512, 101 MB in fp32: 17 % of ViT-B/32's weights) is a lookup, not
 * a GEMM, so it has no packed matrix; this stores its rows smaller instead.
 *   bf16  each value rounded to bf16 (to nearest, ties to even: mcnn_bf16_from_float, the
 *         bf16 packer's rounding): 2 bytes a value.  The lookup widens it back, exactly.
 *   int8  each row symmetric with its own scale: s = max|row| / 127, q = round(x / s) in
 *         [-127, 127] (ties to even; mcnn_quant_weight_row, the int8 packer's per-channel
 *         quantizer): 1 byte a value and 4 a row.  The lookup gives q · s (one fp32 product);
 *         an all-zero row gives zeros, a row holding NaN or inf NaN (s = NaN), as fp32 would
 *         carry it on.
 * fp32 has no compressed copy: the model looks its fp32 table up as before.  Read-only once
 * made, so any number of threads may look up at once. */
#ifndef MCNN_EMBEDDING_LOWP_H
#define MCNN_EMBEDDING_LOWP_H

#include "internal.h"
#include "mcnn/lowp.h"

typedef struct mcnn_embedding_lowp mcnn_embedding_lowp;

/* The (V, C) fp32 table in precision p (BF16 or INT8; anything else is MCNN_ERR_ARG). */
mcnn_status mcnn_embedding_lowp_create(mcnn_embedding_lowp **out, mcnn_precision p,
                                       const float *table, int V, int C);
void mcnn_embedding_lowp_free(mcnn_embedding_lowp *e);
/* The bytes it holds: V · C · 2 (bf16), V · C + 4 V (int8). */
size_t mcnn_embedding_lowp_bytes(const mcnn_embedding_lowp *e);
/* mcnn_embedding_forward on the stored rows: y[n] = row ids[n], widened to fp32.  y (N, C);
 * the ids are in [0, V) (the caller checked them). */
void mcnn_embedding_lowp_forward(float *y, const int32_t *ids, const mcnn_embedding_lowp *e,
                                 int N);

#endif
