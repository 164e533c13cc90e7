/* One token per item, layer-normalised: the end of ViT (class token, encoder.ln), of CLIP's
 * image tower (class token, ln_post) and of its text tower (end-of-text token, ln_final).
 *   1 rows[n] = x[n, t_n, :]     (B, C)    t_n = 0 (class token), or at[n] when given
 *   2 y = layernorm(rows)        (B, C)    (the models normalise every token and keep these
 *                                           rows: the same numbers)
 * Backward 2..1 into the gradient of x, which only the pooled rows receive. */
#ifndef MCNN_TOKEN_POOL_H
#define MCNN_TOKEN_POOL_H

#include "internal.h"

typedef struct token_pool_acts {
    float *rows;                  /* (B, C)                               */
    float *y, *mean, *rstd;       /* (B, C) (B) (B): the layer norm       */
    float *dy, *drows;            /* (B, C) backward scratch, training    */
} token_pool_acts;

void mcnn_token_pool_carve(token_pool_acts *a, mcnn_carver *c, int B, int C, int train);
/* Items b0 .. b0+n-1 (one lane); x is item b0's (T, C) rows, at the whole batch's positions or
 * NULL for token 0. */
void mcnn_token_pool_forward(const token_pool_acts *a, const float *x, const int32_t *at,
                             const float *gain, const float *bias, float eps, int b0, int n,
                             int T, int C);
/* From a->dy (filled by the caller): the gain and bias gradients accumulate into dgain, dbias,
 * and the pooled rows' gradients go into dx (B, T, C), which the caller has zeroed. */
void mcnn_token_pool_backward(float *dx, float *dgain, float *dbias, const token_pool_acts *a,
                              const int32_t *at, const float *gain, int B, int T, int C);

#endif
