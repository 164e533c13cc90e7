/* The training step and the epoch loop.
 *   micro-batch:  logits = model(x);  loss = CE(logits, y; ε) or BCE(logits, y; pos_weight)
 *                 dlogits = ∂(loss / accum)/∂logits;  model backward (gradients accumulate)
 *   every accum micro-batches:  norm = clip_grad_norm_(grads, clip);  lr = schedule(step);
 *                 optimizer step over the trainable rows (decay on rows with decay = 1)
 * Checkpoints and resuming are in train_checkpoint.c, evaluation in evaluate.c. */
#include "internal.h"
#include "train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mcnn_train_config mcnn_train_config_default(void)
{
    mcnn_train_config c;
    memset(&c, 0, sizeof c);
    c.batch = 128, c.accum = 1, c.epochs = 10, c.seed = 0;
    c.loss = MCNN_LOSS_CE, c.label_smoothing = 0.1f;
    c.optim = MCNN_OPTIM_ADAMW, c.lr = 1e-3, c.weight_decay = 0.05;
    c.momentum = 0.9, c.nesterov = 0, c.beta1 = 0.9, c.beta2 = 0.999, c.eps = 1e-8;
    c.schedule = MCNN_LR_COSINE, c.warmup_epochs = 1, c.warmup_start = 0.01, c.min_lr = 0;
    c.step_epochs = 30, c.gamma = 0.1;
    c.clip_norm = 1.0f;
    return c;
}

static mcnn_status check_config(const mcnn_train_config *c)
{
    if (c->batch <= 0 || c->accum <= 0 || c->epochs < 0)
        return mcnn_set_error(MCNN_ERR_ARG, "train: batch %d, accumulation %d, epochs %d",
                              c->batch, c->accum, c->epochs);
    if (!(c->lr >= 0) || !(c->weight_decay >= 0) || !(c->label_smoothing >= 0) ||
        !(c->label_smoothing <= 1) || !(c->clip_norm >= 0) || !(c->warmup_epochs >= 0))
        return mcnn_set_error(MCNN_ERR_ARG, "train: lr %g, weight decay %g, smoothing %g, clip "
                              "%g, warm-up %g: out of range", c->lr, c->weight_decay,
                              c->label_smoothing, c->clip_norm, c->warmup_epochs);
    if (c->loss != MCNN_LOSS_CE && c->loss != MCNN_LOSS_BCE)
        return mcnn_set_error(MCNN_ERR_ARG, "train: unknown loss %d", (int)c->loss);
    if (c->ranks < 0 || c->rank < 0 || (c->ranks > 0 && c->rank >= c->ranks))
        return mcnn_set_error(MCNN_ERR_ARG, "train: rank %d of %d", c->rank, c->ranks);
    if (c->ranks > 1 && c->batch % c->ranks)
        return mcnn_set_error(MCNN_ERR_ARG, "train: a batch of %d does not split over %d ranks "
                              "(give a batch that %d divides)", c->batch, c->ranks, c->ranks);
    if (c->schedule == MCNN_LR_STEP && !(c->step_epochs > 0))
        return mcnn_set_error(MCNN_ERR_ARG, "train: step schedule every %g epochs", c->step_epochs);
    return MCNN_OK;
}

/* The schedule in steps, from the config in epochs. */
static void make_schedule(mcnn_trainer *t)
{
    const mcnn_train_config *c = &t->cfg;
    mcnn_lr_schedule *s = &t->sched;
    memset(s, 0, sizeof *s);
    s->kind = c->schedule;
    s->base_lr = c->lr;
    s->warmup_steps = (int64_t)llround(c->warmup_epochs * (double)t->steps_per_epoch);
    if (s->warmup_steps > t->total_steps) s->warmup_steps = t->total_steps;
    s->warmup_start = c->warmup_start;
    s->total_steps = t->total_steps > s->warmup_steps ? t->total_steps : s->warmup_steps + 1;
    s->min_lr = c->min_lr;
    s->step_size = (int64_t)llround(c->step_epochs * (double)t->steps_per_epoch);
    if (s->step_size < 1) s->step_size = 1;
    s->gamma = c->gamma;
}

/* Each rank augments from its own stream; rank 0's is the single-process one. */
static uint64_t rank_seed(uint64_t seed, int rank)
{
    return rank ? seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)rank) : seed;
}

/* Images per micro-batch on this rank. */
static int local_batch(const mcnn_train_config *c)
{
    return c->ranks > 1 ? c->batch / c->ranks : c->batch;
}

mcnn_status mcnn_trainer_create(mcnn_trainer **out, mcnn_classifier *model,
                                const mcnn_train_config *cfg, int train_count)
{
    *out = NULL;
    MCNN_TRY(check_config(cfg));
    const int64_t group = (int64_t)cfg->batch * cfg->accum;
    if (train_count < group)
        return mcnn_set_error(MCNN_ERR_ARG, "train: %d training samples do not fill one step of "
                              "%d x %d", train_count, cfg->batch, cfg->accum);
    mcnn_trainer *t = calloc(1, sizeof *t);
    if (!t) return mcnn_set_error(MCNN_ERR_NOMEM, "train: out of memory");
    t->model = model;
    t->cfg = *cfg;
    t->K = mcnn_classifier_num_classes(model);
    t->train_count = train_count;
    t->steps_per_epoch = train_count / group;
    t->total_steps = t->steps_per_epoch * cfg->epochs;
    make_schedule(t);
    mcnn_rng_seed(&t->rng, rank_seed(cfg->seed, cfg->rank));
    mcnn_classifier_freeze_backbone(model, cfg->freeze_backbone);
    mcnn_classifier_set_multilabel(model, cfg->loss == MCNN_LOSS_BCE);
    const size_t B = (size_t)local_batch(cfg), K = (size_t)t->K;
    const size_t S = (size_t)mcnn_classifier_image_size(model);
    const size_t C = (size_t)mcnn_classifier_in_channels(model);
    t->logits = malloc(B * K * sizeof(float));
    t->dlogits = malloc(B * K * sizeof(float));
    t->probs = malloc(B * K * sizeof(float));
    t->images = malloc(B * C * S * S * sizeof(float));
    t->labels = malloc(B * sizeof(int32_t));
    t->targets = malloc(B * K * sizeof(float));
    t->perm = malloc((size_t)train_count * sizeof(int));
    mcnn_status s = MCNN_OK;
    if (!t->logits || !t->dlogits || !t->probs || !t->images || !t->labels || !t->targets ||
        !t->perm)
        s = mcnn_set_error(MCNN_ERR_NOMEM, "train: out of memory for batch %d", cfg->batch);
    if (s == MCNN_OK)
        s = mcnn_optim_init(&t->opt, cfg->optim, mcnn_classifier_params(model)->total);
    if (s != MCNN_OK) {
        mcnn_trainer_free(t);
        return s;
    }
    t->opt.lr = cfg->lr;
    t->opt.weight_decay = cfg->weight_decay;
    t->opt.momentum = cfg->momentum;
    t->opt.nesterov = cfg->nesterov;
    t->opt.beta1 = cfg->beta1, t->opt.beta2 = cfg->beta2, t->opt.eps = cfg->eps;
    *out = t;
    return MCNN_OK;
}

void mcnn_trainer_free(mcnn_trainer *t)
{
    if (!t) return;
    mcnn_optim_free(&t->opt);
    free(t->pos_weight);
    free(t->logits);
    free(t->dlogits);
    free(t->probs);
    free(t->images);
    free(t->labels);
    free(t->targets);
    free(t->perm);
    free(t);
}

const mcnn_train_config *mcnn_trainer_config(const mcnn_trainer *t) { return &t->cfg; }
int mcnn_trainer_epoch(const mcnn_trainer *t) { return t->epoch; }
int64_t mcnn_trainer_step_count(const mcnn_trainer *t) { return t->opt.step; }
int64_t mcnn_trainer_steps_per_epoch(const mcnn_trainer *t) { return t->steps_per_epoch; }
float mcnn_trainer_last_grad_norm(const mcnn_trainer *t) { return t->last_grad_norm; }
double mcnn_trainer_last_lr(const mcnn_trainer *t) { return t->last_lr; }
void mcnn_trainer_get_rng(const mcnn_trainer *t, uint64_t state[4])
{
    memcpy(state, t->rng.s, sizeof t->rng.s);
}
void mcnn_trainer_set_rng(mcnn_trainer *t, const uint64_t state[4])
{
    memcpy(t->rng.s, state, sizeof t->rng.s);
}

mcnn_status mcnn_trainer_set_pos_weight(mcnn_trainer *t, const float *pos_weight)
{
    free(t->pos_weight);
    t->pos_weight = NULL;
    if (!pos_weight) return MCNN_OK;
    for (int k = 0; k < t->K; k++)
        if (!(pos_weight[k] >= 0) || !isfinite(pos_weight[k]))
            return mcnn_set_error(MCNN_ERR_ARG, "pos_weight[%d] = %g: must be finite and >= 0", k,
                                  pos_weight[k]);
    if (!(t->pos_weight = malloc((size_t)t->K * sizeof(float))))
        return mcnn_set_error(MCNN_ERR_NOMEM, "train: out of memory");
    memcpy(t->pos_weight, pos_weight, (size_t)t->K * sizeof(float));
    return MCNN_OK;
}

mcnn_status mcnn_read_pos_weight(float *pos_weight, int K, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return mcnn_set_error(MCNN_ERR_IO, "%s: cannot open", path);
    int k = 0;
    double v;
    char extra;
    while (k < K && fscanf(f, "%lf", &v) == 1) pos_weight[k++] = (float)v;
    const int trailing = fscanf(f, " %c", &extra) == 1;
    fclose(f);
    if (k != K || trailing)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: expected %d numbers (one pos_weight per "
                              "class), %s", path, K, k != K ? "found fewer or a non-number"
                                                            : "found more");
    for (k = 0; k < K; k++)
        if (!(pos_weight[k] >= 0) || !isfinite(pos_weight[k]))
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: value %d (%g) must be finite and >= 0",
                                  path, k + 1, pos_weight[k]);
    return MCNN_OK;
}

mcnn_status mcnn_trainer_step(mcnn_trainer *t, const float *images, const int32_t *labels,
                              const float *targets, int B, float *loss, int *stepped)
{
    const mcnn_train_config *c = &t->cfg;
    const int K = t->K;
    mcnn_params *p = mcnn_classifier_params(t->model);
    *stepped = 0;
    if (B <= 0 || B > local_batch(c))
        return mcnn_set_error(MCNN_ERR_ARG, "train step: batch %d (the trainer holds %d)", B,
                              local_batch(c));
    if ((c->loss == MCNN_LOSS_CE && !labels) || (c->loss == MCNN_LOSS_BCE && !targets))
        return mcnn_set_error(MCNN_ERR_ARG, "train step: %s needs %s", c->loss ? "BCE" : "CE",
                              c->loss ? "targets" : "labels");
    if (c->loss == MCNN_LOSS_CE)
        for (int i = 0; i < B; i++)
            if (labels[i] < 0 || labels[i] >= K)
                return mcnn_set_error(MCNN_ERR_ARG, "train step: label %d of sample %d is not "
                                      "one of the %d classes", labels[i], i, K);
    if (t->micro == 0) {
        mcnn_params_zero_grad(p);
        t->loss_sum = 0.0;
    }
    MCNN_TRY(mcnn_classifier_forward(t->model, t->logits, images, B, 1));
    float l = c->loss == MCNN_LOSS_CE
                  ? mcnn_cross_entropy_forward(t->probs, t->logits, labels, B, K,
                                               c->label_smoothing)
                  : mcnn_bce_logits_forward(t->logits, targets, t->pos_weight, B, K);
    *loss = l;
    if (!isfinite(l)) {
        t->micro = 0;
        return mcnn_set_error(MCNN_ERR_ARG, "the loss is %s at step %lld (epoch %d): training "
                              "stopped, the weights of the step before are kept",
                              isnan(l) ? "NaN" : "infinite", (long long)t->opt.step + 1,
                              t->epoch + 1);
    }
    memset(t->dlogits, 0, (size_t)B * K * sizeof(float));
    const float dloss = 1.0f / (float)c->accum;
    if (c->loss == MCNN_LOSS_CE)
        mcnn_cross_entropy_backward(t->dlogits, t->probs, labels, B, K, c->label_smoothing, dloss);
    else
        mcnn_bce_logits_backward(t->dlogits, t->logits, targets, t->pos_weight, B, K, dloss);
    MCNN_TRY(mcnn_classifier_backward(t->model, t->dlogits));
    t->loss_sum += l;
    if (++t->micro < c->accum) return MCNN_OK;

    t->micro = 0;
    if (c->grad_hook) MCNN_TRY(c->grad_hook(c->grad_hook_ctx, p->grad, p->total, &t->loss_sum));
    const float norm = c->clip_norm > 0 ? mcnn_clip_grad_norm(p->grad, p->total, c->clip_norm)
                                        : mcnn_clip_grad_norm(p->grad, p->total, INFINITY);
    t->last_grad_norm = norm;
    if (!isfinite(norm))
        return mcnn_set_error(MCNN_ERR_ARG, "the gradient norm is %s at step %lld (epoch %d): "
                              "training stopped, the weights of the step before are kept",
                              isnan(norm) ? "NaN" : "infinite", (long long)t->opt.step + 1,
                              t->epoch + 1);
    t->last_lr = t->opt.lr = mcnn_lr_schedule_at(&t->sched, t->opt.step);
    const mcnn_param *rows;
    const int nrows = mcnn_classifier_trainable(t->model, &rows);
    MCNN_TRY(mcnn_optim_step(&t->opt, p->data, p->grad, rows, nrows));
    t->last_loss = (float)(t->loss_sum / c->accum);
    *stepped = 1;
    return MCNN_OK;
}

/* The epoch's order: a Fisher-Yates shuffle seeded by (seed, epoch) alone, so that a resumed
 * run finds the same order without having saved it. */
static void epoch_permutation(int *perm, int N, uint64_t seed, int epoch)
{
    mcnn_rng r;
    mcnn_rng_seed(&r, seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(epoch + 1)));
    for (int i = 0; i < N; i++) perm[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)mcnn_rng_below(&r, (uint32_t)i + 1), tmp = perm[i];
        perm[i] = perm[j], perm[j] = tmp;
    }
}

mcnn_status mcnn_trainer_run_epoch(mcnn_trainer *t, const mcnn_dataset *data,
                                   const mcnn_transform *tf, mcnn_train_callback cb, void *ctx,
                                   int *stopped)
{
    const mcnn_train_config *c = &t->cfg;
    if (stopped) *stopped = 0;
    if (data->count != t->train_count)
        return mcnn_set_error(MCNN_ERR_ARG, "train: the trainer was made for %d samples, the data "
                              "has %d", t->train_count, data->count);
    if (data->num_classes != t->K)
        return mcnn_set_error(MCNN_ERR_ARG, "train: %s has %d classes, the model %d",
                              data->source, data->num_classes, t->K);
    if (tf->preprocess.crop != mcnn_classifier_image_size(t->model) ||
        tf->preprocess.channels != mcnn_classifier_in_channels(t->model))
        return mcnn_set_error(MCNN_ERR_ARG, "train: batches of %d x %d x %d for a model taking "
                              "%d x %d x %d", tf->preprocess.channels, tf->preprocess.crop, tf->preprocess.crop,
                              mcnn_classifier_in_channels(t->model),
                              mcnn_classifier_image_size(t->model),
                              mcnn_classifier_image_size(t->model));
    epoch_permutation(t->perm, data->count, c->seed, t->epoch);
    const int B = local_batch(c), first = c->ranks > 1 ? c->rank * B : 0;
    while (t->epoch_step < t->steps_per_epoch) {
        int stepped = 0;
        float loss;
        for (int a = 0; a < c->accum; a++) {
            const int *idx =
                t->perm + (t->epoch_step * c->accum + a) * (int64_t)c->batch + first;
            MCNN_TRY(mcnn_dataset_batch(data, idx, B, tf, 1, &t->rng, t->images, t->labels,
                                        c->loss == MCNN_LOSS_BCE ? t->targets : NULL));
            MCNN_TRY(mcnn_trainer_step(t, t->images, t->labels, t->targets, B, &loss, &stepped));
        }
        t->epoch_step++;
        mcnn_train_progress p = {.step = t->opt.step, .total_steps = t->total_steps,
                                 .epoch = t->epoch, .epochs = c->epochs,
                                 .epoch_step = t->epoch_step, .epoch_steps = t->steps_per_epoch,
                                 .loss = t->last_loss, .lr = t->last_lr,
                                 .grad_norm = t->last_grad_norm,
                                 .images = (int64_t)c->batch * c->accum};
        const int done = t->epoch_step == t->steps_per_epoch;
        if (done) t->epoch++, t->epoch_step = 0;
        if (cb && cb(ctx, &p)) {
            if (stopped) *stopped = !done;
            return MCNN_OK;
        }
        if (done) break;
    }
    return MCNN_OK;
}
