/* CLIP's image tower, forward 1..8 and backward 8..1.
 *   images (B, 3, R, R), normalised with CLIP's mean and std
 *   1 patchify          -> patches (B, P, 3·PS·PS)
 *   2 linear, no bias   -> tok (B, P, W)           conv1 as a matrix product
 *   3 class embedding   -> x0 (B, T, W)            T = 1 + P
 *   4 + positions       -> x (B, T, W)
 *   5 ln_pre            -> pre (B, T, W)
 *   6 L blocks          -> out[L-1] (B, T, W)      QuickGELU, eps cfg.ln_eps (m->vstack)
 *   7 ln_post on the class token -> post (B, W)
 *   8 @ proj            -> features (B, E) */
#include "internal.h"
#include "core/profile.h"
#include "clip_internal.h"

#include <string.h>

static void carve(clip_vision_acts *a, mcnn_carver *c, const mcnn_clip *m, int B, int train)
{
    const size_t W = m->cfg.vision_width, T = m->vT;
    mcnn_patch_embed_carve(&a->embed, c, &m->vembed, B, train);
    a->pre = mcnn_carve(c, B * T * W);
    a->pre_mean = mcnn_carve(c, B * T);
    a->pre_rstd = mcnn_carve(c, B * T);
    mcnn_stack_acts_carve(&a->stack, c, &m->vstack, B, (int)T, train);
    mcnn_token_pool_carve(&a->pool, c, B, (int)W, train);
    a->dx = train ? mcnn_carve(c, B * T * W) : NULL;
    a->B = B;
}

static patch_embed_params embed_view(const clip_tensors *t)
{
    return (patch_embed_params){t->conv1, NULL, t->class_emb, t->vpos};
}

/* Steps 1..7 for images b0 .. b0+n-1 of the batch (one lane): every activation is (B, ...),
 * image after image, so a share of the batch is the same arrays from image b0 on. */
static void forward_images(void *ctx, int lane, int b0, int n)
{
    const mcnn_lane_args *args = ctx;
    const mcnn_clip *m = args->model;
    const clip_tensors *w = &m->w;
    const patch_embed_params embed = embed_view(w);
    const float eps = m->vstack.block.eps;
    const int W = m->cfg.vision_width, T = m->vT;
    const size_t b = (size_t)b0, TW = (size_t)T * W;
    clip_vision_acts *a = args->acts;
    float *pre = a->pre + b * TW;
    (void)lane;

    mcnn_patch_embed_forward(&a->embed, &embed, &m->vembed, args->input, b0, n);   /* 1-4 */
    mcnn_layernorm_forward(pre, a->pre_mean + b * T, a->pre_rstd + b * T,          /* 5 */
                           a->embed.x + b * TW, w->ln_pre_w, w->ln_pre_b, n * T, W, eps);
    const float *out = mcnn_stack_forward(&a->stack, w->vblocks, m->vpacked, &m->vstack, pre, b0, n, /* 6 */
                                          T);
    mcnn_token_pool_forward(&a->pool, out, NULL, w->ln_post_w, w->ln_post_b, eps, b0, n, T, W); /* 7 */
}

mcnn_status mcnn_clip_vision_forward(const mcnn_clip *m, clip_acts *acts, float *features,
                                     const float *images, int B, int train)
{
    if (B <= 0 || !features || !images)
        return mcnn_set_error(MCNN_ERR_ARG, "clip_encode_image: batch %d or a NULL buffer", B);
    clip_vision_acts *a = &acts->va;
    mcnn_carver count = {NULL, 0};
    carve(a, &count, m, B, train);
    MCNN_TRY(mcnn_clip_plan_reserve(&acts->vplan, count.used, 0, B, train));
    mcnn_carver fill = {(float *)acts->vplan.arena.base, 0};
    carve(a, &fill, m, B, train);

    mcnn_prof_run_begin();
    /* With an image per thread, each thread takes its share of the batch through every block
     * with single-threaded ops, meeting the others once. */
    mcnn_lane_args ctx = {m, a, images};
    mcnn_lanes_run(mcnn_batch_lanes(B), B, forward_images, &ctx);                 /* 1-7 */
    mcnn_clip_project_forward(features, a->pool.y, m->w.vproj, B, m->cfg.vision_width,  /* 8 */
                              m->cfg.embed_dim);
    mcnn_prof_run_end("clip image forward");
    return MCNN_OK;
}

void mcnn_clip_vision_backward(mcnn_clip *m, const float *dfeatures)
{
    clip_vision_acts *a = &m->acts.va;
    const clip_tensors *w = &m->w, *g = &m->g;
    const int B = a->B, W = m->cfg.vision_width, T = m->vT, E = m->cfg.embed_dim;
    const size_t BTW = (size_t)B * T * W;
    mcnn_prof_run_begin();

    mcnn_clip_project_backward(a->pool.dy, g->vproj, dfeatures, a->pool.y, w->vproj, B, W, E); /* 8 */
    float *dout = mcnn_stack_dout(&a->stack, &m->vstack, B, T);                        /* 7 */
    mcnn_token_pool_backward(dout, g->ln_post_w, g->ln_post_b, &a->pool, NULL, w->ln_post_w, B,
                             T, W);
    const float *dpre = mcnn_stack_backward(&a->stack, g->vblocks, w->vblocks, &m->vstack,  /* 6 */
                                            a->pre, B, T);
    memset(a->dx, 0, BTW * sizeof(float));                                             /* 5 */
    mcnn_layernorm_backward(a->dx, g->ln_pre_w, g->ln_pre_b, dpre, a->embed.x, w->ln_pre_w,
                            a->pre_mean, a->pre_rstd, B * T, W);
    const patch_embed_params gembed = embed_view(g), wembed = embed_view(w);
    mcnn_patch_embed_backward(&gembed, &a->embed, a->dx, &wembed, &m->vembed, B);      /* 4-2 */
    mcnn_prof_run_end("clip image backward");
}
