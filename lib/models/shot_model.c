/* The shot models' API: configuration checks, one allocation for everything a step needs,
 * the dispatch to the kinds, the training step and checkpoints with the optimizer state. */
#include "shot_model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOT_MAX_DIM (1 << 20)
#define SHOT_MAX_LAYERS 64

static const char *const kind_names[] = {"mean", "lstm", "transformer"};

const char *mcnn_shot_kind_name(mcnn_shot_kind kind)
{
    return (unsigned)kind < 3 ? kind_names[kind] : "unknown";
}

mcnn_status mcnn_shot_kind_parse(mcnn_shot_kind *kind, const char *name)
{
    for (int k = 0; k < 3; k++)
        if (name && strcmp(name, kind_names[k]) == 0) return *kind = (mcnn_shot_kind)k, MCNN_OK;
    return mcnn_set_error(MCNN_ERR_ARG, "shot model: unknown kind '%s' (mean, lstm, transformer)",
                          name ? name : "(null)");
}

mcnn_status shot_add(mcnn_shot_model *m, const char *name, int decay, int ndim, int64_t d0,
                     int64_t d1)
{
    const int64_t shape[2] = {d0, d1};
    return mcnn_params_add(&m->params, name, ndim, shape, decay);
}

mcnn_status shot_add_linear(mcnn_shot_model *m, const char *name, int in, int out)
{
    char key[96];
    snprintf(key, sizeof key, "%s.weight", name);
    MCNN_TRY(shot_add(m, key, 1, 2, out, in));
    snprintf(key, sizeof key, "%s.bias", name);
    return shot_add(m, key, 0, 1, out, 0);
}

void shot_init_uniform(mcnn_shot_model *m, mcnn_rng *r, const char *name, float bound)
{
    const mcnn_param *row = mcnn_params_find(&m->params, name);
    float *p = m->params.data + row->offset;
    for (size_t i = 0; i < row->numel; i++) p[i] = bound * (2.0f * mcnn_rng_uniform(r) - 1.0f);
}

void shot_init_linear(mcnn_shot_model *m, mcnn_rng *r, const char *name, int in)
{
    /* torch.nn.Linear: kaiming_uniform(a = sqrt(5)) = uniform(±1/sqrt(in)), the bias likewise */
    char key[96];
    snprintf(key, sizeof key, "%s.weight", name), shot_init_uniform(m, r, key, 1.0f / sqrtf((float)in));
    snprintf(key, sizeof key, "%s.bias", name), shot_init_uniform(m, r, key, 1.0f / sqrtf((float)in));
}

/* Fill in the defaults and refuse what cannot be built, naming the field. */
static mcnn_status config_check(mcnn_shot_config *c, int max_batch)
{
    if ((unsigned)c->kind > MCNN_SHOT_TRANSFORMER)
        return mcnn_set_error(MCNN_ERR_ARG, "shot model: unknown kind %d", (int)c->kind);
    if (c->kind == MCNN_SHOT_LSTM && c->hidden == 0) c->hidden = 512;
    if (c->kind == MCNN_SHOT_TRANSFORMER && c->hidden == 0) c->hidden = 256;
    if (c->kind != MCNN_SHOT_MEAN && c->layers == 0) c->layers = 2;
    if (c->kind == MCNN_SHOT_TRANSFORMER && c->heads == 0) c->heads = 4;
    if (c->kind == MCNN_SHOT_MEAN) c->layers = 0, c->heads = 0;
    if (c->kind != MCNN_SHOT_TRANSFORMER) c->heads = 0;
    const struct { const char *name; int v, min, max; } f[] = {
        {"D (features per frame)", c->D, 1, SHOT_MAX_DIM},
        {"K (frames per shot)", c->K, 1, 4096},
        {"num_classes", c->num_classes, 1, SHOT_MAX_DIM},
        {"hidden", c->hidden, c->kind == MCNN_SHOT_MEAN ? 0 : 1, 1 << 16},
        {"layers", c->layers, c->kind == MCNN_SHOT_MEAN ? 0 : 1, SHOT_MAX_LAYERS},
        {"heads", c->heads, c->kind == MCNN_SHOT_TRANSFORMER ? 1 : 0, 1 << 10},
        {"max_batch", max_batch, 1, 1 << 16}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v < f[i].min || f[i].v > f[i].max)
            return mcnn_set_error(MCNN_ERR_ARG, "shot model (%s): %s is %d, must be in [%d, %d]",
                                  mcnn_shot_kind_name(c->kind), f[i].name, f[i].v, f[i].min,
                                  f[i].max);
    if (c->kind == MCNN_SHOT_TRANSFORMER && c->hidden % c->heads)
        return mcnn_set_error(MCNN_ERR_ARG,
                              "shot model (transformer): width %d is not a multiple of %d heads",
                              c->hidden, c->heads);
    return MCNN_OK;
}

static const shot_kind_ops *kind_ops(const mcnn_shot_model *m)
{
    static const shot_kind_ops *const ops[3] = {&shot_mean_ops, &shot_lstm_ops, &shot_tf_ops};
    return ops[m->cfg.kind];
}

/* The training step's logits and their gradient, then the kind's activations. */
static mcnn_status plan(mcnn_shot_model *m, mcnn_carver *c)
{
    const size_t BN = (size_t)m->max_batch * m->cfg.num_classes;
    m->logits = mcnn_carve(c, BN);
    m->dlogits = mcnn_carve(c, BN);
    return kind_ops(m)->plan(m, c);
}

/* Everything but the values: the table, the activations, the input copy. */
mcnn_status shot_model_build(mcnn_shot_model **out, const mcnn_shot_config *cfg, int max_batch)
{
    *out = NULL;
    mcnn_shot_config c = *cfg;
    MCNN_TRY(config_check(&c, max_batch));
    mcnn_shot_model *m = calloc(1, sizeof *m);
    if (!m) return mcnn_set_error(MCNN_ERR_NOMEM, "shot model: out of memory");
    m->cfg = c;
    m->max_batch = max_batch;
    mcnn_status s = kind_ops(m)->add(m);
    if (s == MCNN_OK) s = mcnn_params_alloc(&m->params, 1);
    mcnn_carver count = {NULL, 0};
    if (s == MCNN_OK) s = plan(m, &count);
    const size_t x_floats = (size_t)max_batch * c.K * c.D;
    if (s == MCNN_OK) {
        m->acts = malloc(sizeof(float) * (count.used + 1));
        m->x = malloc(sizeof(float) * x_floats);
        m->lengths = calloc((size_t)max_batch, sizeof *m->lengths);
        if (!m->acts || !m->x || !m->lengths)
            s = mcnn_set_error(MCNN_ERR_NOMEM, "shot model: out of memory (%zu floats)",
                               count.used + x_floats);
    }
    if (s == MCNN_OK) {
        mcnn_carver point = {m->acts, 0};
        s = plan(m, &point);
    }
    if (s != MCNN_OK) {
        mcnn_shot_model_free(m);
        return s;
    }
    *out = m;
    return MCNN_OK;
}

mcnn_status mcnn_shot_model_create(mcnn_shot_model **out, const mcnn_shot_config *cfg,
                                   int max_batch)
{
    if (!out || !cfg) return mcnn_set_error(MCNN_ERR_ARG, "shot model: NULL argument");
    MCNN_TRY(shot_model_build(out, cfg, max_batch));
    mcnn_shot_model *m = *out;
    mcnn_rng r;
    mcnn_rng_seed(&r, m->cfg.seed);
    kind_ops(m)->init(m, &r);
    return MCNN_OK;
}

void mcnn_shot_model_free(mcnn_shot_model *m)
{
    if (!m) return;
    mcnn_params_free(&m->params);
    free(m->y), free(m->gates), free(m->cells);
    shot_tf_free(m);
    free(m->acts), free(m->x), free(m->lengths);
    free(m);
}

const mcnn_shot_config *mcnn_shot_model_config(const mcnn_shot_model *m) { return &m->cfg; }

mcnn_params *mcnn_shot_model_params(mcnn_shot_model *m) { return &m->params; }

mcnn_status mcnn_shot_model_forward(mcnn_shot_model *m, float *logits, const float *x,
                                    const int32_t *lengths, int B)
{
    if (!m || !logits || !x || !lengths)
        return mcnn_set_error(MCNN_ERR_ARG, "shot model forward: NULL argument");
    const int K = m->cfg.K, D = m->cfg.D;
    if (B < 1 || B > m->max_batch)
        return mcnn_set_error(MCNN_ERR_SHAPE, "shot model forward: %d shots, the model takes 1 to %d",
                              B, m->max_batch);
    for (int b = 0; b < B; b++)
        if (lengths[b] < 1 || lengths[b] > K)
            return mcnn_set_error(MCNN_ERR_SHAPE,
                                  "shot model forward: shot %d has %d frames, must be 1 to K = %d",
                                  b, (int)lengths[b], K);
    /* Copy the valid frames and zero the padding: nothing after this reads the caller's padding. */
    m->B = B;
    memcpy(m->lengths, lengths, sizeof(int32_t) * B);
    for (int b = 0; b < B; b++) {
        const size_t o = (size_t)b * K * D, valid = (size_t)lengths[b] * D;
        memcpy(m->x + o, x + o, sizeof(float) * valid);
        memset(m->x + o + valid, 0, sizeof(float) * ((size_t)K * D - valid));
    }
    kind_ops(m)->forward(m, logits);
    return MCNN_OK;
}

mcnn_status mcnn_shot_model_backward(mcnn_shot_model *m, const float *dlogits)
{
    if (!m || !dlogits) return mcnn_set_error(MCNN_ERR_ARG, "shot model backward: NULL argument");
    if (m->B == 0) return mcnn_set_error(MCNN_ERR_ARG, "shot model backward: no forward before it");
    kind_ops(m)->backward(m, dlogits);
    return MCNN_OK;
}

/* ---- training ---------------------------------------------------------------------------- */
mcnn_status mcnn_shot_trainer_init(mcnn_shot_trainer *t, mcnn_shot_model *m)
{
    memset(t, 0, sizeof *t);
    MCNN_TRY(mcnn_optim_init(&t->opt, MCNN_OPTIM_ADAMW, m->params.total));
    t->opt.lr = 1e-3, t->opt.weight_decay = 1e-3;
    t->schedule = (mcnn_lr_schedule){.kind = MCNN_LR_STEP, .base_lr = 1e-3, .step_size = 15000,
                                      .gamma = 0.5};
    return MCNN_OK;
}

void mcnn_shot_trainer_free(mcnn_shot_trainer *t)
{
    if (t) mcnn_optim_free(&t->opt);
}

mcnn_status mcnn_shot_train_step(mcnn_shot_model *m, mcnn_shot_trainer *t, const float *x,
                                 const int32_t *lengths, const float *targets,
                                 const float *pos_weight, int B, float *loss, float *logits)
{
    if (!m || !t || !targets) return mcnn_set_error(MCNN_ERR_ARG, "shot train step: NULL argument");
    if (t->opt.n != m->params.total)
        return mcnn_set_error(MCNN_ERR_ARG, "shot train step: the trainer was made for another model");
    const int NC = m->cfg.num_classes;
    float *out = m->logits, *dlogits = m->dlogits;
    mcnn_grad_zero(m->params.grad, m->params.total);
    mcnn_status s = mcnn_shot_model_forward(m, out, x, lengths, B);
    if (s == MCNN_OK) {
        const float l = mcnn_bce_logits_forward(out, targets, pos_weight, B, NC);
        if (loss) *loss = l;
        memset(dlogits, 0, sizeof(float) * (size_t)B * NC);
        mcnn_bce_logits_backward(dlogits, out, targets, pos_weight, B, NC, 1.0f);
        if (logits) memcpy(logits, out, sizeof(float) * (size_t)B * NC);
        s = mcnn_shot_model_backward(m, dlogits);
    }
    if (s == MCNN_OK) {
        t->last_grad_norm = t->clip_norm > 0
                                ? mcnn_clip_grad_norm(m->params.grad, m->params.total, t->clip_norm)
                                : NAN;
        t->opt.lr = mcnn_lr_schedule_at(&t->schedule, t->opt.step);
        s = mcnn_optim_step(&t->opt, m->params.data, m->params.grad, m->params.table,
                            m->params.count);
    }
    return s;
}
