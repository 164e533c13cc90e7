/* CLIP's text tower, forward 1..7 and backward 7..1.
 *   tokens (N, context) from clip.tokenize: start, BPE ids, end (49407, the highest id), zeros
 *   1 pooling positions: eot[n] = the first position of the row's highest id;
 *     T = max(eot) + 1.  Under the causal mask nothing after a row's end token reaches its
 *     pooled feature, so positions T.. are never computed.
 *   2 token embedding   -> x0 (N, T, w)   (after set_precision bf16 / int8, inference looks
 *                                          its compressed rows up: embedding_lowp.h)
 *   3 + positions       -> x (N, T, w)
 *   4 L causal blocks   -> out[L-1] (N, T, w)
 *   5 the end-token rows -> pooled (N, w)
 *   6 ln_final          -> fin (N, w)        (CLIP normalises every row and keeps these)
 *   7 @ text_projection -> features (N, E) */
#include "internal.h"
#include "core/profile.h"
#include "clip_internal.h"

#include <string.h>

static void carve(clip_text_acts *a, mcnn_carver *c, const mcnn_clip *m, int N, int T, int train)
{
    const size_t w = m->cfg.text_width;
    a->x0 = mcnn_carve(c, (size_t)N * T * w);
    a->x = mcnn_carve(c, (size_t)N * T * w);
    mcnn_stack_acts_carve(&a->stack, c, &m->tstack, N, T, train);
    mcnn_token_pool_carve(&a->pool, c, N, (int)w, train);
    a->N = N;
    a->T = T;
}

/* Steps 2..6 for texts n0 .. n0+n-1 (one lane; a->ids, a->eot and a->T already set): every
 * activation is (N, ...), text after text, so a share of the batch is the same arrays from
 * text n0 on. */
static void forward_texts(void *ctx, int lane, int n0, int n)
{
    (void)lane;
    const mcnn_lane_args *args = ctx;
    clip_text_acts *a = args->acts;
    const int T = a->T;
    const mcnn_clip *m = args->model;
    const clip_tensors *wt = &m->w;
    const int w = m->cfg.text_width;
    const size_t b = (size_t)n0, Tw = (size_t)T * w;
    float *x0 = a->x0 + b * Tw, *x = a->x + b * Tw;

    if (m->tok_lowp && !a->stack.train) /* inference in bf16 / int8; training reads fp32 */
        mcnn_embedding_lowp_forward(x0, a->ids + b * T, m->tok_lowp, n * T);           /* 2 */
    else
        mcnn_embedding_forward(x0, a->ids + b * T, wt->tok_emb, n * T, w);
    mcnn_add_positional_forward(x, x0, wt->tpos, n, T, w);                             /* 3 */
    const float *out = mcnn_stack_forward(&a->stack, wt->tblocks, m->tpacked, &m->tstack, x, n0, n,   /* 4 */
                                          T);
    mcnn_token_pool_forward(&a->pool, out, a->eot, wt->ln_final_w, wt->ln_final_b,  /* 5-6 */
                            m->tstack.block.eps, n0, n, T, w);
}

mcnn_status mcnn_clip_text_forward(const mcnn_clip *m, clip_acts *acts, float *features,
                                   const int32_t *tokens, int N, int train)
{
    if (N <= 0 || !features || !tokens)
        return mcnn_set_error(MCNN_ERR_ARG, "clip_encode_text: batch %d or a NULL buffer", N);
    const mcnn_clip_config *cfg = &m->cfg;
    const int ctx = cfg->context_length, w = cfg->text_width, E = cfg->embed_dim;
    for (size_t i = 0; i < (size_t)N * ctx; i++)
        if (tokens[i] < 0 || tokens[i] >= cfg->vocab_size)
            return mcnn_set_error(MCNN_ERR_ARG, "clip: text %zu has token id %d outside the "
                                  "vocabulary of %d", i / ctx, tokens[i], cfg->vocab_size);
    /* Plan for the worst case (every row as long as the context) once per batch size. */
    clip_text_acts *a = &acts->ta;
    clip_plan *plan = &acts->tplan;
    mcnn_carver count = {NULL, 0};
    carve(a, &count, m, N, ctx, train);
    MCNN_TRY(mcnn_clip_plan_reserve(plan, count.used, (size_t)N * (ctx + 1), N, train));
    a->ids = plan->ints;
    a->eot = plan->ints + (size_t)N * ctx;

    int T = 1;                                                                          /* 1 */
    for (int n = 0; n < N; n++) {
        const int32_t *row = tokens + (size_t)n * ctx;
        int best = 0;
        for (int t = 1; t < ctx; t++)
            if (row[t] > row[best]) best = t;
        a->eot[n] = best;
        if (best + 1 > T) T = best + 1;
    }
    for (int n = 0; n < N; n++)
        memcpy(a->ids + (size_t)n * T, tokens + (size_t)n * ctx, (size_t)T * sizeof(int32_t));
    mcnn_carver fill = {(float *)plan->arena.base, 0};
    carve(a, &fill, m, N, T, train);

    mcnn_prof_run_begin();
    /* With a text per thread, each thread takes its share of the texts through every block
     * with single-threaded ops, meeting the others once. */
    mcnn_lane_args lanes = {m, a, NULL};
    mcnn_lanes_run(mcnn_batch_lanes(N), N, forward_texts, &lanes);                    /* 2-6 */
    mcnn_clip_project_forward(features, a->pool.y, m->w.tproj, N, w, E);              /* 7 */
    mcnn_prof_run_end("clip text forward");
    return MCNN_OK;
}

void mcnn_clip_text_backward(mcnn_clip *m, const float *dfeatures)
{
    clip_text_acts *a = &m->acts.ta;
    const clip_tensors *wt = &m->w, *g = &m->g;
    const int N = a->N, T = a->T, w = m->cfg.text_width, E = m->cfg.embed_dim;
    mcnn_prof_run_begin();

    mcnn_clip_project_backward(a->pool.dy, g->tproj, dfeatures, a->pool.y, wt->tproj, N, w, E); /* 7 */
    float *dout = mcnn_stack_dout(&a->stack, &m->tstack, N, T);                         /* 6-5 */
    mcnn_token_pool_backward(dout, g->ln_final_w, g->ln_final_b, &a->pool, a->eot,
                             wt->ln_final_w, N, T, w);
    const float *dx = mcnn_stack_backward(&a->stack, g->tblocks, wt->tblocks, &m->tstack,  /* 4 */
                                          a->x, N, T);
    mcnn_add_positional_backward(NULL, g->tpos, dx, N, T, w);                              /* 3 */
    mcnn_embedding_backward(g->tok_emb, dx, a->ids, N * T, w);                             /* 2 */
    mcnn_prof_run_end("clip text backward");
}
