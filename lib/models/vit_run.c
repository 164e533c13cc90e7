/* ViT forward and backward.  The forward numbers its steps 1..7, the backward undoes them 7..1.
 *   images (B, IC, H, W)
 *   1 patchify        -> patches (B, P, IC·PS·PS)       P = (H / PS)²
 *   2 linear          -> tok (B, P, C)                  the patch conv as a matrix product
 *   3 class token     -> x0 (B, T, C)                   T = 1 + P
 *   4 + positions     -> x (B, T, C)
 *   5 L blocks        -> out[L-1] (B, T, C)
 *   6 layer norm of the class token -> feat (B, C)      (torchvision normalises every token and
 *                                                        keeps token 0: the same numbers)
 *   7 head            -> logits (B, K) */
#include "internal.h"
#include "core/profile.h"
#include "vit_internal.h"

#include <stdlib.h>
#include <string.h>

/* Carve every activation for (B, train); with a counting carver this only sizes them. */
static void carve_acts(vit_acts *a, mcnn_carver *c, const mcnn_vit *m, int B, int train)
{
    const mcnn_vit_config *cfg = &m->cfg;
    const size_t C = cfg->width, P = m->P, T = m->T;
    const size_t PD = (size_t)cfg->in_channels * cfg->patch_size * cfg->patch_size;
    const int nblocks = train ? cfg->layers : 1, nout = train ? cfg->layers : 2;
    a->patches = mcnn_carve(c, B * P * PD);
    a->tok = mcnn_carve(c, B * P * C);
    a->x0 = mcnn_carve(c, B * T * C);
    a->x = mcnn_carve(c, B * T * C);
    for (int l = 0; l < nblocks; l++) mcnn_block_acts_carve(&a->blocks[l], c, &m->block, B, (int)T);
    for (int l = 0; l < nout; l++) a->out[l] = mcnn_carve(c, B * T * C);
    a->cls = mcnn_carve(c, B * C);
    a->feat = mcnn_carve(c, B * C);
    a->feat_mean = mcnn_carve(c, B);
    a->feat_rstd = mcnn_carve(c, B);
    if (train) {
        mcnn_block_acts_carve(&a->dblock, c, &m->block, B, (int)T);
        a->dx_a = mcnn_carve(c, B * T * C);
        a->dx_b = mcnn_carve(c, B * T * C);
        a->dfeat = mcnn_carve(c, B * C);
        a->dcls = mcnn_carve(c, B * C);
        a->dtok = mcnn_carve(c, B * P * C);
    }
}

/* Size the arena for (B, train) once; later calls with the same shape reuse it. */
static mcnn_status plan(mcnn_vit *m, int B, int train)
{
    vit_acts *a = &m->acts;
    if (a->arena.base && a->B == B && a->train == train) return MCNN_OK;
    mcnn_arena_free(&a->arena);
    free(a->blocks);
    free(a->out);
    memset(a, 0, sizeof *a);
    const int L = m->cfg.layers;
    a->blocks = calloc((size_t)(train ? L : 1), sizeof *a->blocks);
    a->out = calloc((size_t)(train ? L : 2), sizeof *a->out);
    if (!a->blocks || !a->out) return mcnn_set_error(MCNN_ERR_NOMEM, "vit: out of memory");
    mcnn_carver count = {NULL, 0};
    carve_acts(a, &count, m, B, train);
    if (mcnn_arena_init(&a->arena, count.used * sizeof(float)) != MCNN_OK)
        return mcnn_set_error(MCNN_ERR_NOMEM, "vit: cannot allocate %.1f MB of activations for "
                              "batch %d", count.used * 4.0 / 1e6, B);
    mcnn_carver fill = {(float *)a->arena.base, 0};
    carve_acts(a, &fill, m, B, train);
    a->B = B;
    a->train = train;
    return MCNN_OK;
}

/* Steps 1..6 for images b0 .. b0+n-1 of the batch: every activation is (B, ...), image after
 * image, so a share of the batch is the same arrays from image b0 on. */
static void forward_images(mcnn_vit *m, const float *images, int b0, int n)
{
    const mcnn_vit_config *cfg = &m->cfg;
    vit_acts *a = &m->acts;
    const vit_tensors *w = &m->w;
    const int C = cfg->width, P = m->P, T = m->T, PS = cfg->patch_size;
    const int IC = cfg->in_channels, H = cfg->image_size, PD = IC * PS * PS;
    const size_t b = (size_t)b0, TC = (size_t)T * C;
    float *patches = a->patches + b * P * PD, *tok = a->tok + b * P * C;
    float *x0 = a->x0 + b * TC, *x = a->x + b * TC, *cls = a->cls + b * C;

    mcnn_patchify_forward(patches, images + b * IC * H * H, n, IC, H, H, PS);         /* 1 */
    mcnn_linear_forward(tok, patches, w->patch_w, w->patch_b, n * P, PD, C);          /* 2 */
    mcnn_class_token_forward(x0, tok, w->cls, n, P, C);                               /* 3 */
    mcnn_add_positional_forward(x, x0, w->pos, n, T, C);                              /* 4 */
    const float *in = x;
    for (int l = 0; l < cfg->layers; l++) {                                           /* 5 */
        block_acts acts = mcnn_block_acts_images(&a->blocks[a->train ? l : 0], &m->block, T, b0);
        float *out = (a->train ? a->out[l] : a->out[l % 2]) + b * TC;
        block_params p = mcnn_block_params_view(&w->blocks[l]);
        mcnn_block_forward(out, &acts, in, &p, &m->block, n, T);
        in = out;
    }
    for (int i = 0; i < n; i++)                                                       /* 6 */
        memcpy(cls + (size_t)i * C, in + (size_t)i * TC, (size_t)C * sizeof(float));
    mcnn_layernorm_forward(a->feat + b * C, a->feat_mean + b, a->feat_rstd + b, cls, w->lnf_w,
                           w->lnf_b, n, C, cfg->ln_eps);
}

mcnn_status mcnn_vit_forward(mcnn_vit *m, float *logits, const float *images, int B, int train)
{
    if (B <= 0 || !images || !logits)
        return mcnn_set_error(MCNN_ERR_ARG, "vit_forward: batch %d with %s", B,
                              images && logits ? "no images" : "a NULL buffer");
    MCNN_TRY(plan(m, B, train ? 1 : 0));
    const vit_acts *a = &m->acts;
    const int C = m->cfg.width, K = m->cfg.num_classes, lanes = mcnn_batch_lanes(B);
    mcnn_prof_run_begin();
    if (lanes == 1) {
        forward_images(m, images, 0, B);                                            /* 1-6 */
    } else {
        /* With an image per thread, each thread takes its share of the batch
         * through every block with single-threaded ops (GEMM runs serially inside a parallel
         * region), so the threads meet once instead of at every op.  Each image is computed
         * exactly as in the whole batch, so the result does not depend on the thread count. */
        #pragma omp parallel for num_threads(lanes) schedule(static)
        for (int t = 0; t < lanes; t++) {
            const int b0 = (int)((long)B * t / lanes), b1 = (int)((long)B * (t + 1) / lanes);
            forward_images(m, images, b0, b1 - b0);
        }
    }
    mcnn_linear_forward(logits, a->feat, m->w.head_w, m->w.head_b, B, C, K);          /* 7 */
    mcnn_prof_run_end("vit forward");
    return MCNN_OK;
}

mcnn_status mcnn_vit_backward(mcnn_vit *m, const float *dlogits)
{
    vit_acts *a = &m->acts;
    if (!a->train || !a->B)
        return mcnn_set_error(MCNN_ERR_ARG, "vit_backward: no forward pass with train = 1");
    const mcnn_vit_config *cfg = &m->cfg;
    const vit_tensors *w = &m->w, *g = &m->g;
    const int B = a->B, C = cfg->width, P = m->P, T = m->T, K = cfg->num_classes;
    const int PD = cfg->in_channels * cfg->patch_size * cfg->patch_size, L = cfg->layers;
    const size_t BTC = (size_t)B * T * C;
    mcnn_prof_run_begin();

    memset(a->dfeat, 0, (size_t)B * C * sizeof(float));
    memset(a->dcls, 0, (size_t)B * C * sizeof(float));
    mcnn_linear_backward(a->dfeat, g->head_w, g->head_b, dlogits, a->feat, w->head_w, B, C, K); /* 7 */
    mcnn_layernorm_backward(a->dcls, g->lnf_w, g->lnf_b, a->dfeat, a->cls, w->lnf_w,             /* 6 */
                            a->feat_mean, a->feat_rstd, B, C);
    float *dout = a->dx_a, *dx = a->dx_b;
    memset(dout, 0, BTC * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(dout + (size_t)b * T * C, a->dcls + (size_t)b * C, (size_t)C * sizeof(float));
    for (int l = L - 1; l >= 0; l--) {                                                            /* 5 */
        const float *in = l ? a->out[l - 1] : a->x;
        block_params p = mcnn_block_params_view(&w->blocks[l]);
        memset(dx, 0, BTC * sizeof(float));
        mcnn_block_backward(dx, &g->blocks[l], &a->dblock, dout, in, &a->blocks[l], &p, &m->block,
                            B, T);
        float *t = dout;
        dout = dx, dx = t;
    }
    mcnn_add_positional_backward(NULL, g->pos, dout, B, T, C);                                    /* 4 */
    memset(a->dtok, 0, (size_t)B * P * C * sizeof(float));                         /* dx0 is dout */
    mcnn_class_token_backward(a->dtok, g->cls, dout, B, P, C);                                    /* 3 */
    mcnn_linear_backward(NULL, g->patch_w, g->patch_b, a->dtok, a->patches, w->patch_w, B * P, PD, /* 2 */
                         C);
    mcnn_prof_run_end("vit backward");
    return MCNN_OK;                                            /* 1: no gradient for the images */
}

const float *mcnn_vit_features(const mcnn_vit *m)
{
    return m->acts.feat;
}

const float *mcnn_vit_block_output(const mcnn_vit *m, int l)
{
    if (!m->acts.train || l < 0 || l >= m->cfg.layers) return NULL;
    return m->acts.out[l];
}
