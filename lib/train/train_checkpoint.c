/* Training checkpoints: the classifier's file plus
 *   tensors   optimizer.m.<param>, optimizer.v.<param> (Adam/AdamW; SGD has m only),
 *             optimizer.pos_weight (BCE, when set)
 *   metadata  "train_config": every hyper-parameter (JSON; doubles written with 17 digits so
 *             they read back exactly), "train_state": the optimizer step, the epoch and the
 *             step inside it, the augmentation RNG's four words (hex strings).
 * The model loaders skip "optimizer.*" tensors, so the same file is also a plain model. */
#include "internal.h"
#include "io/json.h"
#include "train_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const optim_names[] = {"sgd", "adam", "adamw"};
static const char *const sched_names[] = {"constant", "cosine", "step"};

static void config_json(char *buf, size_t size, const mcnn_train_config *c)
{
    snprintf(buf, size,
             "{\"batch\":%d,\"accum\":%d,\"epochs\":%d,\"seed\":\"%" PRIu64 "\","
             "\"loss\":\"%s\",\"label_smoothing\":%.9g,\"optim\":\"%s\",\"lr\":%.17g,"
             "\"weight_decay\":%.17g,\"momentum\":%.17g,\"nesterov\":%d,\"beta1\":%.17g,"
             "\"beta2\":%.17g,\"eps\":%.17g,\"schedule\":\"%s\",\"warmup_epochs\":%.17g,"
             "\"warmup_start\":%.17g,\"min_lr\":%.17g,\"step_epochs\":%.17g,\"gamma\":%.17g,"
             "\"clip_norm\":%.9g,\"freeze_backbone\":%d}",
             c->batch, c->accum, c->epochs, c->seed, c->loss == MCNN_LOSS_BCE ? "bce" : "ce",
             c->label_smoothing, optim_names[c->optim], c->lr, c->weight_decay, c->momentum,
             c->nesterov, c->beta1, c->beta2, c->eps, sched_names[c->schedule], c->warmup_epochs,
             c->warmup_start, c->min_lr, c->step_epochs, c->gamma, c->clip_norm,
             c->freeze_backbone);
}

mcnn_status mcnn_trainer_save(const mcnn_trainer *t, const char *path, const char *const *meta,
                              int n_meta)
{
    mcnn_params *p = mcnn_classifier_params(t->model);
    const int n = p->count, nstate = t->opt.v ? 2 : 1;
    mcnn_st_entry *e = calloc((size_t)(nstate * n + 1), sizeof *e);
    char *names = malloc((size_t)(nstate * n) * 128 + 1);
    const char **all = malloc((size_t)(2 * n_meta + 8) * sizeof(char *));
    if (!e || !names || !all) {
        free(e), free(names), free(all);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    }
    int k = 0;
    for (int s = 0; s < nstate; s++) {
        const float *block = s ? t->opt.v : t->opt.m;
        for (int i = 0; i < n; i++, k++) {
            const mcnn_param *row = &p->table[i];
            char *name = names + (size_t)k * 128;
            snprintf(name, 128, "optimizer.%s.%s", s ? "v" : "m", row->name);
            e[k] = (mcnn_st_entry){.name = name, .dtype = MCNN_DTYPE_F32, .ndim = row->ndim,
                                   .data = block + row->offset};
            for (int d = 0; d < row->ndim; d++) e[k].shape[d] = row->shape[d];
        }
    }
    if (t->pos_weight)
        e[k++] = (mcnn_st_entry){.name = "optimizer.pos_weight", .dtype = MCNN_DTYPE_F32,
                                 .ndim = 1, .shape = {t->K}, .data = t->pos_weight};
    char config[2048], state[512];
    config_json(config, sizeof config, &t->cfg);
    snprintf(state, sizeof state,
             "{\"step\":%" PRId64 ",\"epoch\":%d,\"epoch_step\":%" PRId64 ",\"steps_per_epoch\":%"
             PRId64 ",\"train_count\":%d,\"rng\":[\"%016" PRIx64 "\",\"%016" PRIx64 "\",\"%016"
             PRIx64 "\",\"%016" PRIx64 "\"]}",
             t->opt.step, t->epoch, t->epoch_step, t->steps_per_epoch, t->train_count,
             t->rng.s[0], t->rng.s[1], t->rng.s[2], t->rng.s[3]);
    int m = 0;
    all[m++] = "train_config", all[m++] = config;
    all[m++] = "train_state", all[m++] = state;
    all[m++] = "loss", all[m++] = t->cfg.loss == MCNN_LOSS_BCE ? "bce" : "ce";
    for (int i = 0; i < 2 * n_meta; i++) all[m++] = meta[i];
    mcnn_status s = mcnn_classifier_save_with(t->model, path, e, k, all, m / 2);
    free(e), free(names), free(all);
    return s;
}

/* ---- reading back ------------------------------------------------------------------------- */

static mcnn_status meta_json(mcnn_json_doc *doc, mcnn_safetensors *st, const char *key)
{
    const char *v = mcnn_safetensors_meta(st, key);
    if (!v)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: no \"%s\" metadata: not a checkpoint written "
                              "by the trainer", mcnn_safetensors_path(st), key);
    mcnn_status s = mcnn_json_parse(doc, v, strlen(v));
    if (s != MCNN_OK) return mcnn_wrap_error(s, "%s: \"%s\": ", mcnn_safetensors_path(st), key);
    if (doc->root->type != MCNN_JSON_OBJECT) {
        mcnn_json_free(doc);
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: \"%s\" is not a JSON object",
                              mcnn_safetensors_path(st), key);
    }
    return MCNN_OK;
}

/* Typed getters: a missing or mistyped member is an error naming it. */
typedef struct reader {
    const mcnn_json *obj;
    const char *path, *what;
    mcnn_status s;
} reader;

static const mcnn_json *member(reader *r, const char *key, mcnn_json_type type)
{
    const mcnn_json *v = mcnn_json_get(r->obj, key);
    if (r->s == MCNN_OK && (!v || v->type != type))
        r->s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: \"%s\" lacks a %s \"%s\"", r->path, r->what,
                              mcnn_json_type_name(type), key);
    return r->s == MCNN_OK ? v : NULL;
}

static double get_num(reader *r, const char *key)
{
    const mcnn_json *v = member(r, key, MCNN_JSON_NUMBER);
    return v ? v->num : 0.0;
}

static int64_t get_int(reader *r, const char *key)
{
    const mcnn_json *v = member(r, key, MCNN_JSON_NUMBER);
    if (v && !v->is_int && r->s == MCNN_OK)
        r->s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: \"%s\": \"%s\" is not an integer", r->path,
                              r->what, key);
    return v && v->is_int ? v->i : 0;
}

static int get_choice(reader *r, const char *key, const char *const *names, int n)
{
    const mcnn_json *v = member(r, key, MCNN_JSON_STRING);
    for (int i = 0; v && i < n; i++)
        if (strcmp(v->str, names[i]) == 0) return i;
    if (r->s == MCNN_OK)
        r->s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: \"%s\": unknown %s '%s'", r->path, r->what,
                              key, v ? v->str : "");
    return 0;
}

static uint64_t get_u64_string(reader *r, const mcnn_json *v, int base)
{
    char *end;
    if (r->s != MCNN_OK) return 0;
    if (!v || v->type != MCNN_JSON_STRING || !v->str[0]) {
        r->s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: \"%s\": expected a number in a string",
                              r->path, r->what);
        return 0;
    }
    unsigned long long x = strtoull(v->str, &end, base);
    if (*end)
        r->s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: \"%s\": '%s' is not a number", r->path,
                              r->what, v->str);
    return (uint64_t)x;
}

mcnn_status mcnn_train_config_load(mcnn_train_config *cfg, const char *path)
{
    mcnn_safetensors *st;
    MCNN_TRY(mcnn_safetensors_open(&st, path));
    mcnn_json_doc doc;
    mcnn_status s = meta_json(&doc, st, "train_config");
    mcnn_safetensors_close(st);
    if (s != MCNN_OK) return s;
    reader r = {doc.root, path, "train_config", MCNN_OK};
    mcnn_train_config c = mcnn_train_config_default();
    c.batch = (int)get_int(&r, "batch");
    c.accum = (int)get_int(&r, "accum");
    c.epochs = (int)get_int(&r, "epochs");
    c.seed = get_u64_string(&r, mcnn_json_get(doc.root, "seed"), 10);
    c.loss = get_choice(&r, "loss", (const char *const[]){"ce", "bce"}, 2) ? MCNN_LOSS_BCE
                                                                           : MCNN_LOSS_CE;
    c.label_smoothing = (float)get_num(&r, "label_smoothing");
    c.optim = (mcnn_optim_kind)get_choice(&r, "optim", optim_names, 3);
    c.lr = get_num(&r, "lr");
    c.weight_decay = get_num(&r, "weight_decay");
    c.momentum = get_num(&r, "momentum");
    c.nesterov = (int)get_int(&r, "nesterov");
    c.beta1 = get_num(&r, "beta1");
    c.beta2 = get_num(&r, "beta2");
    c.eps = get_num(&r, "eps");
    c.schedule = (mcnn_lr_kind)get_choice(&r, "schedule", sched_names, 3);
    c.warmup_epochs = get_num(&r, "warmup_epochs");
    c.warmup_start = get_num(&r, "warmup_start");
    c.min_lr = get_num(&r, "min_lr");
    c.step_epochs = get_num(&r, "step_epochs");
    c.gamma = get_num(&r, "gamma");
    c.clip_norm = (float)get_num(&r, "clip_norm");
    c.freeze_backbone = (int)get_int(&r, "freeze_backbone");
    mcnn_json_free(&doc);
    if (r.s == MCNN_OK) *cfg = c;
    return r.s;
}

mcnn_status mcnn_trainer_resume(mcnn_trainer *t, const char *path)
{
    mcnn_safetensors *st;
    MCNN_TRY(mcnn_safetensors_open(&st, path));
    mcnn_json_doc doc;
    mcnn_status s = meta_json(&doc, st, "train_state");
    if (s != MCNN_OK) {
        mcnn_safetensors_close(st);
        return s;
    }
    reader r = {doc.root, path, "train_state", MCNN_OK};
    const int64_t step = get_int(&r, "step"), epoch = get_int(&r, "epoch");
    const int64_t epoch_step = get_int(&r, "epoch_step"), spe = get_int(&r, "steps_per_epoch");
    const int64_t count = get_int(&r, "train_count");
    const mcnn_json *rng = member(&r, "rng", MCNN_JSON_ARRAY);
    mcnn_rng saved = {{0}};
    if (r.s == MCNN_OK && rng->count != 4)
        r.s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: \"train_state\": rng needs 4 words", path);
    for (int i = 0; r.s == MCNN_OK && i < 4; i++)
        saved.s[i] = get_u64_string(&r, mcnn_json_at(rng, (size_t)i), 16);
    mcnn_json_free(&doc);
    s = r.s;
    if (s == MCNN_OK && (count != t->train_count || spe != t->steps_per_epoch))
        s = mcnn_set_error(MCNN_ERR_ARG, "%s: the run had %lld training samples (%lld steps per "
                           "epoch); this one has %d (%lld): resume with the same data and batch",
                           path, (long long)count, (long long)spe, t->train_count,
                           (long long)t->steps_per_epoch);
    if (s == MCNN_OK && (step < 0 || epoch < 0 || epoch_step < 0 || epoch_step >= spe ||
                         step != epoch * spe + epoch_step))
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: inconsistent position (step %lld, epoch %lld, "
                           "step %lld of %lld in it)", path, (long long)step, (long long)epoch,
                           (long long)epoch_step, (long long)spe);
    mcnn_params *p = mcnn_classifier_params(t->model);
    for (int v = 0; s == MCNN_OK && v < (t->opt.v ? 2 : 1); v++) {
        float *block = v ? t->opt.v : t->opt.m;
        for (int i = 0; s == MCNN_OK && i < p->count; i++) {
            const mcnn_param *row = &p->table[i];
            char name[160];
            snprintf(name, sizeof name, "optimizer.%s.%s", v ? "v" : "m", row->name);
            s = mcnn_safetensors_load_f32(st, name, block + row->offset, row->ndim, row->shape);
        }
    }
    if (s == MCNN_OK && t->cfg.loss == MCNN_LOSS_BCE) {
        const mcnn_st_tensor *pw = mcnn_safetensors_find(st, "optimizer.pos_weight");
        float *buf = pw ? malloc((size_t)t->K * sizeof(float)) : NULL;
        if (pw && !buf) s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
        if (s == MCNN_OK && pw)
            s = mcnn_safetensors_load_f32(st, "optimizer.pos_weight", buf, 1,
                                          (int64_t[]){t->K});
        if (s == MCNN_OK) s = mcnn_trainer_set_pos_weight(t, buf);
        free(buf);
    }
    mcnn_safetensors_close(st);
    if (s != MCNN_OK) return s;
    t->opt.step = step;
    t->epoch = (int)epoch;
    t->epoch_step = epoch_step;
    t->rng = saved;
    t->micro = 0;
    return MCNN_OK;
}
