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
#include "session_internal.h"
#include "vit_internal.h"

#include <stdlib.h>
#include <string.h>

/* Carve every activation for (B, train); with a counting carver this only sizes them. */
static void carve_acts(vit_acts *a, mcnn_carver *c, const mcnn_vit *m, int B, int train)
{
    mcnn_patch_embed_carve(&a->embed, c, &m->embed, B, train);
    mcnn_stack_acts_carve(&a->stack, c, &m->stack, B, m->T, train);
    mcnn_token_pool_carve(&a->pool, c, B, m->cfg.width, train);
}

mcnn_status mcnn_vit_acts_init(vit_acts *a, const mcnn_vit *m)
{
    memset(a, 0, sizeof *a);
    return mcnn_stack_acts_init(&a->stack, &m->stack);
}

void mcnn_vit_acts_free(vit_acts *a)
{
    mcnn_arena_free(&a->arena);
    mcnn_stack_acts_free(&a->stack);
    memset(a, 0, sizeof *a);
}

/* Size the arena for (B, train) once; later calls with the same shape reuse it. */
static mcnn_status plan(const mcnn_vit *m, vit_acts *a, int B, int train)
{
    if (a->arena.base && a->B == B && a->train == train) return MCNN_OK;
    mcnn_arena_free(&a->arena);
    a->B = 0;
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

static patch_embed_params embed_view(const vit_tensors *t)
{
    return (patch_embed_params){t->patch_w, t->patch_b, t->cls, t->pos};
}

/* Steps 1..6 for images b0 .. b0+n-1 of the batch (one lane): every activation is (B, ...),
 * image after image, so a share of the batch is the same arrays from image b0 on. */
static void forward_images(void *ctx, int lane, int b0, int n)
{
    const mcnn_lane_args *args = ctx;
    const mcnn_vit *m = args->model;
    vit_acts *a = args->acts;
    const vit_tensors *w = &m->w;
    const int C = m->cfg.width, T = m->T;
    const size_t b = (size_t)b0, TC = (size_t)T * C;
    const patch_embed_params embed = embed_view(w);
    (void)lane;

    mcnn_patch_embed_forward(&a->embed, &embed, &m->embed, args->input, b0, n);    /* 1-4 */
    const float *out = mcnn_stack_forward(&a->stack, w->blocks, m->packed, &m->stack, /* 5 */
                                          a->embed.x + b * TC, b0, n, T);
    mcnn_token_pool_forward(&a->pool, out, NULL, w->lnf_w, w->lnf_b, m->cfg.ln_eps, b0, n, T, /* 6 */
                            C);
}

mcnn_status mcnn_vit_run_forward(const mcnn_vit *m, vit_acts *a, float *logits,
                                 const float *images, int B, int train)
{
    if (B <= 0 || !images || !logits)
        return mcnn_set_error(MCNN_ERR_ARG, "vit_forward: batch %d with %s", B,
                              images && logits ? "no images" : "a NULL buffer");
    MCNN_TRY(plan(m, a, B, train ? 1 : 0));
    const int C = m->cfg.width, K = m->cfg.num_classes;
    mcnn_prof_run_begin();
    /* With an image per thread, each thread takes its share of the batch through every block
     * with single-threaded ops (GEMM runs serially inside a parallel region), so the threads
     * meet once instead of at every op. */
    mcnn_lane_args ctx = {m, a, images};
    mcnn_lanes_run(mcnn_batch_lanes(B), B, forward_images, &ctx);                   /* 1-6 */
    mcnn_linear_forward(logits, a->pool.y, m->w.head_w, m->w.head_b, B, C, K);          /* 7 */
    mcnn_prof_run_end("vit forward");
    return MCNN_OK;
}

mcnn_status mcnn_vit_forward(mcnn_vit *m, float *logits, const float *images, int B, int train)
{
    if (train && m->inference_only) return mcnn_inference_only_error("vit_forward (train = 1)");
    return mcnn_vit_run_forward(m, &m->acts, logits, images, B, train);
}

mcnn_status mcnn_vit_backward(mcnn_vit *m, const float *dlogits)
{
    vit_acts *a = &m->acts;
    if (m->inference_only) return mcnn_inference_only_error("vit_backward");
    if (!a->train || !a->B)
        return mcnn_set_error(MCNN_ERR_ARG, "vit_backward: no forward pass with train = 1");
    const vit_tensors *w = &m->w, *g = &m->g;
    const int B = a->B, C = m->cfg.width, T = m->T, K = m->cfg.num_classes;
    mcnn_prof_run_begin();

    memset(a->pool.dy, 0, (size_t)B * C * sizeof(float));
    mcnn_linear_backward(a->pool.dy, g->head_w, g->head_b, dlogits, a->pool.y, w->head_w, B, C, /* 7 */
                         K);
    float *dout = mcnn_stack_dout(&a->stack, &m->stack, B, T);                                    /* 6 */
    mcnn_token_pool_backward(dout, g->lnf_w, g->lnf_b, &a->pool, NULL, w->lnf_w, B, T, C);
    const float *dx = mcnn_stack_backward(&a->stack, g->blocks, w->blocks, &m->stack, /* 5 */
                                          a->embed.x, B, T);
    const patch_embed_params gembed = embed_view(g), wembed = embed_view(w);
    mcnn_patch_embed_backward(&gembed, &a->embed, dx, &wembed, &m->embed, B);              /* 4-2 */
    mcnn_prof_run_end("vit backward");
    return MCNN_OK;                                            /* 1: no gradient for the images */
}

mcnn_status mcnn_vit_backward_head(mcnn_vit *m, const float *dlogits)
{
    /* logits = feat · Wᵀ + b, feat from the last forward */
    const vit_acts *a = &m->acts;
    if (m->inference_only) return mcnn_inference_only_error("vit_backward_head");
    if (!a->B) return mcnn_set_error(MCNN_ERR_ARG, "classifier_backward: no forward pass");
    mcnn_linear_backward(NULL, m->g.head_w, m->g.head_b, dlogits, a->pool.y, m->w.head_w, a->B,
                         m->cfg.width, m->cfg.num_classes);
    return MCNN_OK;
}

const float *mcnn_vit_features(const mcnn_vit *m)
{
    return m->acts.pool.y;
}

const float *mcnn_vit_block_output(const mcnn_vit *m, int l)
{
    return mcnn_stack_output(&m->acts.stack, &m->stack, l);
}

/* ---- sessions ------------------------------------------------------------------------------ */
static mcnn_status init_acts(void *a, const void *m)
{
    return mcnn_vit_acts_init(a, m);
}

static void release_acts(void *a)
{
    mcnn_vit_acts_free(a);
}

mcnn_status mcnn_vit_session_create(mcnn_session **out, const mcnn_vit *m)
{
    return mcnn_session_create(out, SESSION_VIT, m, sizeof(vit_acts), init_acts, release_acts);
}

mcnn_status mcnn_vit_session_forward(mcnn_session *s, float *logits, const float *images, int B)
{
    MCNN_TRY(mcnn_session_check(s, SESSION_VIT, "vit_session_forward"));
    return mcnn_vit_run_forward(s->model, s->acts, logits, images, B, 0);
}

const float *mcnn_vit_session_features(const mcnn_session *s)
{
    if (!s || s->kind != SESSION_VIT) return NULL;
    return ((const vit_acts *)s->acts)->pool.y;
}
