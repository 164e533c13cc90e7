/* mcnn-classify's model: where the weights are, the checkpoint's kind (CLIP or a classifier),
 * its labels, its preprocessing with the options applied, and for CLIP the labels' text
 * embeddings (from the cache when it has them). */
#define _XOPEN_SOURCE 700
#include "classify.h"

#include "../common/checkpoint_preprocess.h"
#include "../common/text_cache.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMAGENET_LABELS "imagenet_labels.txt"

/* ---- where the weights are ---------------------------------------------------------------- */
static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* $MCNN_WEIGHTS, else ./weights, else weights/ next to the build folder holding the program. */
static void weights_dir(char *out, size_t size)
{
    const char *env = getenv("MCNN_WEIGHTS");
    if (env && *env) {
        snprintf(out, size, "%s", env);
        return;
    }
    if (is_dir("weights")) {
        snprintf(out, size, "weights");
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 3; up++) { /* build/, build/sanitize/, ... */
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = '\0';
            if (strlen(exe) + 9 > size) break;
            snprintf(out, size, "%s/weights", exe);
            if (is_dir(out)) return;
        }
    }
    snprintf(out, size, "weights");
}

/* A file that is not there, or is a folder: named, with the command that fetches it. */
static int missing(const char *what, const char *path, const char *fetch_hint)
{
    if (is_dir(path)) app_error("%s %s is a directory, not a file", what, path);
    else app_error("%s %s not found%s%s", what, path, fetch_hint ? "; fetch it with: " : "",
                   fetch_hint ? fetch_hint : "");
    return -1;
}

/* ---- labels ------------------------------------------------------------------------------- */
static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Refuse a list with a repeated label: its scores would be split between two entries. */
static int check_unique(const label_set *ls, const char *source)
{
    const char **s = malloc((size_t)ls->n * sizeof *s);
    if (!s) return app_error("out of memory"), -1;
    memcpy(s, ls->v, (size_t)ls->n * sizeof *s);
    qsort(s, (size_t)ls->n, sizeof *s, by_string);
    for (int i = 1; i < ls->n; i++)
        if (strcmp(s[i], s[i - 1]) == 0) {
            app_error("%s: label '%s' appears more than once", source, s[i]);
            free(s);
            return -1;
        }
    free(s);
    return 0;
}

/* A label file, read as mcnn-train reads it (mcnn_read_label_list: one label per line); a
 * missing default file gets the command that fetches it. */
static int read_labels(label_set *ls, const char *path, const char *fetch_hint)
{
    memset(ls, 0, sizeof *ls);
    struct stat st;
    if ((stat(path, &st) != 0 && errno == ENOENT) || is_dir(path))
        return missing("label file", path, fetch_hint);
    if (mcnn_read_label_list(&ls->names, &ls->n, path) != MCNN_OK) {
        app_error("%s", mcnn_last_error());
        return -1;
    }
    ls->v = (const char *const *)ls->names;
    return check_unique(ls, path);
}

/* A classifier's class names (its "labels" metadata, or "0", "1", ...). */
static int labels_from_classifier(label_set *ls, const mcnn_classifier *c, const char *path)
{
    memset(ls, 0, sizeof *ls);
    const int n = mcnn_classifier_num_classes(c);
    ls->names = calloc((size_t)n, sizeof *ls->names);
    if (!ls->names) return app_error("out of memory"), -1;
    ls->v = (const char *const *)ls->names;
    for (ls->n = 0; ls->n < n; ls->n++) ls->names[ls->n] = dup_str(mcnn_classifier_label(c, ls->n));
    return check_unique(ls, path);
}

static void labels_free(label_set *ls)
{
    mcnn_free_label_list(ls->names, ls->n);
    memset(ls, 0, sizeof *ls);
}

/* ---- the model ---------------------------------------------------------------------------- */
/* What kind of checkpoint: "arch" metadata first, then the tensor names. */
static int detect_kind(model_kind *kind, mcnn_safetensors *st)
{
    const char *arch = mcnn_safetensors_meta(st, "arch");
    if (arch && (strcmp(arch, "vit") == 0 || strcmp(arch, "resnet") == 0))
        return *kind = MODEL_CLASSIFIER, 0;
    if ((arch && strstr(arch, "clip")) || mcnn_safetensors_find(st, "visual.conv1.weight") ||
        mcnn_safetensors_find(st, "vision_model.embeddings.patch_embedding.weight"))
        return *kind = MODEL_CLIP, 0;
    if (mcnn_safetensors_find(st, "conv_proj.weight") ||
        mcnn_safetensors_find(st, "patch_embed.proj.weight") ||
        (mcnn_safetensors_find(st, "conv1.weight") && mcnn_safetensors_find(st, "fc.weight")))
        return *kind = MODEL_CLASSIFIER, 0;
    return -1;
}

/* The vocabulary next to the model (or in the weights folder): OpenAI's file, else Hugging
 * Face's vocab.json. */
static void find_vocab(char *out, size_t size, const char *model_path, const char *wdir)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(model_path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - model_path) : 1,
             slash ? model_path : ".");
    const char *dirs[] = {dir, wdir}, *names[] = {DEFAULT_VOCAB, "vocab.json"};
    for (int n = 0; n < 2; n++)
        for (int d = 0; d < 2; d++) {
            snprintf(out, size, "%s/%s", dirs[d], names[n]);
            if (is_file(out)) return;
        }
    snprintf(out, size, "%s/%s", dir, DEFAULT_VOCAB);
}

/* Preprocessing: the family's defaults and the checkpoint's metadata (for classifiers, as
 * mcnn_classifier_load reads them: "preprocess", "resize", "crop", "mean", "std",
 * "interpolation"), then the options. */
static int set_preprocess(model *m, const options *o, mcnn_safetensors *st)
{
    if (m->kind == MODEL_CLIP) {
        m->pp = mcnn_clip_preprocess_config(m->clip);
    } else {
        m->pp = checkpoint_preprocess(m->cls, st, m->size);
    }
    if (o->resize_set) m->pp.resize = o->resize;
    if (o->crop_set) m->pp.crop = o->crop;
    if (o->mean_set) memcpy(m->pp.mean, o->mean, sizeof o->mean);
    if (o->std_set) memcpy(m->pp.std, o->std, sizeof o->std);
    if (o->interp) parse_interp(o->interp, &m->pp.filter); /* checked with the options */
    if (m->pp.crop <= 0 || m->pp.resize < 0) {
        app_error("%s: the checkpoint's crop %d / resize %d are unusable", m->path, m->pp.crop,
                  m->pp.resize);
        return -1;
    }
    if (m->pp.crop != m->size) {
        app_error("--crop %d: %s takes %d x %d images", m->pp.crop, m->path, m->size, m->size);
        return -1;
    }
    return 0;
}

static const char *download_hint(const char *file)
{
    if (strstr(file, DEFAULT_MODEL) || strstr(file, DEFAULT_VOCAB))
        return "weights/download.sh clip-vit-b32";
    if (strstr(file, DEFAULT_LABELS)) return "weights/download.sh movieclip";
    return NULL;
}

/* A library failure as the app's error: the message names the file and the problem. */
static int lib_error(void)
{
    app_error("%s", mcnn_last_error());
    return -1;
}

static int load_clip_text(model *m, const options *o, const char *wdir)
{
    /* labels */
    char path[PATH_MAX + 64];
    if (o->labels) snprintf(path, sizeof path, "%s", o->labels);
    else snprintf(path, sizeof path, "%s/%s", wdir, DEFAULT_LABELS);
    if (read_labels(&m->labels, path, o->labels ? NULL : download_hint(path))) return -1;
    /* tokenizer */
    char vocab[PATH_MAX + 64];
    if (o->vocab) snprintf(vocab, sizeof vocab, "%s", o->vocab);
    else find_vocab(vocab, sizeof vocab, m->path, wdir);
    if (!is_file(vocab))
        return missing("CLIP vocabulary", vocab,
                       "weights/download.sh clip-vit-b32 (or give --vocab FILE)");
    /* text embeddings, from the cache when it has them (then the tokenizer is not needed) */
    static const char *const default_prompt[] = {MOVIECLIP_PROMPT};
    const char *const *tmpl = o->prompts.count ? o->prompts.items : default_prompt;
    const int T = o->prompts.count ? o->prompts.count : 1, L = m->labels.n;
    m->text = malloc((size_t)L * m->dim * sizeof(float));
    if (!m->text) return app_error("out of memory"), -1;
    text_cache cache;
    text_cache_init(&cache, m->path, vocab, m->labels.v, L, tmpl, T, m->dim,
                    mcnn_precision_name(mcnn_clip_precision(m->clip)));
    if (!o->no_cache && text_cache_load(&cache, m->text, L, m->dim)) return 0;
    mcnn_tokenizer *tok;
    if (mcnn_tokenizer_load(&tok, vocab) != MCNN_OK) return lib_error();
    mcnn_status s = mcnn_clip_text_embeddings(m->clip, tok, m->text, m->labels.v, L, tmpl, T);
    mcnn_tokenizer_free(tok);
    if (s != MCNN_OK) {
        app_error("%s", mcnn_last_error());
        return -1;
    }
    if (!o->no_cache) text_cache_save(&cache, m->text, L, m->dim);
    return 0;
}

static int load_opened(model *m, const options *o, mcnn_safetensors *st, const char *wdir)
{
    const char *path = m->path;
    if (detect_kind(&m->kind, st)) {
        app_error("%s: not a CLIP, ViT or ResNet checkpoint (no \"arch\" metadata and no known "
                  "tensor names)", path);
        return -1;
    }
    /* --precision: inference only, the block weights packed as they are read and their fp32
     * copies never kept (docs/precision.md "Memory"); none: fp32 as trained */
    mcnn_precision precision = MCNN_PRECISION_FP32;
    if (o->precision && mcnn_precision_parse(o->precision, &precision) != MCNN_OK)
        return lib_error();
    const int inference_only = o->precision != NULL;
    if (m->kind == MODEL_CLIP) {
        const mcnn_clip_load_options co = {.precision = precision,
                                           .inference_only = inference_only};
        if (mcnn_clip_load(&m->clip, path, &co) != MCNN_OK) return lib_error();
        const mcnn_clip_config *c = mcnn_clip_get_config(m->clip);
        m->dim = c->embed_dim;
        m->size = c->image_size;
        m->channels = 3;
    } else {
        /* --crop: a ViT's positional embedding is resampled; a ResNet takes any size */
        mcnn_classifier_load_options lo = {.image_size = o->crop_set ? o->crop : 0,
                                           .precision = precision,
                                           .inference_only = inference_only};
        if (mcnn_classifier_load(&m->cls, path, &lo) != MCNN_OK) return lib_error();
        m->dim = mcnn_classifier_num_classes(m->cls);
        m->size = mcnn_classifier_image_size(m->cls);
        m->channels = mcnn_classifier_in_channels(m->cls);
    }
    if (set_preprocess(m, o, st)) return -1;
    if (m->kind == MODEL_CLIP) return load_clip_text(m, o, wdir);

    /* a classifier's labels: --labels, else its metadata, else ImageNet's for 1000 classes,
     * else the classifier's own "0", "1", ... */
    char inet[PATH_MAX + 64];
    snprintf(inet, sizeof inet, "%s/%s", wdir, IMAGENET_LABELS);
    int rc;
    if (o->labels) rc = read_labels(&m->labels, o->labels, NULL);
    else if (!mcnn_safetensors_meta(st, "labels") && m->dim == 1000 && is_file(inet))
        rc = read_labels(&m->labels, inet, NULL);
    else rc = labels_from_classifier(&m->labels, m->cls, path);
    if (rc) return -1;
    if (m->labels.n != m->dim) {
        app_error("%s: %d labels for a model with %d classes", o->labels ? o->labels : path,
                  m->labels.n, m->dim);
        return -1;
    }
    /* the scores follow the checkpoint (mcnn_classifier_scores) unless --activation says */
    if (o->activation) mcnn_classifier_set_multilabel(m->cls, !strcmp(o->activation, "sigmoid"));
    return 0;
}

/* On failure the model may be partly loaded: model_free releases what there is. */
int load_model(model *m, const options *o)
{
    memset(m, 0, sizeof *m);
    char wdir[PATH_MAX], path[PATH_MAX + 64];
    weights_dir(wdir, sizeof wdir);
    if (o->model) snprintf(path, sizeof path, "%s", o->model);
    else snprintf(path, sizeof path, "%s/%s", wdir, DEFAULT_MODEL);
    m->path = dup_str(path);
    if (!is_file(path))
        return missing("model", path, o->model ? NULL : "weights/download.sh clip-vit-b32 (or "
                                                        "give --model FILE)");
    mcnn_safetensors *st;
    if (mcnn_safetensors_open(&st, path) != MCNN_OK) return lib_error();
    int rc = load_opened(m, o, st, wdir);
    mcnn_safetensors_close(st);
    return rc;
}

void model_free(model *m)
{
    mcnn_clip_free(m->clip);
    mcnn_classifier_free(m->cls);
    labels_free(&m->labels);
    free(m->text);
    free(m->path);
}
