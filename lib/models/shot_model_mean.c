/* The mean-pool probe: the average of a shot's valid frames, then Linear-ReLU-Linear (hidden > 0)
 * or one Linear (hidden = 0).  It sees which classes are present but not their order. */
#include "shot_model_internal.h"

#include <string.h>

static mcnn_status shot_mean_add(mcnn_shot_model *m)
{
    const mcnn_shot_config *c = &m->cfg;
    if (c->hidden == 0) return shot_add_linear(m, "head", c->D, c->num_classes);
    MCNN_TRY(shot_add_linear(m, "fc1", c->D, c->hidden));
    return shot_add_linear(m, "head", c->hidden, c->num_classes);
}

static void shot_mean_init(mcnn_shot_model *m, mcnn_rng *r)
{
    const mcnn_shot_config *c = &m->cfg;
    if (c->hidden) shot_init_linear(m, r, "fc1", c->D);
    shot_init_linear(m, r, "head", c->hidden ? c->hidden : c->D);
}

static mcnn_status shot_mean_plan(mcnn_shot_model *m, mcnn_carver *c)
{
    const size_t B = m->max_batch;
    m->pooled = mcnn_carve(c, B * m->cfg.D);
    m->hid = mcnn_carve(c, B * (m->cfg.hidden + 1));
    m->dhid = mcnn_carve(c, 2 * B * (m->cfg.hidden + 1)); /* after, before the ReLU */
    return MCNN_OK;
}

static void shot_mean_forward(mcnn_shot_model *m, float *logits)
{
    const int B = m->B, K = m->cfg.K, D = m->cfg.D, H = m->cfg.hidden, NC = m->cfg.num_classes;
    for (int b = 0; b < B; b++) {
        float *p = m->pooled + (size_t)b * D;
        memset(p, 0, sizeof(float) * D);
        for (int k = 0; k < m->lengths[b]; k++) {
            const float *f = m->x + ((size_t)b * K + k) * D;
            for (int d = 0; d < D; d++) p[d] += f[d];
        }
        const float inv = 1.0f / (float)m->lengths[b];
        for (int d = 0; d < D; d++) p[d] *= inv;
    }
    const mcnn_params *P = &m->params;
    if (H == 0) {
        mcnn_linear_forward(logits, m->pooled, mcnn_params_data(P, "head.weight"),
                            mcnn_params_data(P, "head.bias"), B, D, NC);
        return;
    }
    mcnn_linear_forward(m->hid, m->pooled, mcnn_params_data(P, "fc1.weight"),
                        mcnn_params_data(P, "fc1.bias"), B, D, H);
    mcnn_relu_forward(m->hid, m->hid, (size_t)B * H); /* in place: relu's backward reads y */
    mcnn_linear_forward(logits, m->hid, mcnn_params_data(P, "head.weight"),
                        mcnn_params_data(P, "head.bias"), B, H, NC);
}

static void shot_mean_backward(mcnn_shot_model *m, const float *dlogits)
{
    const int B = m->B, D = m->cfg.D, H = m->cfg.hidden, NC = m->cfg.num_classes;
    const mcnn_params *P = &m->params;
    float *gw = mcnn_params_grad(P, "head.weight"), *gb = mcnn_params_grad(P, "head.bias");
    if (H == 0) {
        mcnn_linear_backward(NULL, gw, gb, dlogits, m->pooled, NULL, B, D, NC);
        return;
    }
    float *dact = m->dhid, *dpre = m->dhid + (size_t)B * H; /* the backward accumulates */
    memset(m->dhid, 0, sizeof(float) * 2 * (size_t)B * H);
    mcnn_linear_backward(dact, gw, gb, dlogits, m->hid, mcnn_params_data(P, "head.weight"), B,
                         H, NC);
    mcnn_relu_backward(dpre, dact, m->hid, (size_t)B * H);
    mcnn_linear_backward(NULL, mcnn_params_grad(P, "fc1.weight"), mcnn_params_grad(P, "fc1.bias"),
                         dpre, m->pooled, NULL, B, D, H);
}

const shot_kind_ops shot_mean_ops = {shot_mean_add, shot_mean_init, shot_mean_plan,
                                     shot_mean_forward, shot_mean_backward};
