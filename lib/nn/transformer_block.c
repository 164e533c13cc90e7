/* The pre-norm transformer block, forward and backward as mirror images.
 * Shapes and the maths are in transformer_block.h; docs/walkthrough-vit.md walks through it. */
#include "transformer_block.h"
#include "internal.h"
#include "core/profile.h"
#include "../ops/vmath.h"

#include <string.h>

size_t mcnn_block_acts_carve(block_acts *a, mcnn_carver *c, const block_cfg *cfg, int B, int T)
{
    const size_t N = (size_t)B * T, C = cfg->C, F = cfg->F;
    const size_t start = c->used;
    a->ln1 = mcnn_carve(c, N * C);
    a->ln1_mean = mcnn_carve(c, N);
    a->ln1_rstd = mcnn_carve(c, N);
    a->qkv = mcnn_carve(c, N * 3 * C);
    a->probs = mcnn_carve(c, (size_t)B * cfg->NH * T * T);
    a->att = mcnn_carve(c, N * C);
    a->proj = mcnn_carve(c, N * C);
    a->h = mcnn_carve(c, N * C);
    a->ln2 = mcnn_carve(c, N * C);
    a->ln2_mean = mcnn_carve(c, N);
    a->ln2_rstd = mcnn_carve(c, N);
    a->fc1 = mcnn_carve(c, N * F);
    a->act = mcnn_carve(c, N * F);
    a->fc2 = mcnn_carve(c, N * C);
    return c->used - start;
}

/* The same arrays from token row r and probs float pr on. */
static block_acts acts_from(const block_acts *a, const block_cfg *cfg, size_t r, size_t pr)
{
    const size_t C = cfg->C, F = cfg->F;
    block_acts v = {.ln1 = a->ln1 + r * C, .ln1_mean = a->ln1_mean + r,
                     .ln1_rstd = a->ln1_rstd + r, .qkv = a->qkv + r * 3 * C,
                     .probs = a->probs + pr, .att = a->att + r * C,
                     .proj = a->proj + r * C, .h = a->h + r * C, .ln2 = a->ln2 + r * C,
                     .ln2_mean = a->ln2_mean + r, .ln2_rstd = a->ln2_rstd + r,
                     .fc1 = a->fc1 + r * F, .act = a->act + r * F, .fc2 = a->fc2 + r * C};
    return v;
}

block_acts mcnn_block_acts_images(const block_acts *a, const block_cfg *cfg, int T, int b0)
{
    const size_t t = (size_t)b0 * T;
    return acts_from(a, cfg, t, t * cfg->NH * T);
}

/* out = res + (y + b): a linear layer's bias and the residual add after it, in one pass.  The
 * same float operations in the same order as mcnn_linear_forward's bias and then
 * mcnn_add_forward, so the same bits; one pass and one parallel region fewer. */
static void bias_residual(float *out, const float *res, const float *y, const float *b, int N,
                          int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ADD);
    if (!b) {
        mcnn_add_forward(out, res, y, (size_t)N * C);
        return;
    }
    #pragma omp parallel for if ((size_t)N * C > 32768)
    for (int n = 0; n < N; n++) {
        const size_t o = (size_t)n * C;
        for (int c = 0; c < C; c++) out[o + c] = res[o + c] + (y[o + c] + b[c]);
    }
}

static void act_backward(block_act act, float *dx, const float *dy, const float *x, size_t n)
{
    if (act == BLOCK_QUICK_GELU) mcnn_quick_gelu_backward(dx, dy, x, n);
    else mcnn_gelu_backward(dx, dy, x, n);
}

/* The sequences a block call runs: B of T tokens (starts NULL), or S ragged ones, sequence s
 * in rows starts[s] - starts[0] .. starts[s+1] - starts[0] - 1 (mcnn_attention_forward_ragged). */
typedef struct block_seqs {
    int S, T;
    const int *starts;
} block_seqs;

static int seqs_rows(const block_seqs *q)
{
    return q->starts ? q->starts[q->S] - q->starts[0] : q->S * q->T;
}

static void block_forward(float *out, block_acts *a, const float *x, const block_params *p,
                          const block_cfg *cfg, const block_seqs *q)
{
    const int N = seqs_rows(q), C = cfg->C, NH = cfg->NH, F = cfg->F;
    const float eps = cfg->eps;
    /* The biases of steps 4, 7 and 9 are added with what follows them (5, 8, 10), in the same
     * pass: the same operations in the same order, one pass over the data fewer each. */
    mcnn_layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x, p->ln1_w, p->ln1_b, N, C, eps);    /*  1 */
    const block_packed none = {0}, *pk = p->pk ? p->pk : &none;
    mcnn_linear_forward_packed(a->qkv, a->ln1, p->qkv_w, pk->qkv, p->qkv_b, N, C, 3 * C);          /*  2 */
    /* weights in bf16 on the pair kernel (inference): attention's products in bf16 too */
    const struct mcnn_lowp_kernel *att_bf16 = mcnn_packed_b_pair_kernel(pk->qkv);
    if (att_bf16)                                                                                  /*  3 */
        mcnn_attention_forward_bf16(a->att, a->probs, a->qkv, q->S, q->T, q->starts, C, NH,
                                    cfg->causal, att_bf16);
    else if (q->starts)
        mcnn_attention_forward_ragged(a->att, a->probs, a->qkv, q->S, q->starts, C, NH, cfg->causal);
    else
        mcnn_attention_forward(a->att, a->probs, a->qkv, q->S, q->T, C, NH, cfg->causal);
    mcnn_linear_forward_packed(a->proj, a->att, p->proj_w, pk->proj, NULL, N, C, C);               /*  4 */
    bias_residual(a->h, x, a->proj, p->proj_b, N, C);                                              /*  5 */
    mcnn_layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->h, p->ln2_w, p->ln2_b, N, C, eps); /*  6 */
    mcnn_linear_forward_packed(a->fc1, a->ln2, p->fc1_w, pk->fc1, NULL, N, C, F);                  /*  7 */
    mcnn_bias_act_forward(a->act, a->fc1, p->fc1_b, N, F, cfg->act == BLOCK_QUICK_GELU);           /*  8 */
    mcnn_linear_forward_packed(a->fc2, a->act, p->fc2_w, pk->fc2, NULL, N, F, C);                  /*  9 */
    bias_residual(out, a->h, a->fc2, p->fc2_b, N, C);                                              /* 10 */
}

void mcnn_block_forward(float *out, block_acts *a, const float *x, const block_params *p,
                        const block_cfg *cfg, int B, int T)
{
    const block_seqs q = {B, T, NULL};
    block_forward(out, a, x, p, cfg, &q);
}

void mcnn_block_forward_ragged(float *out, block_acts *a, const float *x, const block_params *p,
                               const block_cfg *cfg, int S, const int *starts)
{
    const block_seqs q = {S, 0, starts};
    block_forward(out, a, x, p, cfg, &q);
}

/* The activation gradients of sequences q, and dx: everything in the backward that is per
 * sequence.  d's arrays accumulate, so this share of them starts at zero. */
static void backward_data(float *dx, block_acts *d, const float *dout, const float *x,
                          const block_acts *a, const block_params *p, const block_cfg *cfg,
                          const block_seqs *q)
{
    const int N = seqs_rows(q), C = cfg->C, NH = cfg->NH, F = cfg->F;
    float *acc[] = {d->ln1, d->qkv, d->att, d->proj, d->h, d->ln2, d->fc1, d->act, d->fc2};
    const size_t n[] = {C, 3 * (size_t)C, C, C, C, C, F, F, C};
    for (int i = 0; i < 9; i++) mcnn_zero_floats(acc[i], (size_t)N * n[i]);
    mcnn_add_backward(d->h, d->fc2, dout, (size_t)N * C);                                          /* 10 */
    mcnn_linear_backward(d->act, NULL, NULL, d->fc2, a->act, p->fc2_w, N, F, C);                   /*  9 */
    act_backward(cfg->act, d->fc1, d->act, a->fc1, (size_t)N * F);                                 /*  8 */
    mcnn_linear_backward(d->ln2, NULL, NULL, d->fc1, a->ln2, p->fc1_w, N, C, F);                   /*  7 */
    mcnn_layernorm_backward(d->h, NULL, NULL, d->ln2, a->h, p->ln2_w, a->ln2_mean, a->ln2_rstd,
                            N, C);                                                                 /*  6 */
    mcnn_add_backward(dx, d->proj, d->h, (size_t)N * C);                                           /*  5 */
    mcnn_linear_backward(d->att, NULL, NULL, d->proj, a->att, p->proj_w, N, C, C);                 /*  4 */
    if (q->starts)                                                                                 /*  3 */
        mcnn_attention_backward_ragged(d->qkv, d->att, a->qkv, a->probs, q->S, q->starts, C, NH,
                                       cfg->causal, d->probs);
    else
        mcnn_attention_backward(d->qkv, d->att, a->qkv, a->probs, q->S, q->T, C, NH, cfg->causal,
                                d->probs);
    mcnn_linear_backward(d->ln1, NULL, NULL, d->qkv, a->ln1, p->qkv_w, N, C, 3 * C);               /*  2 */
    mcnn_layernorm_backward(dx, NULL, NULL, d->ln1, x, p->ln1_w, a->ln1_mean, a->ln1_rstd, N, C);  /*  1 */
}

/* The parameter gradients: sums over every token of the batch, of what backward_data left in d
 * (the same calls as a one-pass backward would make, the input gradients left out). */
static void backward_params(const block_grads *g, const block_acts *d, const float *x,
                            const block_acts *a, const block_params *p, const block_cfg *cfg,
                            int N)
{
    const int C = cfg->C, F = cfg->F;
    mcnn_linear_backward(NULL, g->fc2_w, g->fc2_b, d->fc2, a->act, p->fc2_w, N, F, C);            /*  9 */
    mcnn_linear_backward(NULL, g->fc1_w, g->fc1_b, d->fc1, a->ln2, p->fc1_w, N, C, F);            /*  7 */
    mcnn_layernorm_backward(NULL, g->ln2_w, g->ln2_b, d->ln2, a->h, p->ln2_w, a->ln2_mean,
                            a->ln2_rstd, N, C);                                                    /*  6 */
    mcnn_linear_backward(NULL, g->proj_w, g->proj_b, d->proj, a->att, p->proj_w, N, C, C);        /*  4 */
    mcnn_linear_backward(NULL, g->qkv_w, g->qkv_b, d->qkv, a->ln1, p->qkv_w, N, C, 3 * C);        /*  2 */
    mcnn_layernorm_backward(NULL, g->ln1_w, g->ln1_b, d->ln1, x, p->ln1_w, a->ln1_mean,
                            a->ln1_rstd, N, C);                                                    /*  1 */
}

typedef struct backward_lane_ctx {
    float *dx;
    block_acts *d;
    const float *dout, *x;
    const block_acts *a;
    const block_params *p;
    const block_cfg *cfg;
    const block_seqs *q;
} backward_lane_ctx;

/* backward_data for sequences s0 .. s0+n-1 (one lane): their rows and probs, as a call of
 * their own. */
static void backward_lane(void *ctx, int lane, int s0, int n)
{
    const backward_lane_ctx *c = ctx;
    const block_seqs *q = c->q;
    const int NH = c->cfg->NH;
    size_t row = (size_t)s0 * q->T, pr = row * NH * q->T;
    block_seqs mine = {n, q->T, NULL};
    if (q->starts) {
        row = (size_t)(q->starts[s0] - q->starts[0]);
        pr = mcnn_attention_ragged_floats(s0, q->starts, NH);
        mine.starts = q->starts + s0;
    }
    const size_t off = row * c->cfg->C;
    block_acts dv = acts_from(c->d, c->cfg, row, pr);
    const block_acts av = acts_from(c->a, c->cfg, row, pr);
    (void)lane;
    backward_data(c->dx + off, &dv, c->dout + off, c->x + off, &av, c->p, c->cfg, &mine);
}

static void block_backward(float *dx, const block_grads *g, block_acts *d, const float *dout,
                           const float *x, const block_acts *a, const block_params *p,
                           const block_cfg *cfg, const block_seqs *q)
{
    /* With a sequence (image) per thread, each thread takes the per-sequence half of the
     * backward for its share of the batch with single-threaded ops (as the inference lanes
     * do), meeting the others once; then the parameter gradients, each one multithreaded GEMM
     * or sum over the whole batch.  Every element gets the same operations in the same order
     * as with one thread, so the bits do not depend on the thread count. */
    backward_lane_ctx ctx = {dx, d, dout, x, a, p, cfg, q};
    mcnn_lanes_run(mcnn_batch_lanes(q->S), q->S, backward_lane, &ctx);
    backward_params(g, d, x, a, p, cfg, seqs_rows(q));
}

void mcnn_block_backward(float *dx, const block_grads *g, block_acts *d, const float *dout,
                         const float *x, const block_acts *a, const block_params *p,
                         const block_cfg *cfg, int B, int T)
{
    const block_seqs q = {B, T, NULL};
    block_backward(dx, g, d, dout, x, a, p, cfg, &q);
}

void mcnn_block_backward_ragged(float *dx, const block_grads *g, block_acts *d,
                                const float *dout, const float *x, const block_acts *a,
                                const block_params *p, const block_cfg *cfg, int S,
                                const int *starts)
{
    const block_seqs q = {S, 0, starts};
    block_backward(dx, g, d, dout, x, a, p, cfg, &q);
}
