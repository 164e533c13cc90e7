/* Multi-head self-attention: linear -> attention -> linear, forward and backward as mirror
 * images.  Shapes and the PyTorch module it matches are in mhsa.h; the maths of step 2 is in
 * lib/ops/attention.c and docs/ops/attention.md. */
#include "mhsa.h"

#include <string.h>

static size_t carve(float **slot, float **cursor, size_t n)
{
    size_t rounded = (n + 15) & ~(size_t)15;
    if (*cursor) {
        *slot = *cursor;
        *cursor += rounded;
    } else {
        *slot = NULL;
    }
    return rounded;
}

size_t mcnn_mhsa_acts_carve(mhsa_acts *a, float *base, int B, int T, int C, int NH)
{
    const size_t N = (size_t)B * T;
    float *cur = base;
    size_t n = 0;
    n += carve(&a->qkv, &cur, N * 3 * C);
    n += carve(&a->probs, &cur, mcnn_attention_workspace_floats(B, T, NH));
    n += carve(&a->att, &cur, N * C);
    return n;
}

void mcnn_mhsa_forward(float *out, mhsa_acts *a, const float *x, const mhsa_params *p, int B,
                       int T, int C, int NH, int causal)
{
    const int N = B * T;
    mcnn_linear_forward(a->qkv, x, p->in_proj_w, p->in_proj_b, N, C, 3 * C);     /* 1 */
    mcnn_attention_forward(a->att, a->probs, a->qkv, B, T, C, NH, causal);       /* 2 */
    mcnn_linear_forward(out, a->att, p->out_proj_w, p->out_proj_b, N, C, C);     /* 3 */
}

void mcnn_mhsa_backward(float *dx, const mhsa_grads *g, mhsa_acts *d, const float *dout,
                        const float *x, const mhsa_acts *a, const mhsa_params *p, int B, int T,
                        int C, int NH, int causal)
{
    const int N = B * T;
    const mhsa_grads none = {0};
    if (!g) g = &none;
    /* the activation gradients accumulate too, so they start at zero */
    memset(d->qkv, 0, (size_t)N * 3 * C * sizeof(float));
    memset(d->att, 0, (size_t)N * C * sizeof(float));
    mcnn_linear_backward(d->att, g->out_proj_w, g->out_proj_b, dout, a->att, p->out_proj_w,
                         N, C, C);                                                /* 3 */
    mcnn_attention_backward(d->qkv, d->att, a->qkv, a->probs, B, T, C, NH, causal,
                            d->probs);                                            /* 2 */
    mcnn_linear_backward(dx, g->in_proj_w, g->in_proj_b, d->qkv, x, p->in_proj_w,
                         N, C, 3 * C);                                            /* 1 */
}
