/* CLIP's image tower, forward 1..8 and backward 8..1.
 *   images (B, 3, R, R), normalised with CLIP's mean and std
 *   1 patchify          -> patches (B, P, 3·PS·PS)
 *   2 linear, no bias   -> tok (B, P, W)           conv1 as a matrix product
 *   3 class embedding   -> x0 (B, T, W)            T = 1 + P
 *   4 + positions       -> x (B, T, W)
 *   5 ln_pre            -> pre (B, T, W)
 *   6 L blocks          -> out[L-1] (B, T, W)      QuickGELU, eps 1e-5
 *   7 ln_post on the class token -> post (B, W)
 *   8 @ proj            -> features (B, E) */
#include "internal.h"
#include "core/profile.h"
#include "clip_internal.h"

#include <string.h>

static void carve(clip_vision_acts *a, mcnn_carver *c, const mcnn_clip *m, int B, int train)
{
    const mcnn_clip_config *cfg = &m->cfg;
    const size_t W = cfg->vision_width, P = m->vP, T = m->vT;
    const size_t PD = 3 * (size_t)cfg->patch_size * cfg->patch_size;
    const int nblocks = train ? cfg->vision_layers : 1, nout = train ? cfg->vision_layers : 2;
    a->patches = mcnn_carve(c, B * P * PD);
    a->tok = mcnn_carve(c, B * P * W);
    a->x0 = mcnn_carve(c, B * T * W);
    a->x = mcnn_carve(c, B * T * W);
    a->pre = mcnn_carve(c, B * T * W);
    a->pre_mean = mcnn_carve(c, B * T);
    a->pre_rstd = mcnn_carve(c, B * T);
    for (int l = 0; l < nblocks; l++) mcnn_block_acts_carve(&a->blocks[l], c, &m->vblock, B, (int)T);
    for (int l = 0; l < nout; l++) a->out[l] = mcnn_carve(c, B * T * W);
    a->cls = mcnn_carve(c, B * W);
    a->post = mcnn_carve(c, B * W);
    a->post_mean = mcnn_carve(c, B);
    a->post_rstd = mcnn_carve(c, B);
    if (train) {
        mcnn_block_acts_carve(&a->dblock, c, &m->vblock, B, (int)T);
        a->dx_a = mcnn_carve(c, B * T * W);
        a->dx_b = mcnn_carve(c, B * T * W);
        a->dpre = mcnn_carve(c, B * T * W);
        a->dx = mcnn_carve(c, B * T * W);
        a->dpost = mcnn_carve(c, B * W);
        a->dcls = mcnn_carve(c, B * W);
        a->dtok = mcnn_carve(c, B * P * W);
    }
    a->B = B;
}

/* Steps 1..7 for images b0 .. b0+n-1 of the batch: every activation is (B, ...), image after
 * image, so a share of the batch is the same arrays from image b0 on. */
static void forward_images(mcnn_clip *m, const float *images, int b0, int n, int train)
{
    clip_vision_acts *a = &m->va;
    const mcnn_clip_config *cfg = &m->cfg;
    const clip_tensors *w = &m->w;
    const int W = cfg->vision_width, P = m->vP, T = m->vT;
    const int PS = cfg->patch_size, R = cfg->image_size, PD = 3 * PS * PS;
    const size_t b = (size_t)b0, TW = (size_t)T * W;
    float *patches = a->patches + b * P * PD, *tok = a->tok + b * P * W;
    float *x0 = a->x0 + b * TW, *x = a->x + b * TW, *pre = a->pre + b * TW;
    float *cls = a->cls + b * W;

    mcnn_patchify_forward(patches, images + b * 3 * R * R, n, 3, R, R, PS);        /* 1 */
    mcnn_linear_forward(tok, patches, w->conv1, NULL, n * P, PD, W);               /* 2 */
    mcnn_class_token_forward(x0, tok, w->class_emb, n, P, W);                      /* 3 */
    mcnn_add_positional_forward(x, x0, w->vpos, n, T, W);                          /* 4 */
    mcnn_layernorm_forward(pre, a->pre_mean + b * T, a->pre_rstd + b * T, x,       /* 5 */
                           w->ln_pre_w, w->ln_pre_b, n * T, W, 1e-5f);
    const float *in = pre;
    for (int l = 0; l < cfg->vision_layers; l++) {                                 /* 6 */
        block_params p = mcnn_block_params_view(&w->vblocks[l]);
        block_acts acts = mcnn_block_acts_images(&a->blocks[train ? l : 0], &m->vblock, T, b0);
        float *out = (train ? a->out[l] : a->out[l % 2]) + b * TW;
        mcnn_block_forward(out, &acts, in, &p, &m->vblock, n, T);
        in = out;
    }
    for (int i = 0; i < n; i++)                                                    /* 7 */
        memcpy(cls + (size_t)i * W, in + (size_t)i * TW, (size_t)W * sizeof(float));
    mcnn_layernorm_forward(a->post + b * W, a->post_mean + b, a->post_rstd + b, cls,
                           w->ln_post_w, w->ln_post_b, n, W, 1e-5f);
}

mcnn_status mcnn_clip_vision_forward(mcnn_clip *m, float *features, const float *images, int B,
                                     int train)
{
    clip_vision_acts *a = &m->va;
    mcnn_carver count = {NULL, 0};
    carve(a, &count, m, B, train);
    MCNN_TRY(mcnn_clip_plan_reserve(&m->vplan, count.used, 0, B, train));
    mcnn_carver fill = {(float *)m->vplan.arena.base, 0};
    carve(a, &fill, m, B, train);

    const int lanes = mcnn_batch_lanes(B);
    mcnn_prof_run_begin();
    if (lanes == 1) {
        forward_images(m, images, 0, B, train);                                    /* 1-7 */
    } else {
        /* With an image per thread, each thread takes its share of the batch
         * through every block with single-threaded ops, meeting the others once (as in
         * vit_run.c); the result does not depend on the thread count. */
        #pragma omp parallel for num_threads(lanes) schedule(static)
        for (int t = 0; t < lanes; t++) {
            const int b0 = (int)((long)B * t / lanes), b1 = (int)((long)B * (t + 1) / lanes);
            forward_images(m, images, b0, b1 - b0, train);
        }
    }
    const int W = m->cfg.vision_width, E = m->cfg.embed_dim;
    mcnn_gemm(0, 0, B, E, W, 1.0f, a->post, W, m->w.vproj, E, 0.0f, features, E);   /* 8 */
    mcnn_prof_run_end("clip image forward");
    return MCNN_OK;
}

void mcnn_clip_vision_backward(mcnn_clip *m, const float *dfeatures)
{
    clip_vision_acts *a = &m->va;
    const mcnn_clip_config *cfg = &m->cfg;
    const clip_tensors *w = &m->w, *g = &m->g;
    const int B = a->B, W = cfg->vision_width, P = m->vP, T = m->vT, E = cfg->embed_dim;
    const int PD = 3 * cfg->patch_size * cfg->patch_size;
    const size_t BTW = (size_t)B * T * W;
    mcnn_prof_run_begin();

    /* 8: features = post @ proj, so dpost = dfeatures @ projᵀ and dproj += postᵀ @ dfeatures */
    mcnn_gemm(0, 1, B, W, E, 1.0f, dfeatures, E, w->vproj, E, 0.0f, a->dpost, W);
    mcnn_gemm(1, 0, W, E, B, 1.0f, a->post, W, dfeatures, E, 1.0f, g->vproj, E);
    memset(a->dcls, 0, (size_t)B * W * sizeof(float));                                 /* 7 */
    mcnn_layernorm_backward(a->dcls, g->ln_post_w, g->ln_post_b, a->dpost, a->cls, w->ln_post_w,
                            a->post_mean, a->post_rstd, B, W);
    float *dout = a->dx_a, *dx = a->dx_b;
    memset(dout, 0, BTW * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(dout + (size_t)b * T * W, a->dcls + (size_t)b * W, (size_t)W * sizeof(float));
    for (int l = cfg->vision_layers - 1; l >= 0; l--) {                                 /* 6 */
        const float *in = l ? a->out[l - 1] : a->pre;
        block_params p = mcnn_block_params_view(&w->vblocks[l]);
        memset(dx, 0, BTW * sizeof(float));
        mcnn_block_backward(dx, &g->vblocks[l], &a->dblock, dout, in, &a->blocks[l], &p,
                            &m->vblock, B, T);
        float *t = dout;
        dout = dx, dx = t;
    }
    memset(a->dx, 0, BTW * sizeof(float));                                             /* 5 */
    mcnn_layernorm_backward(a->dx, g->ln_pre_w, g->ln_pre_b, dout, a->x, w->ln_pre_w,
                            a->pre_mean, a->pre_rstd, B * T, W);
    mcnn_add_positional_backward(NULL, g->vpos, a->dx, B, T, W);                       /* 4 */
    memset(a->dtok, 0, (size_t)B * P * W * sizeof(float));                             /* 3 */
    mcnn_class_token_backward(a->dtok, g->class_emb, a->dx, B, P, W);
    mcnn_linear_backward(NULL, g->conv1, NULL, a->dtok, a->patches, w->conv1, B * P, PD, W); /* 2 */
    mcnn_prof_run_end("clip image backward");
}
