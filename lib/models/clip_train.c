/* CLIP's public encoders and its contrastive training step.
 *   forward:  img = vision(images), txt = text(tokens)        (N, E) each
 *             img_n, txt_n = img / ||img||, txt / ||txt||
 *             logits = exp(logit_scale) · img_n · txt_nᵀ      (N, N)
 *             loss = (CE(logits, arange) + CE(logitsᵀ, arange)) / 2
 *   backward: the same steps reversed, into every parameter's gradient. */
#include "internal.h"
#include "clip_internal.h"
#include "session_internal.h"

#include <string.h>

mcnn_status mcnn_clip_encode_image(mcnn_clip *m, float *features, const float *images, int B)
{
    return mcnn_clip_vision_forward(m, &m->acts, features, images, B, 0);
}

mcnn_status mcnn_clip_encode_text(mcnn_clip *m, float *features, const int32_t *tokens, int N)
{
    return mcnn_clip_text_forward(m, &m->acts, features, tokens, N, 0);
}

static void carve_head(clip_head_acts *h, mcnn_carver *c, int N, int E)
{
    const size_t NE = (size_t)N * E, NN = (size_t)N * N;
    h->img_feat = mcnn_carve(c, NE);
    h->txt_feat = mcnn_carve(c, NE);
    h->img_n = mcnn_carve(c, NE);
    h->txt_n = mcnn_carve(c, NE);
    h->img_norm = mcnn_carve(c, N);
    h->txt_norm = mcnn_carve(c, N);
    h->logits = mcnn_carve(c, NN);
    h->probs_i = mcnn_carve(c, NN);
    h->probs_t = mcnn_carve(c, NN);
    h->dimg_feat = mcnn_carve(c, NE);
    h->dtxt_feat = mcnn_carve(c, NE);
    h->dimg_n = mcnn_carve(c, NE);
    h->dtxt_n = mcnn_carve(c, NE);
    h->dlogits = mcnn_carve(c, NN);
}

mcnn_status mcnn_clip_train_forward(mcnn_clip *m, float *loss, float *logits_per_image,
                                    const float *images, const int32_t *tokens, int N)
{
    if (N <= 0 || !loss || !images || !tokens)
        return mcnn_set_error(MCNN_ERR_ARG, "clip_train_forward: batch %d or a NULL buffer", N);
    if (m->inference_only) return mcnn_inference_only_error("clip_train_forward");
    const int E = m->cfg.embed_dim;
    clip_head_acts *h = &m->ha;
    mcnn_carver count = {NULL, 0};
    carve_head(h, &count, N, E);
    MCNN_TRY(mcnn_clip_plan_reserve(&m->hplan, count.used, 0, N, 1));
    mcnn_carver fill = {(float *)m->hplan.arena.base, 0};
    carve_head(h, &fill, N, E);

    m->trained_N = 0;
    MCNN_TRY(mcnn_clip_vision_forward(m, &m->acts, h->img_feat, images, N, 1));
    MCNN_TRY(mcnn_clip_text_forward(m, &m->acts, h->txt_feat, tokens, N, 1));
    mcnn_l2_normalize_forward(h->img_n, h->img_norm, h->img_feat, N, E);
    mcnn_l2_normalize_forward(h->txt_n, h->txt_norm, h->txt_feat, N, E);
    mcnn_clip_logits_forward(h->logits, h->img_n, h->txt_n, m->w.logit_scale[0], N, N, E);
    *loss = mcnn_clip_loss_forward(h->probs_i, h->probs_t, h->logits, N);
    if (logits_per_image) memcpy(logits_per_image, h->logits, (size_t)N * N * sizeof(float));
    m->trained_N = N;
    return MCNN_OK;
}

mcnn_status mcnn_clip_train_backward(mcnn_clip *m, float dloss)
{
    const int N = m->trained_N, E = m->cfg.embed_dim;
    if (m->inference_only) return mcnn_inference_only_error("clip_train_backward");
    if (!N) return mcnn_set_error(MCNN_ERR_ARG, "clip_train_backward: no training forward pass");
    clip_head_acts *h = &m->ha;
    const size_t NE = (size_t)N * E;
    memset(h->dlogits, 0, (size_t)N * N * sizeof(float));
    memset(h->dimg_n, 0, NE * sizeof(float));
    memset(h->dtxt_n, 0, NE * sizeof(float));
    memset(h->dimg_feat, 0, NE * sizeof(float));
    memset(h->dtxt_feat, 0, NE * sizeof(float));
    mcnn_clip_loss_backward(h->dlogits, h->probs_i, h->probs_t, N, dloss);
    mcnn_clip_logits_backward(h->dimg_n, h->dtxt_n, m->g.logit_scale, h->dlogits, h->logits,
                              h->img_n, h->txt_n, m->w.logit_scale[0], N, N, E);
    mcnn_l2_normalize_backward(h->dimg_feat, h->dimg_n, h->img_n, h->img_norm, N, E);
    mcnn_l2_normalize_backward(h->dtxt_feat, h->dtxt_n, h->txt_n, h->txt_norm, N, E);
    mcnn_clip_text_backward(m, h->dtxt_feat);
    mcnn_clip_vision_backward(m, h->dimg_feat);
    return MCNN_OK;
}

const float *mcnn_clip_acts_intermediate(const mcnn_clip *m, const clip_acts *a,
                                         const char *name, int *T)
{
    const float *p = NULL;
    int t = 0;
    if (strcmp(name, "visual.ln_pre") == 0) p = a->va.pre, t = m->vT;
    else if (strcmp(name, "visual.block0") == 0)
        p = mcnn_stack_output(&a->va.stack, &m->vstack, 0), t = m->vT;
    else if (strcmp(name, "visual.ln_post") == 0) p = a->va.pool.y;
    else if (strcmp(name, "text.embed") == 0) p = a->ta.x, t = a->ta.T;
    else if (strcmp(name, "text.block0") == 0)
        p = mcnn_stack_output(&a->ta.stack, &m->tstack, 0), t = a->ta.T;
    else if (strcmp(name, "text.ln_final") == 0) p = a->ta.pool.y;
    if (T) *T = p ? t : 0;
    return p;
}

const float *mcnn_clip_intermediate(const mcnn_clip *m, const char *name, int *T)
{
    return mcnn_clip_acts_intermediate(m, &m->acts, name, T);
}

/* ---- sessions ------------------------------------------------------------------------------ */
static mcnn_status init_acts(void *a, const void *m)
{
    return mcnn_clip_acts_init(a, m);
}

static void release_acts(void *a)
{
    mcnn_clip_acts_free(a);
}

mcnn_status mcnn_clip_session_create(mcnn_session **out, const mcnn_clip *m)
{
    return mcnn_session_create(out, SESSION_CLIP, m, sizeof(clip_acts), init_acts, release_acts);
}

mcnn_status mcnn_clip_session_encode_image(mcnn_session *s, float *features, const float *images,
                                           int B)
{
    MCNN_TRY(mcnn_session_check(s, SESSION_CLIP, "clip_session_encode_image"));
    return mcnn_clip_vision_forward(s->model, s->acts, features, images, B, 0);
}

mcnn_status mcnn_clip_session_encode_text(mcnn_session *s, float *features, const int32_t *tokens,
                                          int N)
{
    MCNN_TRY(mcnn_session_check(s, SESSION_CLIP, "clip_session_encode_text"));
    return mcnn_clip_text_forward(s->model, s->acts, features, tokens, N, 0);
}

const float *mcnn_clip_session_intermediate(const mcnn_session *s, const char *name, int *T)
{
    if (T) *T = 0;
    if (!s || s->kind != SESSION_CLIP || !name) return NULL;
    return mcnn_clip_acts_intermediate(s->model, s->acts, name, T);
}
