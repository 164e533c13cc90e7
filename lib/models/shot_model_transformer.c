/* The temporal transformer shot model: Linear(D, C) per valid frame, a class token in front,
 * learned positions, pre-LN blocks (lib/nn/transformer_block.h), a final LayerNorm and the head
 * on the class token.  This file is the shot models' only user of the block API.
 *
 * The key padding mask by construction: the batch runs through each block at once as ragged
 * sequences (lib/nn/transformer_block.h), shot b the 1 + length rows from starts[b], packed
 * without padding, so a padded frame is never a key (it is not there at all).  That gives the
 * class token exactly what a batched run with a key padding mask gives it, and every GEMM has
 * all the batch's tokens as rows. */
#include "shot_model_internal.h"
#include "nn/transformer_block.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TF_EPS 1e-5f

static const char *const block_rows[12] = {
    "ln1.weight", "ln1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
    "attn.proj.bias", "ln2.weight", "ln2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
    "mlp.fc2.weight", "mlp.fc2.bias"};

static block_cfg tf_cfg(const mcnn_shot_model *m)
{
    const int C = m->cfg.hidden;
    block_cfg b = {.C = C, .NH = m->cfg.heads, .F = 4 * C, .eps = TF_EPS, .causal = 0,
                   .act = BLOCK_GELU};
    return b;
}

/* Block l's values and gradients, in block_rows order (the structs' field order). */
static void tf_block_views(const mcnn_shot_model *m, int l, block_params *p, block_grads *g)
{
    float *v[12], *d[12];
    char name[96];
    for (int k = 0; k < 12; k++) {
        snprintf(name, sizeof name, "blocks.%d.%s", l, block_rows[k]);
        v[k] = mcnn_params_data(&m->params, name);
        d[k] = mcnn_params_grad(&m->params, name);
    }
    *g = (block_grads){d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11]};
    block_grads gv = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
    *p = mcnn_block_params_view(&gv);
}

static mcnn_status shot_tf_add(mcnn_shot_model *m)
{
    const mcnn_shot_config *c = &m->cfg;
    const int C = c->hidden;
    MCNN_TRY(shot_add_linear(m, "proj", c->D, C));
    MCNN_TRY(shot_add(m, "cls_token", 0, 1, C, 0));
    MCNN_TRY(shot_add(m, "pos_embed", 0, 2, c->K + 1, C));
    const int64_t shapes[12][2] = {{C, 0},         {C, 0},     {3 * C, C}, {3 * C, 0},
                                   {C, C},         {C, 0},     {C, 0},     {C, 0},
                                   {4 * C, C},     {4 * C, 0}, {C, 4 * C}, {C, 0}};
    char name[96];
    for (int l = 0; l < c->layers; l++)
        for (int k = 0; k < 12; k++) {
            snprintf(name, sizeof name, "blocks.%d.%s", l, block_rows[k]);
            const int ndim = shapes[k][1] ? 2 : 1;
            MCNN_TRY(shot_add(m, name, ndim == 2, ndim, shapes[k][0], shapes[k][1]));
        }
    MCNN_TRY(shot_add(m, "norm.weight", 0, 1, C, 0));
    MCNN_TRY(shot_add(m, "norm.bias", 0, 1, C, 0));
    return shot_add_linear(m, "head", C, c->num_classes);
}

static void fill(float *p, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) p[i] = v;
}

static void shot_tf_init(mcnn_shot_model *m, mcnn_rng *r)
{
    const int C = m->cfg.hidden;
    mcnn_params *P = &m->params;
    shot_init_linear(m, r, "proj", m->cfg.D);
    float *cls = mcnn_params_data(P, "cls_token"), *pos = mcnn_params_data(P, "pos_embed");
    for (int c = 0; c < C; c++) cls[c] = 0.02f * mcnn_rng_normal(r);
    for (size_t i = 0; i < (size_t)(m->cfg.K + 1) * C; i++) pos[i] = 0.02f * mcnn_rng_normal(r);
    char name[96];
    for (int l = 0; l < m->cfg.layers; l++) {
        snprintf(name, sizeof name, "blocks.%d.attn.qkv", l), shot_init_linear(m, r, name, C);
        snprintf(name, sizeof name, "blocks.%d.attn.proj", l), shot_init_linear(m, r, name, C);
        snprintf(name, sizeof name, "blocks.%d.mlp.fc1", l), shot_init_linear(m, r, name, C);
        snprintf(name, sizeof name, "blocks.%d.mlp.fc2", l), shot_init_linear(m, r, name, 4 * C);
        snprintf(name, sizeof name, "blocks.%d.ln1.weight", l);
        fill(mcnn_params_data(P, name), C, 1.0f);
        snprintf(name, sizeof name, "blocks.%d.ln2.weight", l);
        fill(mcnn_params_data(P, name), C, 1.0f);
    }
    fill(mcnn_params_data(P, "norm.weight"), C, 1.0f);
    shot_init_linear(m, r, "head", C);
}

/* Per layer: the block's input stream res[l] (at most B·T rows of C, the shots' tokens one
 * after the other) and its activations, carved for the whole batch; one more block_acts, the
 * same size, holds the gradients during the backward. */
static mcnn_status shot_tf_plan(mcnn_shot_model *m, mcnn_carver *c)
{
    const int L = m->cfg.layers, T = m->cfg.K + 1;
    const size_t B = m->max_batch, C = m->cfg.hidden, BTC = B * T * C;
    if (!m->res) {
        m->res = calloc((size_t)L + 1, sizeof *m->res);
        m->tf_acts = calloc((size_t)L + 1, sizeof(block_acts));
        m->tf_starts = calloc(B + 1, sizeof *m->tf_starts);
        if (!m->res || !m->tf_acts || !m->tf_starts)
            return mcnn_set_error(MCNN_ERR_NOMEM, "shot model: out of memory");
    }
    const block_cfg cfg = tf_cfg(m);
    block_acts *acts = m->tf_acts;
    for (int l = 0; l <= L; l++) m->res[l] = mcnn_carve(c, BTC);
    for (int l = 0; l <= L; l++) mcnn_block_acts_carve(&acts[l], c, &cfg, (int)B, T);
    m->dres[0] = mcnn_carve(c, BTC);
    m->dres[1] = mcnn_carve(c, BTC);
    m->frames = mcnn_carve(c, B * m->cfg.K * m->cfg.D);
    m->proj = mcnn_carve(c, B * m->cfg.K * C);
    m->dproj = mcnn_carve(c, B * m->cfg.K * C);
    m->cls_in = mcnn_carve(c, B * C);
    m->cls_ln = mcnn_carve(c, B * C);
    m->ln_mean = mcnn_carve(c, B);
    m->ln_rstd = mcnn_carve(c, B);
    m->dcls = mcnn_carve(c, 2 * B * C);
    return MCNN_OK;
}

void shot_tf_free(mcnn_shot_model *m)
{
    free(m->res);
    free(m->tf_acts);
    free(m->tf_starts);
}

/* The valid frames of every shot, one after the other: (sum of lengths, D). */
static int pack_frames(const mcnn_shot_model *m)
{
    const int K = m->cfg.K, D = m->cfg.D;
    int n = 0;
    for (int b = 0; b < m->B; b++)
        for (int k = 0; k < m->lengths[b]; k++, n++)
            memcpy(m->frames + (size_t)n * D, m->x + ((size_t)b * K + k) * D, sizeof(float) * D);
    return n;
}

/* Shot b's tokens are rows starts[b] .. starts[b+1] - 1: its class token, then its frames. */
static void set_starts(mcnn_shot_model *m)
{
    int *starts = m->tf_starts;
    starts[0] = 0;
    for (int b = 0; b < m->B; b++) starts[b + 1] = starts[b] + 1 + m->lengths[b];
}

static void shot_tf_forward(mcnn_shot_model *m, float *logits)
{
    const int B = m->B, C = m->cfg.hidden, L = m->cfg.layers;
    const mcnn_params *P = &m->params;
    const block_cfg cfg = tf_cfg(m);
    block_acts *acts = m->tf_acts;
    const int *starts = m->tf_starts;
    set_starts(m);
    const int n = pack_frames(m);
    mcnn_linear_forward(m->proj, m->frames, mcnn_params_data(P, "proj.weight"),
                        mcnn_params_data(P, "proj.bias"), n, m->cfg.D, C);
    const float *cls = mcnn_params_data(P, "cls_token"), *pos = mcnn_params_data(P, "pos_embed");
    for (int b = 0, f = 0; b < B; b++) {
        float *tok = m->res[0] + (size_t)starts[b] * C;
        for (int c = 0; c < C; c++) tok[c] = cls[c] + pos[c];
        for (int k = 0; k < m->lengths[b]; k++, f++)
            for (int c = 0; c < C; c++)
                tok[(size_t)(1 + k) * C + c] = m->proj[(size_t)f * C + c] + pos[(size_t)(1 + k) * C + c];
    }
    for (int l = 0; l < L; l++) {
        block_params p;
        block_grads g;
        tf_block_views(m, l, &p, &g);
        mcnn_block_forward_ragged(m->res[l + 1], &acts[l], m->res[l], &p, &cfg, B, starts);
    }
    for (int b = 0; b < B; b++)
        memcpy(m->cls_in + (size_t)b * C, m->res[L] + (size_t)starts[b] * C, sizeof(float) * C);
    mcnn_layernorm_forward(m->cls_ln, m->ln_mean, m->ln_rstd, m->cls_in,
                           mcnn_params_data(P, "norm.weight"), mcnn_params_data(P, "norm.bias"),
                           B, C, TF_EPS);
    mcnn_linear_forward(logits, m->cls_ln, mcnn_params_data(P, "head.weight"),
                        mcnn_params_data(P, "head.bias"), B, C, m->cfg.num_classes);
}

static void shot_tf_backward(mcnn_shot_model *m, const float *dlogits)
{
    const int B = m->B, C = m->cfg.hidden, L = m->cfg.layers;
    const mcnn_params *P = &m->params;
    const block_cfg cfg = tf_cfg(m);
    block_acts *acts = m->tf_acts;
    const int *starts = m->tf_starts, N = starts[B];
    float *dln = m->dcls, *dcls_in = m->dcls + (size_t)B * C;
    memset(m->dcls, 0, sizeof(float) * 2 * B * C);
    mcnn_linear_backward(dln, mcnn_params_grad(P, "head.weight"), mcnn_params_grad(P, "head.bias"),
                         dlogits, m->cls_ln, mcnn_params_data(P, "head.weight"), B, C,
                         m->cfg.num_classes);
    mcnn_layernorm_backward(dcls_in, mcnn_params_grad(P, "norm.weight"),
                            mcnn_params_grad(P, "norm.bias"), dln, m->cls_in,
                            mcnn_params_data(P, "norm.weight"), m->ln_mean, m->ln_rstd, B, C);
    /* Only the class token reaches the head: the top stream's gradient is zero elsewhere. */
    float *dout = m->dres[0], *dx = m->dres[1];
    memset(dout, 0, sizeof(float) * (size_t)N * C);
    for (int b = 0; b < B; b++)
        memcpy(dout + (size_t)starts[b] * C, dcls_in + (size_t)b * C, sizeof(float) * C);
    for (int l = L - 1; l >= 0; l--) {
        block_params p;
        block_grads g;
        tf_block_views(m, l, &p, &g);
        memset(dx, 0, sizeof(float) * (size_t)N * C);
        mcnn_block_backward_ragged(dx, &g, &acts[L], dout, m->res[l], &acts[l], &p, &cfg, B,
                                   starts);
        float *t = dout;
        dout = dx, dx = t;
    }
    /* dout is now the gradient of the tokens: to the class token, positions and projection */
    float *dcls = mcnn_params_grad(P, "cls_token"), *dpos = mcnn_params_grad(P, "pos_embed");
    for (int b = 0, f = 0; b < B; b++) {
        const float *d = dout + (size_t)starts[b] * C;
        for (int c = 0; c < C; c++) dcls[c] += d[c];
        for (int t = 0; t <= m->lengths[b]; t++)
            for (int c = 0; c < C; c++) dpos[(size_t)t * C + c] += d[(size_t)t * C + c];
        for (int k = 0; k < m->lengths[b]; k++, f++)
            memcpy(m->dproj + (size_t)f * C, d + (size_t)(1 + k) * C, sizeof(float) * C);
    }
    mcnn_linear_backward(NULL, mcnn_params_grad(P, "proj.weight"), mcnn_params_grad(P, "proj.bias"),
                         m->dproj, m->frames, NULL, N - B, m->cfg.D, C);
}

const shot_kind_ops shot_tf_ops = {shot_tf_add, shot_tf_init, shot_tf_plan, shot_tf_forward,
                                   shot_tf_backward};
