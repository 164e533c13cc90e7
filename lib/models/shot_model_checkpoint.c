/* Shot model checkpoints:
 *   tensors   the parameters under their names; with a trainer, optimizer.m.<name> and
 *             optimizer.v.<name> (AdamW's moments)
 *   metadata  shot_model.{kind,D,K,num_classes,hidden,layers,heads}; with a trainer,
 *             optimizer.{step,lr,weight_decay,beta1,beta2,eps} (doubles with 17 digits, so they
 *             read back exactly) */
#include "shot_model_internal.h"
#include "checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The same table over another block (an optimizer moment laid out like the values). */
static mcnn_params table_over(const mcnn_params *p, float *block)
{
    mcnn_params v = *p;
    v.data = block, v.grad = NULL;
    return v;
}

mcnn_status mcnn_shot_model_save(const mcnn_shot_model *m, const mcnn_shot_trainer *t,
                                 const char *path)
{
    if (!m || !path) return mcnn_set_error(MCNN_ERR_ARG, "shot model save: NULL argument");
    const int n = m->params.count, tables = t ? 3 : 1;
    mcnn_st_entry *e = calloc((size_t)tables * n + 1, sizeof *e);
    char *names = malloc((size_t)tables * n * 128 + 1);
    if (!e || !names) {
        free(e), free(names);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    }
    int k = mcnn_params_entries(&m->params, 0, "", e, names);
    if (t) {
        const mcnn_params mom = table_over(&m->params, t->opt.m), sq = table_over(&m->params, t->opt.v);
        k += mcnn_params_entries(&mom, 0, "optimizer.m.", e + k, names + (size_t)k * 128);
        k += mcnn_params_entries(&sq, 0, "optimizer.v.", e + k, names + (size_t)k * 128);
    }
    const mcnn_shot_config *c = &m->cfg;
    char v[13][40];
    snprintf(v[0], 40, "%s", mcnn_shot_kind_name(c->kind));
    const int ints[6] = {c->D, c->K, c->num_classes, c->hidden, c->layers, c->heads};
    for (int i = 0; i < 6; i++) snprintf(v[1 + i], 40, "%d", ints[i]);
    const char *meta[26] = {"shot_model.kind", v[0], "shot_model.D", v[1], "shot_model.K", v[2],
                            "shot_model.num_classes", v[3], "shot_model.hidden", v[4],
                            "shot_model.layers", v[5], "shot_model.heads", v[6]};
    int nmeta = 7;
    if (t) {
        snprintf(v[7], 40, "%" PRId64, t->opt.step);
        const double d[5] = {t->opt.lr, t->opt.weight_decay, t->opt.beta1, t->opt.beta2, t->opt.eps};
        for (int i = 0; i < 5; i++) snprintf(v[8 + i], 40, "%.17g", d[i]);
        const char *keys[6] = {"optimizer.step", "optimizer.lr", "optimizer.weight_decay",
                               "optimizer.beta1", "optimizer.beta2", "optimizer.eps"};
        for (int i = 0; i < 6; i++) meta[2 * nmeta] = keys[i], meta[2 * nmeta + 1] = v[7 + i], nmeta++;
    }
    mcnn_status s = mcnn_safetensors_write(path, e, k, meta, nmeta);
    free(e), free(names);
    return s;
}

/* A metadata number, whole and in range, or an error naming the file and the key. */
static mcnn_status meta_number(double *out, const mcnn_safetensors *st, const char *key,
                               int integer)
{
    const char *s = mcnn_safetensors_meta(st, key);
    if (!s)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: metadata '%s' is missing (not a shot model?)",
                              mcnn_safetensors_path(st), key);
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (end == s || *end || errno || (integer && (v != (double)(int64_t)v || v < 0 || v > 1e15)))
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: metadata '%s' is '%s', not a%s number",
                              mcnn_safetensors_path(st), key, s, integer ? " whole" : "");
    *out = v;
    return MCNN_OK;
}

static int prefixed(const char *name, char *buf, size_t size, void *ctx)
{
    snprintf(buf, size, "%s%s", (const char *)ctx, name);
    return 1;
}

static mcnn_status load_into(mcnn_shot_model **out, mcnn_shot_trainer *t, mcnn_safetensors *st,
                             int max_batch)
{
    mcnn_shot_config c = {0};
    const char *kind = mcnn_safetensors_meta(st, "shot_model.kind");
    if (!kind)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: metadata 'shot_model.kind' is missing (not a shot model?)",
                              mcnn_safetensors_path(st));
    MCNN_TRY(mcnn_shot_kind_parse(&c.kind, kind));
    const char *keys[6] = {"shot_model.D", "shot_model.K", "shot_model.num_classes",
                           "shot_model.hidden", "shot_model.layers", "shot_model.heads"};
    int *fields[6] = {&c.D, &c.K, &c.num_classes, &c.hidden, &c.layers, &c.heads};
    for (int i = 0; i < 6; i++) {
        double v;
        MCNN_TRY(meta_number(&v, st, keys[i], 1));
        *fields[i] = v > 1e9 ? -1 : (int)v; /* out of range: the config check names it */
    }
    if ((c.kind != MCNN_SHOT_MEAN && (c.hidden == 0 || c.layers == 0)) ||
        (c.kind == MCNN_SHOT_TRANSFORMER && c.heads == 0))
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: shot model sizes of 0 in the metadata",
                              mcnn_safetensors_path(st));
    mcnn_status s = shot_model_build(out, &c, max_batch);
    if (s != MCNN_OK) return mcnn_wrap_error(s, "%s: ", mcnn_safetensors_path(st));
    mcnn_shot_model *m = *out;
    s = mcnn_params_check_file(&m->params, st, NULL, NULL);
    if (s == MCNN_OK) s = mcnn_params_load(&m->params, st, NULL, NULL, NULL);
    if (s == MCNN_OK && t) {
        s = mcnn_shot_trainer_init(t, m);
        mcnn_params mom = table_over(&m->params, t->opt.m), sq = table_over(&m->params, t->opt.v);
        if (s == MCNN_OK) s = mcnn_params_load(&mom, st, prefixed, "optimizer.m.", NULL);
        if (s == MCNN_OK) s = mcnn_params_load(&sq, st, prefixed, "optimizer.v.", NULL);
        double d[6];
        const char *okeys[6] = {"optimizer.step", "optimizer.lr", "optimizer.weight_decay",
                                "optimizer.beta1", "optimizer.beta2", "optimizer.eps"};
        for (int i = 0; i < 6 && s == MCNN_OK; i++) s = meta_number(&d[i], st, okeys[i], i == 0);
        if (s == MCNN_OK) {
            t->opt.step = (int64_t)d[0], t->opt.lr = d[1], t->opt.weight_decay = d[2];
            t->opt.beta1 = d[3], t->opt.beta2 = d[4], t->opt.eps = d[5];
        } else {
            mcnn_shot_trainer_free(t);
        }
    }
    if (s != MCNN_OK) {
        mcnn_shot_model_free(m);
        *out = NULL;
    }
    return s;
}

mcnn_status mcnn_shot_model_load(mcnn_shot_model **out, mcnn_shot_trainer *t, const char *path,
                                 int max_batch)
{
    if (!out || !path) return mcnn_set_error(MCNN_ERR_ARG, "shot model load: NULL argument");
    *out = NULL;
    mcnn_safetensors *st = NULL;
    MCNN_TRY(mcnn_safetensors_open(&st, path));
    mcnn_status s = load_into(out, t, st, max_batch);
    mcnn_safetensors_close(st);
    return s;
}
