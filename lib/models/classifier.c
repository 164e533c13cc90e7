/* One handle over the two image classifiers (ResNet, ViT): creation by architecture name,
 * loading any checkpoint of either, forward/backward, a frozen-backbone mode for linear probes,
 * and the class names and preprocessing that travel with the weights in the metadata. */
#include "internal.h"
#include "checkpoint.h"
#include "io/json.h"
#include "mcnn/classifier.h"
#include "mcnn/data.h"
#include "resnet_internal.h"
#include "session_internal.h"
#include "vit_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mcnn_classifier {
    mcnn_arch arch;
    mcnn_resnet *resnet;
    mcnn_vit *vit;
    int image_size, in_channels, num_classes;
    char **labels;                  /* num_classes names */
    mcnn_preprocess_config pre;     /* crop = image_size */
    int multilabel, frozen;
};

/* ---- small-variant defaults ---------------------------------------------------------------- *
 * Chosen on Fashion-MNIST (28 x 28, 2 cores; docs/demo.md has the measurements). */
enum { SMALL_RESNET_WIDTH = 32, SMALL_RESNET_DEPTH = 1 };
enum { SMALL_VIT_WIDTH = 128, SMALL_VIT_DEPTH = 6, SMALL_VIT_HEADS_DIV = 32 };

static int small_vit_patch(int image_size)
{
    return image_size % 4 == 0 && image_size <= 64 ? 4 : image_size % 7 == 0 ? 7 : 16;
}

/* The data's defaults (mcnn_transform_default), except that a gray image is only resized to the
 * model's size (small images: nothing to crop away). */
static void default_preprocess(mcnn_preprocess_config *p, int size, int channels)
{
    *p = mcnn_transform_default(size, channels).preprocess;
    if (channels == 1) p->resize = size;
}

static mcnn_status numeric_labels(mcnn_classifier *c)
{
    c->labels = calloc((size_t)c->num_classes, sizeof(char *));
    if (!c->labels) return mcnn_set_error(MCNN_ERR_NOMEM, "classifier: out of memory");
    for (int k = 0; k < c->num_classes; k++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", k);
        if (!(c->labels[k] = malloc(strlen(buf) + 1)))
            return mcnn_set_error(MCNN_ERR_NOMEM, "classifier: out of memory");
        strcpy(c->labels[k], buf);
    }
    return MCNN_OK;
}

void mcnn_classifier_free(mcnn_classifier *c)
{
    if (!c) return;
    mcnn_resnet_free(c->resnet);
    mcnn_vit_free(c->vit);
    if (c->labels)
        for (int k = 0; k < c->num_classes; k++) free(c->labels[k]);
    free(c->labels);
    free(c);
}

mcnn_status mcnn_classifier_create(mcnn_classifier **out, const mcnn_classifier_config *cfg,
                                   uint64_t seed)
{
    *out = NULL;
    const char *arch = cfg->arch ? cfg->arch : "";
    const int small = strcmp(arch, "resnet-small") == 0 || strcmp(arch, "vit-small") == 0;
    const int size = cfg->image_size ? cfg->image_size : small ? 28 : 224;
    const int channels = cfg->in_channels ? cfg->in_channels : 3;
    if (cfg->num_classes <= 0 || size <= 0 || channels <= 0)
        return mcnn_set_error(MCNN_ERR_ARG, "classifier: %d classes, image size %d, %d channels",
                              cfg->num_classes, size, channels);
    mcnn_classifier *c = calloc(1, sizeof *c);
    if (!c) return mcnn_set_error(MCNN_ERR_NOMEM, "classifier: out of memory");
    c->image_size = size, c->in_channels = channels, c->num_classes = cfg->num_classes;
    mcnn_status s = MCNN_OK;
    if (strcmp(arch, "resnet50") == 0 || strcmp(arch, "resnet-small") == 0) {
        mcnn_resnet_config rc;
        if (!small) {
            rc = mcnn_resnet_config_standard(50, cfg->num_classes);
        } else {
            const int w = cfg->width ? cfg->width : SMALL_RESNET_WIDTH;
            const int d = cfg->depth ? cfg->depth : SMALL_RESNET_DEPTH;
            rc = (mcnn_resnet_config){.block = MCNN_RESNET_BASIC, .stem = MCNN_RESNET_STEM_SMALL,
                                      .stem_width = w, .stages = 3, .blocks = {d, d, d},
                                      .widths = {w, 2 * w, 4 * w},
                                      .num_classes = cfg->num_classes, .bn_eps = 1e-5f,
                                      .bn_momentum = 0.1f};
        }
        rc.in_channels = channels;
        c->arch = MCNN_ARCH_RESNET;
        s = mcnn_resnet_create(&c->resnet, &rc, seed);
    } else if (strcmp(arch, "vit-b16") == 0 || strcmp(arch, "vit-small") == 0) {
        mcnn_vit_config vc;
        if (!small) {
            vc = mcnn_vit_b16_config(cfg->num_classes);
        } else {
            const int w = cfg->width ? cfg->width : SMALL_VIT_WIDTH;
            vc = (mcnn_vit_config){.patch_size = cfg->patch ? cfg->patch : small_vit_patch(size),
                                   .width = w, .layers = cfg->depth ? cfg->depth : SMALL_VIT_DEPTH,
                                   .heads = w % SMALL_VIT_HEADS_DIV ? 1 : w / SMALL_VIT_HEADS_DIV,
                                   .mlp_dim = 2 * w, .num_classes = cfg->num_classes,
                                   .ln_eps = 1e-6f};
        }
        if (cfg->heads) vc.heads = cfg->heads;
        if (cfg->patch) vc.patch_size = cfg->patch;
        vc.image_size = size;
        vc.in_channels = channels;
        c->arch = MCNN_ARCH_VIT;
        s = mcnn_vit_create(&c->vit, &vc, seed);
    } else {
        s = mcnn_set_error(MCNN_ERR_ARG, "classifier: unknown architecture '%s' (resnet50, "
                           "vit-b16, resnet-small, vit-small)", arch);
    }
    if (s == MCNN_OK) s = numeric_labels(c);
    if (s != MCNN_OK) {
        mcnn_classifier_free(c);
        return s;
    }
    default_preprocess(&c->pre, size, channels);
    *out = c;
    return MCNN_OK;
}

/* ---- metadata ------------------------------------------------------------------------------ */

/* The "labels" metadata into c->labels.  A list of another length is an error, unless the
 * head was replaced (new_head): then the old names do not apply and the numbers stay. */
static mcnn_status labels_from_json(mcnn_classifier *c, const char *text, const char *path,
                                    int new_head)
{
    mcnn_json_doc doc;
    mcnn_status s = mcnn_json_parse(&doc, text, strlen(text));
    if (s != MCNN_OK) return mcnn_wrap_error(s, "%s: metadata \"labels\": ", path);
    const mcnn_json *a = doc.root;
    if (new_head && a->type == MCNN_JSON_ARRAY && (int)a->count != c->num_classes) {
        c->multilabel = 0;
        mcnn_json_free(&doc);
        return MCNN_OK;
    }
    if (a->type != MCNN_JSON_ARRAY || (int)a->count != c->num_classes) {
        mcnn_json_free(&doc);
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: metadata \"labels\" is not an array of %d "
                              "strings (one per class)", path, c->num_classes);
    }
    int k = 0;
    for (const mcnn_json *e = a->child; e; e = e->next, k++) {
        if (e->type != MCNN_JSON_STRING || strlen(e->str) != e->len) {
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: label %d is not a string", path, k);
            break;
        }
        char *copy = malloc(e->len + 1);
        if (!copy) {
            s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        memcpy(copy, e->str, e->len + 1);
        free(c->labels[k]);
        c->labels[k] = copy;
    }
    mcnn_json_free(&doc);
    return s;
}

static int parse_filter(const char *v, mcnn_resample *f)
{
    static const char *const names[] = {"nearest", "box", "bilinear", "hamming", "bicubic",
                                        "lanczos"};
    for (int i = 0; i < 6; i++)
        if (strcmp(v, names[i]) == 0) return *f = (mcnn_resample)i, 1;
    return 0;
}

static const char *filter_name(mcnn_resample f)
{
    static const char *const names[] = {"nearest", "box", "bilinear", "hamming", "bicubic",
                                        "lanczos"};
    return (unsigned)f < 6 ? names[f] : "bilinear";
}

/* A whole number in [lo, hi], or -1. */
static int json_int_in(const mcnn_json *e, int lo, int hi)
{
    return e->type == MCNN_JSON_NUMBER && e->is_int && e->i >= lo && e->i <= hi ? (int)e->i : -1;
}

/* "mean" or "std" of the preprocess block into v: one number, or an array of one number or of
 * one per channel (at most 3), each finite (and > 0 for std).  Absent: v is kept. */
static mcnn_status json_floats(float *v, const mcnn_json *obj, const char *key, int channels,
                               const char *path)
{
    const mcnn_json *a = mcnn_json_get(obj, key);
    if (!a) return MCNN_OK;
    float got[3];
    int n = 0, ok = a->type == MCNN_JSON_NUMBER ||
                    (a->type == MCNN_JSON_ARRAY && (a->count == 1 || (int)a->count == channels));
    for (const mcnn_json *e = a->type == MCNN_JSON_ARRAY ? a->child : a; ok && e && n < 3;
         e = a->type == MCNN_JSON_ARRAY ? e->next : NULL) {
        ok = e->type == MCNN_JSON_NUMBER && isfinite((float)e->num) &&
             (strcmp(key, "std") != 0 || (float)e->num > 0);
        if (ok) got[n++] = (float)e->num;
    }
    if (!ok || n == 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: metadata \"preprocess\": \"%s\" must be "
                              "a finite number%s, alone or in an array of one%s", path, key,
                              strcmp(key, "std") == 0 ? " > 0" : "",
                              channels > 1 ? " or one per channel" : "");
    for (int i = 0; i < channels && i < 3; i++) v[i] = got[i < n ? i : n - 1];
    return MCNN_OK;
}

/* The preprocessing: the defaults for the model's input size, with every field of the
 * checkpoint's "preprocess" metadata over them.  A field present must be valid, else the load
 * fails naming the file and the field.  "size" is the size the model was trained at, which a
 * ResNet's shapes cannot tell (resnet = 1); image_size (not 0) overrides it. */
static mcnn_status preprocess_from_meta(mcnn_classifier *c, mcnn_safetensors *st, int resnet,
                                        int image_size)
{
    const char *path = mcnn_safetensors_path(st), *v = mcnn_safetensors_meta(st, "preprocess");
    mcnn_json_doc doc = {0};
    mcnn_status s = v ? mcnn_json_parse(&doc, v, strlen(v)) : MCNN_OK;
    if (s != MCNN_OK) return mcnn_wrap_error(s, "%s: metadata \"preprocess\": ", path);
    const mcnn_json *o = v ? doc.root : NULL, *e;
    int size = 0;
    const char *bad = NULL, *why = "";
    if (o && o->type != MCNN_JSON_OBJECT) bad = "", why = "is not a JSON object";
    else if (o && (e = mcnn_json_get(o, "size")) &&
             (size = json_int_in(e, 1, MCNN_CHECKPOINT_MAX_IMAGE)) < 0)
        bad = "size", why = "must be a whole number from 1 to 4096";
    if (!bad) {
        if (resnet && size > 0) c->image_size = size;
        if (image_size) c->image_size = image_size;
        default_preprocess(&c->pre, c->image_size, c->in_channels);
    }
    mcnn_preprocess_config *p = &c->pre;
    if (!bad && o) {
        if ((e = mcnn_json_get(o, "resize")) &&
            (p->resize = json_int_in(e, 1, MCNN_PREPROCESS_MAX_SIDE)) < 0)
            bad = "resize", why = "must be a whole number from 1 to 16384";
        else if ((e = mcnn_json_get(o, "channels")) &&
                 json_int_in(e, 1, 3) != (c->in_channels == 1 ? 1 : 3)) /* as saved */
            bad = "channels", why = "differs from the model's input channels";
        else if ((e = mcnn_json_get(o, "interpolation")) &&
                 (e->type != MCNN_JSON_STRING || !parse_filter(e->str, &p->filter)))
            bad = "interpolation", why = "must be nearest, box, bilinear, hamming, bicubic or "
                                         "lanczos";
    }
    if (bad)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: metadata \"preprocess\"%s%s%s %s", path,
                           *bad ? ": \"" : "", bad, *bad ? "\"" : "", why);
    const int channels = c->in_channels < 3 ? c->in_channels : 3;
    if (s == MCNN_OK && o) s = json_floats(p->mean, o, "mean", channels, path);
    if (s == MCNN_OK && o) s = json_floats(p->std, o, "std", channels, path);
    if (s == MCNN_OK && size > 0 && size != c->image_size && p->channels == 1)
        p->resize = c->image_size;
    if (v) mcnn_json_free(&doc);
    return s;
}

/* ---- loading ------------------------------------------------------------------------------- */

mcnn_status mcnn_classifier_load(mcnn_classifier **out, const char *path,
                                 const mcnn_classifier_load_options *opt)
{
    static const mcnn_classifier_load_options none = {0};
    if (!opt) opt = &none;
    *out = NULL;
    if (opt->image_size < 0 || opt->image_size > MCNN_CHECKPOINT_MAX_IMAGE ||
        opt->num_classes < 0 || opt->num_classes > MCNN_CHECKPOINT_MAX_DIM)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: image size %d (at most %d) or %d classes (at "
                              "most %d) asked for", path, opt->image_size,
                              MCNN_CHECKPOINT_MAX_IMAGE, opt->num_classes,
                              MCNN_CHECKPOINT_MAX_DIM);
    mcnn_safetensors *st;
    MCNN_TRY(mcnn_safetensors_open(&st, path));
    const char *arch = mcnn_safetensors_meta(st, "arch");
    mcnn_arch kind;
    if (arch && strcmp(arch, "resnet") == 0) kind = MCNN_ARCH_RESNET;
    else if (arch && strcmp(arch, "vit") == 0) kind = MCNN_ARCH_VIT;
    else if (mcnn_safetensors_find(st, "conv1.weight")) kind = MCNN_ARCH_RESNET;
    else if (mcnn_safetensors_find(st, "conv_proj.weight") ||
             mcnn_safetensors_find(st, "patch_embed.proj.weight")) kind = MCNN_ARCH_VIT;
    else {
        /* the message first: arch points into the file's header, freed by the close */
        mcnn_status bad = mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a ResNet or ViT classifier "
                                         "(metadata \"arch\" is %s%s%s, and neither "
                                         "'conv1.weight' nor 'conv_proj.weight' is there)", path,
                                         arch ? "'" : "", arch ? arch : "missing",
                                         arch ? "'" : "");
        mcnn_safetensors_close(st);
        return bad;
    }
    mcnn_classifier *c = calloc(1, sizeof *c);
    mcnn_status s = c ? MCNN_OK : mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    if (s == MCNN_OK && kind == MCNN_ARCH_RESNET) {
        mcnn_resnet_load_options o = {.num_classes = opt->num_classes, .seed = opt->seed,
                                      .precision = opt->precision,
                                      .inference_only = opt->inference_only};
        c->arch = kind;
        s = mcnn_resnet_load(&c->resnet, path, &o);
        if (s == MCNN_OK) {
            const mcnn_resnet_config *rc = mcnn_resnet_get_config(c->resnet);
            c->num_classes = rc->num_classes, c->in_channels = rc->in_channels;
            c->image_size = rc->stem == MCNN_RESNET_STEM_IMAGENET ? 224 : 32;
        }
    } else if (s == MCNN_OK) {
        mcnn_vit_load_options o = {.num_classes = opt->num_classes,
                                   .image_size = opt->image_size, .precision = opt->precision,
                                   .inference_only = opt->inference_only};
        c->arch = kind;
        s = mcnn_vit_load(&c->vit, path, &o);
        if (s == MCNN_OK) {
            const mcnn_vit_config *vc = mcnn_vit_get_config(c->vit);
            c->num_classes = vc->num_classes, c->in_channels = vc->in_channels;
            c->image_size = vc->image_size;
        }
    }
    if (s == MCNN_OK) s = numeric_labels(c);
    if (s == MCNN_OK)
        s = preprocess_from_meta(c, st, kind == MCNN_ARCH_RESNET, opt->image_size);
    if (s == MCNN_OK) {
        const char *ml = mcnn_safetensors_meta(st, "multilabel");
        c->multilabel = ml && strcmp(ml, "1") == 0;
        const char *labels = mcnn_safetensors_meta(st, "labels");
        if (labels) s = labels_from_json(c, labels, path, opt->num_classes != 0);
    }
    mcnn_safetensors_close(st);
    if (s != MCNN_OK) {
        mcnn_classifier_free(c);
        return s;
    }
    *out = c;
    return MCNN_OK;
}

/* ---- saving -------------------------------------------------------------------------------- */

static size_t json_labels(char *dst, char *const *labels, int K)
{
    size_t n = 0;
    if (dst) dst[n] = '[';
    n++;
    for (int k = 0; k < K; k++) {
        if (k) {
            if (dst) dst[n] = ',';
            n++;
        }
        n += mcnn_json_escape(dst ? dst + n : NULL, labels[k], strlen(labels[k]));
    }
    if (dst) dst[n] = ']', dst[n + 1] = 0;
    return n + 1;
}

mcnn_status mcnn_classifier_save_with(const mcnn_classifier *c, const char *path,
                                      const mcnn_st_entry *extra, int n_extra,
                                      const char *const *meta, int n_meta)
{
    if (c->resnet ? c->resnet->inference_only : c->vit->inference_only)
        return mcnn_inference_only_error("classifier_save");
    const mcnn_params *p = c->resnet ? &c->resnet->params : &c->vit->params;
    const mcnn_params *b = c->resnet ? &c->resnet->buffers : NULL;
    const int nb = b ? b->count : 0, nbt = nb / 2; /* BN buffers come in pairs */
    const int n = p->count + nb + nbt + n_extra;
    const size_t labels_len = json_labels(NULL, c->labels, c->num_classes) + 1;
    mcnn_st_entry *entries = calloc((size_t)n, sizeof *entries);
    char *names = malloc((size_t)(p->count + nb + nbt) * 128 + 1);
    char *labels = malloc(labels_len);
    const char **all_meta = malloc((size_t)(2 * n_meta + 24) * sizeof(char *));
    if (!entries || !names || !labels || !all_meta) {
        free(entries), free(names), free(labels), free(all_meta);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    }
    int k = mcnn_params_entries(p, 0, "", entries, names);
    if (b) {
        k += mcnn_params_entries(b, 0, "", entries + k, names + (size_t)k * 128);
        for (int i = 0; i < nb; i += 2) { /* PyTorch's num_batches_tracked, for strict loads */
            const char *mean = b->table[i].name;
            char *name = names + (size_t)k * 128;
            snprintf(name, 128, "%.*snum_batches_tracked",
                     (int)(strlen(mean) - strlen("running_mean")), mean);
            entries[k++] = (mcnn_st_entry){.name = name, .dtype = MCNN_DTYPE_I64, .ndim = 0,
                                           .data = &c->resnet->num_batches_tracked};
        }
    }
    for (int i = 0; i < n_extra; i++) entries[k++] = extra[i];
    json_labels(labels, c->labels, c->num_classes);

    char config[1024], heads[16] = "", pre[512], mean[96], std[96], size[16], resize[16];
    const mcnn_preprocess_config *pp = &c->pre;
    const int ch = pp->channels == 1 ? 1 : 3;
    if (c->vit) {
        const mcnn_vit_config *v = &c->vit->cfg;
        snprintf(heads, sizeof heads, "%d", v->heads);
        snprintf(config, sizeof config,
                 "{\"arch\":\"vit\",\"image_size\":%d,\"patch_size\":%d,\"in_channels\":%d,"
                 "\"width\":%d,\"layers\":%d,\"heads\":%d,\"mlp_dim\":%d,\"num_classes\":%d,"
                 "\"ln_eps\":%g}", v->image_size, v->patch_size, v->in_channels, v->width,
                 v->layers, v->heads, v->mlp_dim, v->num_classes, v->ln_eps);
    } else {
        mcnn_resnet_config_json(config, sizeof config, &c->resnet->cfg);
    }
    snprintf(mean, sizeof mean, ch == 1 ? "%.9g" : "%.9g,%.9g,%.9g", pp->mean[0], pp->mean[1],
             pp->mean[2]);
    snprintf(std, sizeof std, ch == 1 ? "%.9g" : "%.9g,%.9g,%.9g", pp->std[0], pp->std[1],
             pp->std[2]);
    snprintf(pre, sizeof pre, "{\"size\":%d,\"resize\":%d,\"channels\":%d,\"mean\":[%s],"
             "\"std\":[%s],\"interpolation\":\"%s\"}", pp->crop, pp->resize, ch, mean, std,
             filter_name(pp->filter));
    snprintf(size, sizeof size, "%d", pp->crop);
    snprintf(resize, sizeof resize, "%d", pp->resize);
    int m = 0;
#define META(key, value) (all_meta[m++] = (key), all_meta[m++] = (value))
    META("arch", c->vit ? "vit" : "resnet");
    META("config", config);
    if (c->vit) META("heads", heads);
    META("labels", labels);
    META("preprocess", pre);
    META("resize", resize);
    META("crop", size);
    META("mean", mean);
    META("std", std);
    META("interpolation", filter_name(pp->filter));
    META("multilabel", c->multilabel ? "1" : "0");
#undef META
    for (int i = 0; i < 2 * n_meta; i++) all_meta[m++] = meta[i];
    mcnn_status s = mcnn_safetensors_write(path, entries, k, all_meta, m / 2);
    free(entries), free(names), free(labels), free(all_meta);
    return s;
}

mcnn_status mcnn_classifier_save(const mcnn_classifier *c, const char *path)
{
    return mcnn_classifier_save_with(c, path, NULL, 0, NULL, 0);
}

/* ---- accessors ----------------------------------------------------------------------------- */

mcnn_arch mcnn_classifier_arch(const mcnn_classifier *c) { return c->arch; }
const char *mcnn_classifier_arch_name(const mcnn_classifier *c)
{
    return c->arch == MCNN_ARCH_VIT ? "vit" : "resnet";
}
int mcnn_classifier_num_classes(const mcnn_classifier *c) { return c->num_classes; }
int mcnn_classifier_image_size(const mcnn_classifier *c) { return c->image_size; }
int mcnn_classifier_in_channels(const mcnn_classifier *c) { return c->in_channels; }
void *mcnn_classifier_model(mcnn_classifier *c)
{
    return c->resnet ? (void *)c->resnet : (void *)c->vit;
}

mcnn_status mcnn_classifier_set_labels(mcnn_classifier *c, const char *const *names, int count)
{
    if (count != c->num_classes)
        return mcnn_set_error(MCNN_ERR_ARG, "classifier: %d labels for %d classes", count,
                              c->num_classes);
    for (int k = 0; k < count; k++) {
        const size_t n = strlen(names[k]) + 1;
        char *copy = malloc(n);
        if (!copy) return mcnn_set_error(MCNN_ERR_NOMEM, "classifier: out of memory");
        memcpy(copy, names[k], n);
        free(c->labels[k]);
        c->labels[k] = copy;
    }
    return MCNN_OK;
}

const char *mcnn_classifier_label(const mcnn_classifier *c, int k)
{
    return k >= 0 && k < c->num_classes ? c->labels[k] : NULL;
}

const mcnn_preprocess_config *mcnn_classifier_get_preprocess(const mcnn_classifier *c)
{
    return &c->pre;
}

void mcnn_classifier_set_preprocess(mcnn_classifier *c, const mcnn_preprocess_config *p)
{
    c->pre = *p;
}

void mcnn_classifier_set_multilabel(mcnn_classifier *c, int multilabel)
{
    c->multilabel = multilabel != 0;
}

int mcnn_classifier_multilabel(const mcnn_classifier *c) { return c->multilabel; }

mcnn_params *mcnn_classifier_params(mcnn_classifier *c)
{
    return c->resnet ? mcnn_resnet_params(c->resnet) : mcnn_vit_params(c->vit);
}

mcnn_params *mcnn_classifier_buffers(mcnn_classifier *c)
{
    return c->resnet ? mcnn_resnet_buffers(c->resnet) : NULL;
}

mcnn_status mcnn_classifier_set_precision(mcnn_classifier *c, mcnn_precision p)
{
    return c->resnet ? mcnn_resnet_set_precision(c->resnet, p) : mcnn_vit_set_precision(c->vit, p);
}

mcnn_status mcnn_classifier_release_training_weights(mcnn_classifier *c)
{
    return c->resnet ? mcnn_resnet_release_training_weights(c->resnet)
                     : mcnn_vit_release_training_weights(c->vit);
}

mcnn_precision mcnn_classifier_precision(const mcnn_classifier *c)
{
    return c->resnet ? mcnn_resnet_precision(c->resnet) : mcnn_vit_precision(c->vit);
}

void mcnn_classifier_freeze_backbone(mcnn_classifier *c, int freeze)
{
    c->frozen = freeze != 0;
}

int mcnn_classifier_trainable(const mcnn_classifier *c, const mcnn_param **rows)
{
    const mcnn_params *p = c->resnet ? &c->resnet->params : &c->vit->params;
    if (!c->frozen) {
        *rows = p->table;
        return p->count;
    }
    /* the head is the table's last two rows in both models (weight, bias) */
    *rows = p->table + p->count - 2;
    return 2;
}

/* ---- running ------------------------------------------------------------------------------- */

mcnn_status mcnn_classifier_forward(mcnn_classifier *c, float *logits, const float *images, int B,
                                    int train)
{
    if (c->resnet) {
        const mcnn_resnet_mode mode = !train ? MCNN_RESNET_EVAL
                                      : c->frozen ? MCNN_RESNET_EVAL : MCNN_RESNET_TRAIN;
        return mcnn_resnet_forward(c->resnet, logits, images, B, c->image_size, c->image_size,
                                   mode);
    }
    return mcnn_vit_forward(c->vit, logits, images, B, train && !c->frozen);
}

mcnn_status mcnn_classifier_backward(mcnn_classifier *c, const float *dlogits)
{
    if (c->resnet)
        return c->frozen ? mcnn_resnet_backward_head(c->resnet, dlogits)
                         : mcnn_resnet_backward(c->resnet, dlogits);
    return c->frozen ? mcnn_vit_backward_head(c->vit, dlogits) : mcnn_vit_backward(c->vit, dlogits);
}

/* ---- sessions: a session of the network inside, in the classifier's envelope --------------- */
static mcnn_status init_inner(void *inner, const void *model)
{
    const mcnn_classifier *c = model;
    return c->resnet ? mcnn_resnet_session_create(inner, c->resnet)
                     : mcnn_vit_session_create(inner, c->vit);
}

static void release_inner(void *inner)
{
    mcnn_session_free(*(mcnn_session **)inner);
}

mcnn_status mcnn_classifier_session_create(mcnn_session **out, const mcnn_classifier *c)
{
    return mcnn_session_create(out, SESSION_CLASSIFIER, c, sizeof(mcnn_session *), init_inner,
                               release_inner);
}

mcnn_status mcnn_classifier_session_forward(mcnn_session *s, float *logits, const float *images,
                                            int B)
{
    MCNN_TRY(mcnn_session_check(s, SESSION_CLASSIFIER, "classifier_session_forward"));
    const mcnn_classifier *c = s->model;
    mcnn_session *inner = *(mcnn_session **)s->acts;
    if (c->resnet)
        return mcnn_resnet_session_forward(inner, logits, images, B, c->image_size,
                                           c->image_size);
    return mcnn_vit_session_forward(inner, logits, images, B);
}
