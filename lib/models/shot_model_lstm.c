/* The LSTM shot model (MovieCLIP's): a stack of LSTM layers over the valid frames, batch
 * first, and Linear(hidden, classes) on the top layer's last valid hidden state, h_n.  The op
 * (lib/ops/lstm.c, docs/ops/lstm.md) stops each shot after its length, so padding never enters. */
#include "shot_model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const lstm_rows[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};

/* Layer l's tensor r (0..3 as lstm_rows), values or gradients. */
static float *lstm_tensor(const mcnn_shot_model *m, int l, int r, int grad)
{
    char name[64];
    snprintf(name, sizeof name, "lstm.%s_l%d", lstm_rows[r], l);
    return grad ? mcnn_params_grad(&m->params, name) : mcnn_params_data(&m->params, name);
}

static mcnn_status shot_lstm_add(mcnn_shot_model *m)
{
    const mcnn_shot_config *c = &m->cfg;
    const int L = c->layers, H = c->hidden;
    m->y = calloc((size_t)L, sizeof *m->y);
    m->gates = calloc((size_t)L, sizeof *m->gates);
    m->cells = calloc((size_t)L, sizeof *m->cells);
    if (!m->y || !m->gates || !m->cells)
        return mcnn_set_error(MCNN_ERR_NOMEM, "shot model: out of memory");
    char name[64];
    for (int l = 0; l < L; l++) {
        const int in = l ? H : c->D;
        snprintf(name, sizeof name, "lstm.weight_ih_l%d", l);
        MCNN_TRY(shot_add(m, name, 1, 2, 4 * (int64_t)H, in));
        snprintf(name, sizeof name, "lstm.weight_hh_l%d", l);
        MCNN_TRY(shot_add(m, name, 1, 2, 4 * (int64_t)H, H));
        snprintf(name, sizeof name, "lstm.bias_ih_l%d", l);
        MCNN_TRY(shot_add(m, name, 0, 1, 4 * (int64_t)H, 0));
        snprintf(name, sizeof name, "lstm.bias_hh_l%d", l);
        MCNN_TRY(shot_add(m, name, 0, 1, 4 * (int64_t)H, 0));
    }
    return shot_add_linear(m, "head", H, c->num_classes);
}

static void shot_lstm_init(mcnn_shot_model *m, mcnn_rng *r)
{
    /* torch.nn.LSTM: every tensor uniform(±1/sqrt(hidden)) */
    const float bound = 1.0f / sqrtf((float)m->cfg.hidden);
    char name[64];
    for (int l = 0; l < m->cfg.layers; l++)
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "lstm.%s_l%d", lstm_rows[k], l);
            shot_init_uniform(m, r, name, bound);
        }
    shot_init_linear(m, r, "head", m->cfg.hidden);
}

static mcnn_status shot_lstm_plan(mcnn_shot_model *m, mcnn_carver *c)
{
    const size_t B = m->max_batch, K = m->cfg.K, H = m->cfg.hidden;
    for (int l = 0; l < m->cfg.layers; l++) {
        m->y[l] = mcnn_carve(c, B * K * H);
        m->gates[l] = mcnn_carve(c, B * K * 4 * H);
        m->cells[l] = mcnn_carve(c, B * K * H);
    }
    m->h_top = mcnn_carve(c, B * H);
    m->dh_top = mcnn_carve(c, B * H);
    m->dy[0] = mcnn_carve(c, B * K * H);
    m->dy[1] = mcnn_carve(c, B * K * H);
    m->scratch = mcnn_carve(c, mcnn_lstm_backward_scratch((int)B, (int)K, (int)H));
    return MCNN_OK;
}

static void shot_lstm_forward(mcnn_shot_model *m, float *logits)
{
    const int B = m->B, K = m->cfg.K, H = m->cfg.hidden, L = m->cfg.layers;
    for (int l = 0; l < L; l++)
        mcnn_lstm_forward(m->y[l], l == L - 1 ? m->h_top : NULL, NULL, m->gates[l], m->cells[l],
                          l ? m->y[l - 1] : m->x, NULL, NULL, m->lengths, lstm_tensor(m, l, 0, 0),
                          lstm_tensor(m, l, 1, 0), lstm_tensor(m, l, 2, 0),
                          lstm_tensor(m, l, 3, 0), B, K, l ? H : m->cfg.D, H);
    mcnn_linear_forward(logits, m->h_top, mcnn_params_data(&m->params, "head.weight"),
                        mcnn_params_data(&m->params, "head.bias"), B, H, m->cfg.num_classes);
}

/* Backpropagation through time, top layer first: the head's gradient enters the top layer as
 * dh_n (its last valid state only); each layer hands the one below dy, the gradient of its
 * whole output sequence. */
static void shot_lstm_backward(mcnn_shot_model *m, const float *dlogits)
{
    const int B = m->B, K = m->cfg.K, H = m->cfg.hidden, L = m->cfg.layers;
    const size_t BKH = (size_t)B * K * H;
    memset(m->dh_top, 0, sizeof(float) * (size_t)B * H);
    mcnn_linear_backward(m->dh_top, mcnn_params_grad(&m->params, "head.weight"),
                         mcnn_params_grad(&m->params, "head.bias"), dlogits, m->h_top,
                         mcnn_params_data(&m->params, "head.weight"), B, H, m->cfg.num_classes);
    for (int l = L - 1; l >= 0; l--) {
        const float *dy = l == L - 1 ? NULL : m->dy[l & 1];
        float *dx = l ? m->dy[(l - 1) & 1] : NULL;
        if (dx) memset(dx, 0, sizeof(float) * BKH);
        mcnn_lstm_backward(dx, NULL, NULL, lstm_tensor(m, l, 0, 1), lstm_tensor(m, l, 1, 1),
                           lstm_tensor(m, l, 2, 1), lstm_tensor(m, l, 3, 1), m->scratch, dy,
                           l == L - 1 ? m->dh_top : NULL, NULL, l ? m->y[l - 1] : m->x, NULL,
                           NULL, m->lengths, m->y[l], m->gates[l], m->cells[l],
                           lstm_tensor(m, l, 0, 0), lstm_tensor(m, l, 1, 0), B, K,
                           l ? H : m->cfg.D, H);
    }
}

const shot_kind_ops shot_lstm_ops = {shot_lstm_add, shot_lstm_init, shot_lstm_plan,
                                     shot_lstm_forward, shot_lstm_backward};
