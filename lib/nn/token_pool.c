/* Token pooling and its layer norm, forward above backward (steps in token_pool.h). */
#include "token_pool.h"

#include <string.h>

void mcnn_token_pool_carve(token_pool_acts *a, mcnn_carver *c, int B, int C, int train)
{
    const size_t BC = (size_t)B * C;
    a->rows = mcnn_carve(c, BC);
    a->y = mcnn_carve(c, BC);
    a->mean = mcnn_carve(c, B);
    a->rstd = mcnn_carve(c, B);
    a->dy = train ? mcnn_carve(c, BC) : NULL;
    a->drows = train ? mcnn_carve(c, BC) : NULL;
}

void mcnn_token_pool_forward(const token_pool_acts *a, const float *x, const int32_t *at,
                             const float *gain, const float *bias, float eps, int b0, int n,
                             int T, int C)
{
    const size_t b = (size_t)b0;
    float *rows = a->rows + b * C;
    for (int i = 0; i < n; i++)                                                       /* 1 */
        memcpy(rows + (size_t)i * C, x + ((size_t)i * T + (at ? at[b0 + i] : 0)) * C,
               (size_t)C * sizeof(float));
    mcnn_layernorm_forward(a->y + b * C, a->mean + b, a->rstd + b, rows, gain, bias, n, C,  /* 2 */
                           eps);
}

void mcnn_token_pool_backward(float *dx, float *dgain, float *dbias, const token_pool_acts *a,
                              const int32_t *at, const float *gain, int B, int T, int C)
{
    memset(a->drows, 0, (size_t)B * C * sizeof(float));                               /* 2 */
    mcnn_layernorm_backward(a->drows, dgain, dbias, a->dy, a->rows, gain, a->mean, a->rstd, B, C);
    for (int b = 0; b < B; b++)                                                       /* 1 */
        memcpy(dx + ((size_t)b * T + (at ? at[b] : 0)) * C, a->drows + (size_t)b * C,
               (size_t)C * sizeof(float));
}
