/* mcnn-classify: images and footage in, scene tags out.
 *
 * The default job is MovieCLIP's tagging (Bose et al., 2023): CLIP ViT-B/32 scores every frame
 * against the 179 labels of the MovieCLIP taxonomy with the prompt
 *   "a photo of a {label}, a type of background location",
 * softmax(100 · cosine) over the labels; a shot's scores are the mean over its frames; the top
 * 5 are reported.  Any classifier checkpoint made by mcnn-train (ViT or ResNet with its label
 * list) classifies the same inputs without prompts.  docs/classify.md has the details.
 *
 * The pipeline, as main() runs it:
 *   options -> model (+ labels, + text embeddings for CLIP) -> outputs
 *   -> for each input: frames -> shots -> batches: preprocess, encode, score -> shot means
 *   -> table / JSON / weak labels as shots finish; embeddings saved at the end
 *   -> failures listed, exit 1 if there were any. */
#define _XOPEN_SOURCE 700
#include "common/args.h"
#include "common/check.h"
#include "common/escape.h"
#include "common/inputs.h"
#include "common/outfile.h"
#include "common/output.h"
#include "common/progress.h"
#include "common/text_cache.h"

#include "mcnn.h"
#include "mcnn/shots.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOVIECLIP_PROMPT "a photo of a {label}, a type of background location"
#define DEFAULT_MODEL "clip-vit-b32.safetensors"
#define DEFAULT_VOCAB "bpe_simple_vocab_16e6.txt.gz"
#define DEFAULT_LABELS "MovieCLIP_taxonomy_split.txt"
#define IMAGENET_LABELS "imagenet_labels.txt"

/* ---- options ----------------------------------------------------------------------------- */
typedef struct options {
    arg_strings inputs, videos, prompts;
    const char *model, *labels, *vocab, *json, *weak, *emb, *interp, *activation, *truth;
    int top, threads, batch, resize, crop, shot_per_dir, min_shot_len;
    int progress, quiet, no_cache, no_table;
    double fps, shot_threshold, weak_top1, weak_rest, scale;
    float mean[3], std[3];
    int fps_set, resize_set, crop_set, mean_set, std_set;
} options;

static const char usage[] =
    "usage: mcnn-classify [options] [IMAGE | DIR | -]... [--video FILE]...\n"
    "\n"
    "Tags images and footage.  By default: MovieCLIP's scene labels with CLIP ViT-B/32\n"
    "(softmax of 100 x cosine between each frame and the prompt\n"
    "'" MOVIECLIP_PROMPT "', averaged over a shot; top 5).\n"
    "Each image file is one shot; DIR is searched recursively (sorted) for .jpg .jpeg .png\n"
    ".ppm .pgm .pnm files; '-' reads binary PPM frames from stdin, as written by\n"
    "  ffmpeg -i movie.mp4 -f image2pipe -vcodec ppm -\n"
    "and frame streams (stdin, --video) are cut into shots automatically.\n";

static const char epilog[] =
    "Weights: weights/download.sh clip-vit-b32 movieclip  (see weights/README.md).  The folder\n"
    "searched for them is $MCNN_WEIGHTS, else ./weights, else weights/ beside the program's\n"
    "build folder.\n"
    "Exit status: 0 when every input was read; 1 when any input failed (the others are still\n"
    "processed and reported) or an output could not be written (the reason is named; an\n"
    "output file is replaced only when complete); 2 for a bad command line.\n";

static int parse_interp(const char *s, mcnn_resample *out)
{
    static const struct { const char *name; mcnn_resample f; } t[] = {
        {"nearest", MCNN_RESAMPLE_NEAREST}, {"box", MCNN_RESAMPLE_BOX},
        {"bilinear", MCNN_RESAMPLE_BILINEAR}, {"hamming", MCNN_RESAMPLE_HAMMING},
        {"bicubic", MCNN_RESAMPLE_BICUBIC}, {"lanczos", MCNN_RESAMPLE_LANCZOS}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(s, t[i].name) == 0) return *out = t[i].f, 0;
    return -1;
}

static int check_options(const options *o);

static int parse_options(options *o, int argc, char **argv)
{
    *o = (options){.top = 5, .batch = 8, .min_shot_len = 15, .shot_threshold = 27.0,
                   .weak_top1 = 0.4, .weak_rest = 0.1, .scale = 100.0, .interp = NULL};
    const arg_spec specs[] = {
        {ARG_SECTION, .help = "Inputs"},
        {ARG_STRINGS, "--video", 0, &o->videos, "FILE",
         .help = "a video, decoded by ffmpeg (must be installed); repeatable"},
        {ARG_DOUBLE, "--fps", 0, &o->fps, "R",
         .help = "frames per second: the rate --video is sampled at (default: the\n"
                 "video's own), the rate of a stdin stream (default 24), and of a\n"
                 "--shot-per-dir folder (default: times 0)",
         .min = 1e-3, .max = 1000, .seen = &o->fps_set},
        {ARG_FLAG, "--shot-per-dir", 0, &o->shot_per_dir, NULL,
         .help = "each DIR is one shot (its images are the frames), not one shot\n"
                 "per image"},
        {ARG_DOUBLE, "--shot-threshold", 0, &o->shot_threshold, "T",
         .help = "shot cut when the mean HSV difference between two frames is >= T\n"
                 "(0..255; default 27, PySceneDetect's ContentDetector)",
         .min = 0, .max = 255},
        {ARG_INT, "--min-shot-len", 0, &o->min_shot_len, "N",
         .help = "frames a shot must have before it can be cut (default 15)",
         .min = 1, .max = 1e9},
        {ARG_SECTION, .help = "Model"},
        {ARG_STRING, "--model", 'm', &o->model, "FILE",
         .help = "CLIP checkpoint (OpenAI or Hugging Face names), or a ViT/ResNet\n"
                 "classifier with \"arch\" (and \"labels\") in its metadata\n"
                 "(default: weights/" DEFAULT_MODEL ")"},
        {ARG_STRING, "--labels", 'l', &o->labels, "FILE",
         .help = "one label per line (CLIP default:\n"
                 "weights/" DEFAULT_LABELS "; classifiers: the\n"
                 "checkpoint's own list)"},
        {ARG_STRINGS, "--prompt", 'p', &o->prompts, "TEMPLATE",
         .help = "CLIP prompt with {label} (or {}); repeat to average several\n"
                 "(prompt ensembling; default: MovieCLIP's\n"
                 "'" MOVIECLIP_PROMPT "')"},
        {ARG_DOUBLE, "--scale", 0, &o->scale, "S",
         .help = "CLIP scores are softmax(S x cosine) (default 100)", .min = 1e-3, .max = 1e4},
        {ARG_STRING, "--vocab", 0, &o->vocab, "FILE",
         .help = "CLIP tokenizer: " DEFAULT_VOCAB ", or Hugging Face's\n"
                 "vocab.json with merges.txt beside it (default: looked for next to\n"
                 "the model, then in the weights folder)"},
        {ARG_FLAG, "--no-cache", 0, &o->no_cache, NULL,
         .help = "do not read or write the text-embedding cache (next to the model)"},
        {ARG_STRING, "--activation", 0, &o->activation, "softmax|sigmoid",
         .help = "classifiers: scores from the logits (default: softmax, or sigmoid\n"
                 "for a multi-label checkpoint)"},
        {ARG_SECTION, .help = "Preprocessing (defaults: the checkpoint family's)"},
        {ARG_INT, "--resize", 0, &o->resize, "N",
         .help = "shorter side resized to N (CLIP: the model's size; ImageNet: 256)",
         .min = 1, .max = 16384, .seen = &o->resize_set},
        {ARG_INT, "--crop", 0, &o->crop, "N", .help = "center crop N x N (the model's input size)",
         .min = 1, .max = 16384, .seen = &o->crop_set},
        {ARG_FLOAT3, "--mean", 0, o->mean, "R,G,B",
         .help = "normalisation mean (CLIP: 0.481,0.458,0.408)",
         .min = -1e3, .max = 1e3, .seen = &o->mean_set},
        {ARG_FLOAT3, "--std", 0, o->std, "R,G,B",
         .help = "normalisation std (CLIP: 0.269,0.261,0.276)",
         .min = 1e-6, .max = 1e3, .seen = &o->std_set},
        {ARG_STRING, "--interp", 0, &o->interp, "NAME",
         .help = "resize filter: bicubic (CLIP), bilinear (torchvision ImageNet),\n"
                 "nearest, box, hamming, lanczos"},
        {ARG_SECTION, .help = "Outputs"},
        {ARG_INT, "--top", 'k', &o->top, "K", .help = "labels per shot (default 5)",
         .min = 1, .max = 1e9},
        {ARG_STRING, "--json", 0, &o->json, "FILE|-",
         .help = "MovieCLIP's JSON: {video: {shot: {start_frame, end_frame,\n"
                 "start_time, end_time, labels: {label: score}}}}"},
        {ARG_STRING, "--weak-labels", 0, &o->weak, "FILE|-",
         .help = "lines '<shot> <label index>...' (0-based, label file order):\n"
                 "top-1 when >= --weak-top1, then each of top-2..5 >= --weak-rest"},
        {ARG_DOUBLE, "--weak-top1", 0, &o->weak_top1, "T", .help = "default 0.4",
         .min = 0, .max = 1},
        {ARG_DOUBLE, "--weak-rest", 0, &o->weak_rest, "T", .help = "default 0.1",
         .min = 0, .max = 1},
        {ARG_STRING, "--embeddings", 0, &o->emb, "FILE",
         .help = "save per frame the normalised image embeddings (CLIP) or logits\n"
                 "(classifiers), and the scores, as safetensors"},
        {ARG_STRING, "--truth", 0, &o->truth, "name|dir",
         .help = "each image's true class is in its file name ('0019-t-shirt-top.png':\n"
                 "after a leading number) or its folder ('val/dog/1.jpg'): each row\n"
                 "says right or WRONG, and a last line the top-1 / top-k accuracy"},
        {ARG_FLAG, "--no-table", 0, &o->no_table, NULL, .help = "no table on stdout"},
        {ARG_FLAG, "--progress", 0, &o->progress, NULL,
         .help = "progress on stderr even when it is not a terminal"},
        {ARG_FLAG, "--quiet", 'q', &o->quiet, NULL, .help = "no progress"},
        {ARG_SECTION, .help = "Performance"},
        {ARG_INT, "--threads", 't', &o->threads, "N", .help = "threads (default: all cores)",
         .min = 1, .max = 4096},
        {ARG_INT, "--batch", 0, &o->batch, "N", .help = "frames encoded together (default 8)",
         .min = 1, .max = 4096},
        {0}};
    int r = args_parse(specs, argc, argv, &o->inputs);
    if (r == ARGS_HELP) {
        args_help(stdout, usage, specs, epilog);
        exit(app_close_stdout() ? 1 : 0);
    }
    if (r == ARGS_ERROR) return -1;
    return check_options(o);
}

static void options_free(options *o)
{
    args_strings_free(&o->inputs);
    args_strings_free(&o->videos);
    args_strings_free(&o->prompts);
}

/* What the parser cannot see: combinations, and values of the string options. */
static int check_options(const options *o)
{
    if (o->inputs.count == 0 && o->videos.count == 0) {
        app_error("no input: give images, folders, '-' or --video FILE (try --help)");
        return -1;
    }
    mcnn_resample filter;
    if (o->interp && parse_interp(o->interp, &filter)) {
        app_error("--interp: unknown filter '%s' (nearest, box, bilinear, hamming, bicubic, "
                  "lanczos)", o->interp);
        return -1;
    }
    if (o->activation && strcmp(o->activation, "softmax") && strcmp(o->activation, "sigmoid")) {
        app_error("--activation: '%s' is neither softmax nor sigmoid", o->activation);
        return -1;
    }
    if (o->json && o->weak && !strcmp(o->json, "-") && !strcmp(o->weak, "-")) {
        app_error("--json and --weak-labels cannot both go to stdout ('-')");
        return -1;
    }
    const struct { const char *name, *path; } outs[] = {
        {"--json", o->json}, {"--weak-labels", o->weak}, {"--embeddings", o->emb}};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (outs[i].path && outs[j].path && !strcmp(outs[i].path, outs[j].path) &&
                strcmp(outs[i].path, "-")) {
                app_error("%s and %s both name %s", outs[i].name, outs[j].name, outs[i].path);
                return -1;
            }
    int stdin_count = 0;
    for (int i = 0; i < o->inputs.count; i++) stdin_count += strcmp(o->inputs.items[i], "-") == 0;
    if (stdin_count > 1) {
        app_error("'-' (stdin) given %d times", stdin_count);
        return -1;
    }
    if (o->truth && truth_source_parse(o->truth) == TRUTH_NONE) {
        app_error("--truth: '%s' is neither name nor dir", o->truth);
        return -1;
    }
    if (o->truth && (stdin_count || o->videos.count)) {
        app_error("--truth reads each image's class from its file's name or folder: it cannot "
                  "be used with --video or '-'");
        return -1;
    }
    return 0;
}


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

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d) {
        app_error("out of memory");
        exit(1);
    }
    return memcpy(d, s, n);
}

/* ---- labels ------------------------------------------------------------------------------- */
typedef struct label_set {
    char **names;               /* n strings, each malloc'ed (mcnn_free_label_list) */
    const char *const *v;       /* the same, for the const interfaces              */
    int n;
} label_set;

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
typedef enum model_kind { MODEL_CLIP, MODEL_CLASSIFIER } model_kind;

typedef struct model {
    model_kind kind;
    char *path;
    mcnn_clip *clip;
    mcnn_classifier *cls;      /* a ViT or ResNet, as mcnn-train saves them (classifier.h) */
    label_set labels;
    float *text;               /* CLIP: (L, dim) normalised text embeddings               */
    int dim;                   /* CLIP embedding width, or the classifier's logit count   */
    int channels, size;        /* input (C, size, size)                                   */
    mcnn_preprocess_config pp;
} model;

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
        m->pp = *mcnn_classifier_get_preprocess(m->cls);
        if (mcnn_safetensors_find(st, "patch_embed.proj.weight") &&
            !mcnn_safetensors_meta(st, "preprocess") && !mcnn_safetensors_meta(st, "mean")) {
            /* timm's ViT weights (AugReg, weights/download.sh vit-b16): bicubic,
             * crop_pct 0.9, mean = std = 0.5 */
            m->pp.filter = MCNN_RESAMPLE_BICUBIC;
            m->pp.resize = (int)(m->size / 0.9);
            for (int c = 0; c < 3; c++) m->pp.mean[c] = 0.5f, m->pp.std[c] = 0.5f;
        }
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
    text_cache_init(&cache, m->path, vocab, m->labels.v, L, tmpl, T, m->dim);
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
    if (m->kind == MODEL_CLIP) {
        if (mcnn_clip_load(&m->clip, path, NULL) != MCNN_OK) return lib_error();
        const mcnn_clip_config *c = mcnn_clip_get_config(m->clip);
        m->dim = c->embed_dim;
        m->size = c->image_size;
        m->channels = 3;
    } else {
        /* --crop: a ViT's positional embedding is resampled; a ResNet takes any size */
        mcnn_classifier_load_options lo = {.image_size = o->crop_set ? o->crop : 0};
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
static int load_model(model *m, const options *o)
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

static void model_free(model *m)
{
    mcnn_clip_free(m->clip);
    mcnn_classifier_free(m->cls);
    labels_free(&m->labels);
    free(m->text);
    free(m->path);
}

/* ---- shots and batches --------------------------------------------------------------------- */
typedef struct shot_acc {
    int64_t number;             /* in output order                                  */
    char *video, *key, *id;
    int64_t start_frame, end_frame;
    double start_time, end_time;
    int frames, scored, closed;
    int still;                  /* a still image: no frame numbers or times to show */
    double *sum;                /* (L) sum of the frames' scores                     */
} shot_acc;

typedef struct slot {
    mcnn_image img;
    int64_t frame;
    int64_t shot_number;        /* the shot it belongs to (found again at flush time) */
    const char *name;
} slot;

typedef struct run {
    const options *o;
    model *m;
    outputs out;
    embeddings emb;
    progress prog;
    slot *batch;
    int nb;
    float *images, *feats, *scores; /* (batch, C, S, S), (batch, dim), (batch, L)          */
    char (*slot_err)[512];
    shot_acc *shots;            /* pending: shots[0..nshots) in order; the last may be open */
    int nshots, cap_shots;
    int64_t next_shot, frames_done;
    int nfail;                  /* failures reported (each once, when it happens)    */
    const char *nonfinite_in;   /* the input whose non-finite scores were reported     */
    int64_t nonfinite;          /* frames left out for non-finite scores               */
} run;

static void failure(run *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    progress_clear(&r->prog);
    app_error("%s", msg);
    r->nfail++;
}

static void shot_begin(run *r, const char *video, const char *key, const char *id,
                       int64_t start_frame, double start_time)
{
    if (r->nshots == r->cap_shots) {
        r->cap_shots = r->cap_shots ? 2 * r->cap_shots : 16;
        shot_acc *s = realloc(r->shots, (size_t)r->cap_shots * sizeof *s);
        if (!s) app_error("out of memory"), exit(1);
        r->shots = s;
    }
    shot_acc *s = &r->shots[r->nshots++];
    *s = (shot_acc){.number = r->next_shot++, .video = dup_str(video), .key = dup_str(key),
                    .id = dup_str(id), .start_frame = start_frame, .end_frame = start_frame,
                    .start_time = start_time, .end_time = start_time};
    s->sum = calloc((size_t)r->m->labels.n, sizeof(double));
    if (!s->sum) app_error("out of memory"), exit(1);
}

static void shot_end(run *r, int64_t end_frame, double end_time)
{
    shot_acc *s = &r->shots[r->nshots - 1];
    s->end_frame = end_frame;
    s->end_time = end_time;
    s->closed = 1;
}

/* Write and drop the finished shots at the front of the queue (all their frames scored). */
static void emit_closed_shots(run *r)
{
    const int L = r->m->labels.n;
    float *mean = malloc((size_t)L * sizeof(float));
    if (!mean) app_error("out of memory"), exit(1);
    int done = 0;
    while (done < r->nshots && r->shots[done].closed && r->shots[done].scored == r->shots[done].frames) {
        shot_acc *s = &r->shots[done++];
        if (s->scored > 0) { /* a shot whose frames all failed has nothing to say */
            for (int l = 0; l < L; l++) mean[l] = (float)(s->sum[l] / s->scored);
            shot_out so = {s->video, s->key, s->id, s->start_frame, s->end_frame,
                           s->start_time, s->end_time, s->scored, s->still, mean};
            progress_clear(&r->prog);
            outputs_shot(&r->out, &so);
        }
        free(s->video), free(s->key), free(s->id), free(s->sum);
    }
    if (done) { /* (r->shots is NULL before the first shot: no memmove on it) */
        memmove(r->shots, r->shots + done, (size_t)(r->nshots - done) * sizeof *r->shots);
        r->nshots -= done;
    }
    free(mean);
    progress_update(&r->prog, r->frames_done, r->out.shots);
}

static shot_acc *find_shot(run *r, int64_t number)
{
    for (int i = 0; i < r->nshots; i++)
        if (r->shots[i].number == number) return &r->shots[i];
    return NULL;
}

static int all_finite(const float *v, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* A frame whose scores (or embedding, or logits) hold a NaN or an infinity says nothing: it is
 * left out of its shot like a frame that did not decode, and named once per input (a broken
 * checkpoint would otherwise give a line per frame); the summary counts them all. */
static void nonfinite_frame(run *r, const slot *sl, int still)
{
    if (r->nonfinite++ == 0 || r->nonfinite_in != sl->name) {
        char where[48] = "";
        if (!still) snprintf(where, sizeof where, " frame %lld:", (long long)sl->frame);
        failure(r, "%s:%s the model's scores are not finite (NaN or infinity), so the frame is "
                "left out (a damaged checkpoint?)", sl->name, where);
    }
    r->nonfinite_in = sl->name;
}

/* Preprocess the batch (in parallel), encode it, score it, add the scores to the shots. */
static void flush(run *r)
{
    model *m = r->m;
    const int n = r->nb, L = m->labels.n, D = m->dim;
    const size_t per = (size_t)m->channels * m->size * m->size;
    int ok[4096];
    #pragma omp parallel for schedule(dynamic) num_threads(mcnn_get_threads())
    for (int i = 0; i < n; i++) {
        ok[i] = mcnn_preprocess(r->images + (size_t)i * per, &r->batch[i].img, &m->pp) == MCNN_OK;
        if (!ok[i]) snprintf(r->slot_err[i], sizeof r->slot_err[i], "%s", mcnn_last_error());
    }
    int good = 0; /* compact: the failed frames drop out */
    for (int i = 0; i < n; i++) {
        mcnn_image_free(&r->batch[i].img);
        shot_acc *s = find_shot(r, r->batch[i].shot_number);
        if (!ok[i]) {
            failure(r, "%s: %s", r->batch[i].name, r->slot_err[i]);
            if (s) s->frames--;
            continue;
        }
        if (good != i) {
            memmove(r->images + (size_t)good * per, r->images + (size_t)i * per, per * sizeof(float));
            r->batch[good] = r->batch[i];
        }
        good++;
    }
    if (good > 0) {
        if (m->kind == MODEL_CLIP) {
            CHECK(mcnn_clip_image_embeddings(m->clip, r->feats, r->images, good));
            mcnn_clip_zeroshot_scores(r->scores, r->feats, m->text, good, L, D, (float)r->o->scale);
        } else {
            CHECK(mcnn_classifier_forward(m->cls, r->feats, r->images, good, 0));
            CHECK(mcnn_classifier_scores(m->cls, r->feats, r->scores, good));
        }
    }
    for (int i = 0; i < good; i++) {
        shot_acc *s = find_shot(r, r->batch[i].shot_number);
        const float *sc = r->scores + (size_t)i * L;
        if (!all_finite(sc, L) || !all_finite(r->feats + (size_t)i * D, D)) {
            nonfinite_frame(r, &r->batch[i], s->still);
            s->frames--;
            continue;
        }
        for (int l = 0; l < L; l++) s->sum[l] += sc[l];
        s->scored++;
        if (r->o->emb && embeddings_add(&r->emb, r->feats + (size_t)i * D, sc, r->batch[i].frame,
                                        s->number, r->batch[i].name))
            app_error("out of memory"), exit(1);
    }
    r->frames_done += good;
    r->nb = 0;
    emit_closed_shots(r);
}

/* A decoded frame joins the open shot and the batch (which takes the pixels). */
static void add_frame(run *r, mcnn_image *img, int64_t frame, const char *name)
{
    shot_acc *s = &r->shots[r->nshots - 1];
    s->frames++;
    slot *sl = &r->batch[r->nb++];
    *sl = (slot){.img = *img, .frame = frame, .shot_number = s->number, .name = name};
    memset(img, 0, sizeof *img);
    if (r->nb == r->o->batch) flush(r);
}

/* ---- inputs --------------------------------------------------------------------------------- */
/* An image, or a folder of unrelated images: frame numbers and times mean nothing for its shots
 * (a --shot-per-dir folder or an --fps rate makes its images frames of a sequence). */
static int input_is_still(const options *o, const input *in)
{
    return in->kind == INPUT_IMAGE || (in->kind == INPUT_DIR && !o->shot_per_dir && !o->fps_set);
}

static void run_files(run *r, const input *in)
{
    const int still = input_is_still(r->o, in);
    const int one_shot = in->kind == INPUT_DIR && r->o->shot_per_dir;
    const double fps = r->o->fps_set ? r->o->fps : 0;
    const size_t plen = strlen(in->path);
    int64_t frame = 0;
    if (one_shot) shot_begin(r, in->name, "0", in->name, 0, 0.0);
    for (int i = 0; i < in->nfiles; i++) {
        const char *file = in->files[i];
        mcnn_image img;
        if (mcnn_image_load(&img, file) != MCNN_OK) {
            failure(r, "%s", mcnn_last_error());
            continue;
        }
        if (!one_shot) { /* the key: the file's path inside the folder, or "0" for a file */
            const char *key = "0";
            if (in->kind == INPUT_DIR) {
                key = file + plen;
                while (*key == '/') key++;
            }
            shot_begin(r, in->name, key, file, frame, fps > 0 ? frame / fps : 0.0);
            r->shots[r->nshots - 1].still = still;
        }
        add_frame(r, &img, frame, file);
        if (!one_shot) shot_end(r, frame, fps > 0 ? (frame + 1) / fps : 0.0);
        frame++;
    }
    if (one_shot) shot_end(r, frame > 0 ? frame - 1 : 0, fps > 0 && frame ? frame / fps : 0.0);
    if (in->nfiles == 0) failure(r, "%s: no image files (.jpg .jpeg .png .ppm .pgm .pnm)", in->path);
}

static void run_stream(run *r, const input *in)
{
    char err[1024];
    double fps = r->o->fps_set ? r->o->fps : 24.0;
    int64_t expected = 0;
    if (in->kind == INPUT_VIDEO && video_check_ffmpeg(in->path, err, sizeof err))
        return failure(r, "%s", err);
    if (in->kind == INPUT_VIDEO) { /* the video's own rate, unless --fps; its duration */
        video_info vi;
        const int probe = video_probe(&vi, in->path, err, sizeof err);
        if (probe && !(probe == VIDEO_NO_RATE && r->o->fps_set)) return failure(r, "%s", err);
        if (!r->o->fps_set) fps = vi.fps;
        expected = (int64_t)(vi.duration * fps);
    }
    frame_stream fs;
    if (frame_stream_open(&fs, in, fps, err, sizeof err)) return failure(r, "%s", err);
    progress_set_total(&r->prog, expected ? r->frames_done + expected : 0);
    mcnn_shot_detector det;
    CHECK(mcnn_shot_detector_init(&det, r->o->shot_threshold, r->o->min_shot_len));
    int64_t f = 0, shot = 0;
    int got, finished = 1;
    char key[32], id[PATH_MAX + 64];
    mcnn_image img;
    while ((got = frame_stream_next(&fs, &img)) == 1) {
        int cut;
        CHECK(mcnn_shot_detector_push(&det, &img, &cut));
        if (f == 0 || cut) {
            if (cut) shot_end(r, f - 1, f / fps);
            snprintf(key, sizeof key, "%lld", (long long)shot++);
            snprintf(id, sizeof id, "%s#%s", in->name, key);
            shot_begin(r, in->name, key, id, f, f / fps);
        }
        add_frame(r, &img, f, in->name);
        f++;
    }
    if (got < 0) {
        failure(r, "%s", mcnn_last_error());
        finished = 0;
    }
    if (f > 0) shot_end(r, f - 1, f / fps);
    mcnn_shot_detector_free(&det);
    if (frame_stream_close(&fs, finished, err, sizeof err)) failure(r, "%s", err);
    else if (f == 0 && got == 0) failure(r, "%s: no frames", fs.label);
}

/* ---- main ---------------------------------------------------------------------------------- */
/* The table's first column as wide as the widest shot name (up to 60 display columns; longer
 * names lose their start to "…"), and the frame and time columns only when some input has
 * frames in sequence. */
static void table_layout(outputs *out, const options *o, const input *ins, int nin)
{
    int widest = 4, timed = 0;
    for (int i = 0; i < nin; i++) {
        const input *in = &ins[i];
        int w = 0;
        timed |= !input_is_still(o, in);
        if (in->kind == INPUT_IMAGE || (in->kind == INPUT_DIR && !o->shot_per_dir)) {
            for (int k = 0; k < in->nfiles; k++) {
                free(display_text(in->files[k], &w));
                if (w > widest) widest = w;
            }
            continue;
        }
        free(display_text(in->name, &w)); /* "name" (a folder), "name#12" (a stream's shot) */
        w += in->kind == INPUT_DIR ? 0 : 7;
        if (w > widest) widest = w;
    }
    out->id_width = widest < 60 ? widest : 60;
    out->timed = timed;
}

int main(int argc, char **argv)
{
    app_name = "mcnn-classify";
    options o;
    if (parse_options(&o, argc, argv)) {
        options_free(&o);
        return 2;
    }
    if (o.threads) mcnn_set_threads(o.threads);

    model m;
    run r = {.o = &o, .m = &m};
    input *ins = NULL;
    char *emb_path = NULL;      /* --embeddings, links followed */
    int nin = 0, rc = 1, outputs_opened = 0;
    char err[1024];
    if (load_model(&m, &o)) goto done;

    const int L = m.labels.n;
    const int table = !o.no_table && !(o.json && !strcmp(o.json, "-")) &&
                      !(o.weak && !strcmp(o.weak, "-"));
    if (outputs_open(&r.out, m.labels.v, L, o.top, table, o.json, o.weak, o.weak_top1,
                     o.weak_rest, err, sizeof err)) {
        app_error("%s", err);
        goto done;
    }
    outputs_opened = 1;
    if (o.emb && !(emb_path = outfile_final_path(o.emb, err, sizeof err))) {
        app_error("--embeddings %s", err); /* written at the end: fail now, not then */
        goto done;
    }
    if (o.truth) r.out.truth = truth_source_parse(o.truth);
    if (o.emb) embeddings_init(&r.emb, m.dim, L);
    r.batch = calloc((size_t)o.batch, sizeof *r.batch);
    r.slot_err = calloc((size_t)o.batch, sizeof *r.slot_err);
    r.images = malloc((size_t)o.batch * m.channels * m.size * m.size * sizeof(float));
    r.feats = malloc((size_t)o.batch * m.dim * sizeof(float));
    r.scores = malloc((size_t)o.batch * L * sizeof(float));
    ins = calloc((size_t)(o.inputs.count + o.videos.count), sizeof *ins);
    if (!r.batch || !r.slot_err || !r.images || !r.feats || !r.scores || !ins) {
        app_error("out of memory");
        goto done;
    }

    /* inputs: the positional ones in order, then the videos */
    int64_t total_images = 0;
    for (int i = 0; i < o.inputs.count + o.videos.count; i++) {
        const int video = i >= o.inputs.count;
        const char *arg = video ? o.videos.items[i - o.inputs.count] : o.inputs.items[i];
        if (input_expand(&ins[nin], arg, video, err, sizeof err)) {
            failure(&r, "%s", err);
            input_free(&ins[nin]);
            continue;
        }
        total_images += ins[nin].nfiles;
        nin++;
    }
    table_layout(&r.out, &o, ins, nin);
    progress_init(&r.prog, !o.quiet && (o.progress || progress_stderr_is_tty()), total_images);

    for (int i = 0; i < nin; i++) {
        if (ins[i].kind == INPUT_IMAGE || ins[i].kind == INPUT_DIR) run_files(&r, &ins[i]);
        else run_stream(&r, &ins[i]);
        flush(&r); /* names in the batch point into this input */
    }
    progress_done(&r.prog, r.frames_done, r.out.shots);

    rc = 0;
    outputs_opened = 0;
    const int64_t shots = r.out.shots;
    if (outputs_close(&r.out, 1, err, sizeof err)) {
        app_error("%s", err);
        rc = 1;
    }
    if (o.emb && embeddings_save(&r.emb, emb_path, m.kind == MODEL_CLIP ? "embeddings" : "logits",
                                 m.kind == MODEL_CLIP ? "clip-image-embeddings (L2-normalised)"
                                                      : "classifier-logits",
                                 m.path, m.labels.v, err, sizeof err)) {
        app_error("%s", err);
        rc = 1;
    }
    if (r.nfail) { /* each was named when it happened */
        char frames[96] = "";
        if (r.nonfinite)
            snprintf(frames, sizeof frames, "; %lld frame%s left out for non-finite scores",
                     (long long)r.nonfinite, r.nonfinite > 1 ? "s" : "");
        app_error("%d input%s failed (named above)%s; %lld shot%s classified", r.nfail,
                  r.nfail > 1 ? "s" : "", frames, (long long)shots,
                  shots == 1 ? "" : "s");
        rc = 1;
    }

done:
    if (outputs_opened) outputs_close(&r.out, 0, err, sizeof err);
    if (app_close_stdout()) rc = 1;
    for (int i = 0; i < nin; i++) input_free(&ins[i]);
    free(ins), free(emb_path);
    free(r.batch), free(r.slot_err), free(r.images), free(r.feats), free(r.scores);
    free(r.shots);
    if (o.emb) embeddings_free(&r.emb);
    model_free(&m);
    options_free(&o);
    return rc;
}
