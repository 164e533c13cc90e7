/* CLIP's text tower, forward 1..7 and backward 7..1.
 *   tokens (N, context) from clip.tokenize: start, BPE ids, end (49407, the highest id), zeros
 *   1 pooling positions: eot[n] = the first position of the row's highest id;
 *     T = max(eot) + 1.  Under the causal mask nothing after a row's end token reaches its
 *     pooled feature, so positions T.. are never computed.
 *   2 token embedding   -> x0 (N, T, w)
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
    const mcnn_clip_config *cfg = &m->cfg;
    const size_t w = cfg->text_width;
    const int nblocks = train ? cfg->text_layers : 1, nout = train ? cfg->text_layers : 2;
    a->x0 = mcnn_carve(c, (size_t)N * T * w);
    a->x = mcnn_carve(c, (size_t)N * T * w);
    for (int l = 0; l < nblocks; l++) mcnn_block_acts_carve(&a->blocks[l], c, &m->tblock, N, T);
    for (int l = 0; l < nout; l++) a->out[l] = mcnn_carve(c, (size_t)N * T * w);
    a->pooled = mcnn_carve(c, N * w);
    a->fin = mcnn_carve(c, N * w);
    a->fin_mean = mcnn_carve(c, N);
    a->fin_rstd = mcnn_carve(c, N);
    if (train) {
        mcnn_block_acts_carve(&a->dblock, c, &m->tblock, N, T);
        a->dx_a = mcnn_carve(c, (size_t)N * T * w);
        a->dx_b = mcnn_carve(c, (size_t)N * T * w);
        a->dfin = mcnn_carve(c, N * w);
        a->dpooled = mcnn_carve(c, N * w);
    }
    a->N = N;
    a->T = T;
}

/* Steps 2..6 for texts n0 .. n0+n-1 (a->ids, a->eot and a->T already set): every activation
 * is (N, ...), text after text, so a share of the batch is the same arrays from text n0 on. */
static void forward_texts(mcnn_clip *m, int n0, int n, int train)
{
    clip_text_acts *a = &m->ta;
    const mcnn_clip_config *cfg = &m->cfg;
    const clip_tensors *wt = &m->w;
    const int w = cfg->text_width, T = a->T;
    const size_t b = (size_t)n0, Tw = (size_t)T * w;
    float *x0 = a->x0 + b * Tw, *x = a->x + b * Tw, *pooled = a->pooled + b * w;

    mcnn_embedding_forward(x0, a->ids + b * T, wt->tok_emb, n * T, w);                 /* 2 */
    mcnn_add_positional_forward(x, x0, wt->tpos, n, T, w);                             /* 3 */
    const float *in = x;
    for (int l = 0; l < cfg->text_layers; l++) {                                       /* 4 */
        block_params p = mcnn_block_params_view(&wt->tblocks[l]);
        block_acts acts = mcnn_block_acts_images(&a->blocks[train ? l : 0], &m->tblock, T, n0);
        float *out = (train ? a->out[l] : a->out[l % 2]) + b * Tw;
        mcnn_block_forward(out, &acts, in, &p, &m->tblock, n, T);
        in = out;
    }
    for (int i = 0; i < n; i++)                                                        /* 5 */
        memcpy(pooled + (size_t)i * w, in + ((size_t)i * T + a->eot[n0 + i]) * w,
               (size_t)w * sizeof(float));
    mcnn_layernorm_forward(a->fin + b * w, a->fin_mean + b, a->fin_rstd + b, pooled,   /* 6 */
                           wt->ln_final_w, wt->ln_final_b, n, w, 1e-5f);
}

mcnn_status mcnn_clip_text_forward(mcnn_clip *m, float *features, const int32_t *tokens, int N,
                                   int train)
{
    const mcnn_clip_config *cfg = &m->cfg;
    const int ctx = cfg->context_length, w = cfg->text_width, E = cfg->embed_dim;
    for (size_t i = 0; i < (size_t)N * ctx; i++)
        if (tokens[i] < 0 || tokens[i] >= cfg->vocab_size)
            return mcnn_set_error(MCNN_ERR_ARG, "clip: text %zu has token id %d outside the "
                                  "vocabulary of %d", i / ctx, tokens[i], cfg->vocab_size);
    /* Plan for the worst case (every row as long as the context) once per batch size. */
    clip_text_acts *a = &m->ta;
    mcnn_carver count = {NULL, 0};
    carve(a, &count, m, N, ctx, train);
    MCNN_TRY(mcnn_clip_plan_reserve(&m->tplan, count.used, (size_t)N * (ctx + 1), N, train));
    a->ids = m->tplan.ints;
    a->eot = m->tplan.ints + (size_t)N * ctx;

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
    mcnn_carver fill = {(float *)m->tplan.arena.base, 0};
    carve(a, &fill, m, N, T, train);

    const int lanes = mcnn_batch_lanes(N);
    mcnn_prof_run_begin();
    if (lanes == 1) {
        forward_texts(m, 0, N, train);                                                  /* 2-6 */
    } else {
        /* With a text per thread, each thread takes its share of the texts through
         * every block with single-threaded ops (as in vit_run.c); the result does not depend
         * on the thread count. */
        #pragma omp parallel for num_threads(lanes) schedule(static)
        for (int t = 0; t < lanes; t++) {
            const int n0 = (int)((long)N * t / lanes), n1 = (int)((long)N * (t + 1) / lanes);
            forward_texts(m, n0, n1 - n0, train);
        }
    }
    mcnn_gemm(0, 0, N, E, w, 1.0f, a->fin, w, m->w.tproj, E, 0.0f, features, E);       /* 7 */
    mcnn_prof_run_end("clip text forward");
    return MCNN_OK;
}

void mcnn_clip_text_backward(mcnn_clip *m, const float *dfeatures)
{
    clip_text_acts *a = &m->ta;
    const mcnn_clip_config *cfg = &m->cfg;
    const clip_tensors *wt = &m->w, *g = &m->g;
    const int N = a->N, T = a->T, w = cfg->text_width, E = cfg->embed_dim;
    const size_t NTw = (size_t)N * T * w;
    mcnn_prof_run_begin();

    mcnn_gemm(0, 1, N, w, E, 1.0f, dfeatures, E, wt->tproj, E, 0.0f, a->dfin, w);         /* 7 */
    mcnn_gemm(1, 0, w, E, N, 1.0f, a->fin, w, dfeatures, E, 1.0f, g->tproj, E);
    memset(a->dpooled, 0, (size_t)N * w * sizeof(float));                                /* 6 */
    mcnn_layernorm_backward(a->dpooled, g->ln_final_w, g->ln_final_b, a->dfin, a->pooled,
                            wt->ln_final_w, a->fin_mean, a->fin_rstd, N, w);
    float *dout = a->dx_a, *dx = a->dx_b;                                                 /* 5 */
    memset(dout, 0, NTw * sizeof(float));
    for (int n = 0; n < N; n++)
        memcpy(dout + ((size_t)n * T + a->eot[n]) * w, a->dpooled + (size_t)n * w,
               (size_t)w * sizeof(float));
    for (int l = cfg->text_layers - 1; l >= 0; l--) {                                     /* 4 */
        const float *in = l ? a->out[l - 1] : a->x;
        block_params p = mcnn_block_params_view(&wt->tblocks[l]);
        memset(dx, 0, NTw * sizeof(float));
        mcnn_block_backward(dx, &g->tblocks[l], &a->dblock, dout, in, &a->blocks[l], &p,
                            &m->tblock, N, T);
        float *t = dout;
        dout = dx, dx = t;
    }
    mcnn_add_positional_backward(NULL, g->tpos, dout, N, T, w);                           /* 3 */
    mcnn_embedding_backward(g->tok_emb, dout, a->ids, N * T, w);                          /* 2 */
    mcnn_prof_run_end("clip text backward");
}
