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
#include "classify/classify.h"
#include "classify/jsonl.h"
#include "common/args.h"
#include "common/check.h"
#include "common/checkpoint_preprocess.h"
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
static const char usage[] =
    "usage: mcnn-classify [options] [IMAGE | DIR | -]... [--video FILE]...\n"
    "\n"
    "Tags images and footage.  By default: MovieCLIP's scene labels with CLIP ViT-B/32\n"
    "(softmax of 100 x cosine between each frame and the prompt\n"
    "'" MOVIECLIP_PROMPT "', averaged over a shot; top 5).\n"
    "Each image file is one shot; DIR is searched recursively (sorted) for .jpg .jpeg .png\n"
    ".ppm .pgm .pnm files; '-' reads binary PPM frames from stdin, as written by\n"
    "  ffmpeg -i movie.mp4 -f image2pipe -vcodec ppm -\n"
    "and frame streams (stdin, --video) are cut into shots automatically.\n"
    "       mcnn-classify merge SHARD.jsonl... [--json FILE] [--weak-labels FILE] [--expect LIST]\n"
    "joins the --out-jsonl files of a sharded run (mcnn-classify merge --help).\n";

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

/* --video-list: one path per line; empty lines skipped, a final CR dropped. */
static int read_video_list(options *o)
{
    FILE *f = fopen(o->video_list, "r");
    if (!f) {
        app_error("--video-list %s: %s", o->video_list, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int room = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (!len) continue;
        if (o->nlisted == room) {
            room = room ? 2 * room : 64;
            char **v = room < INT_MAX / 2 ? realloc(o->listed, (size_t)room * sizeof *v) : NULL;
            if (!v) app_error("out of memory"), exit(1);
            o->listed = v;
        }
        o->listed[o->nlisted++] = dup_str(line);
    }
    free(line);
    const int bad = ferror(f);
    fclose(f);
    if (bad) app_error("--video-list %s: cannot read", o->video_list);
    return bad ? -1 : 0;
}

static int parse_options(options *o, int argc, char **argv)
{
    *o = (options){.top = 5, .batch = 8, .min_shot_len = 15, .shot_threshold = 27.0,
                   .weak_top1 = 0.4, .weak_rest = 0.1, .scale = 100.0, .interp = NULL};
    const arg_spec specs[] = {
        {ARG_SECTION, .help = "Inputs"},
        {ARG_STRINGS, "--video", 0, &o->videos, "FILE",
         .help = "a video, decoded by ffmpeg (must be installed); repeatable"},
        {ARG_STRING, "--video-list", 0, &o->video_list, "FILE",
         .help = "more videos, one path per line (a collection too long for a command\n"
                 "line); they come after the --video ones"},
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
        {ARG_DOUBLE, "--sample-fps", 0, &o->sample_fps, "R",
         .help = "streams: encode R frames per second of each shot (its first frame,\n"
                 "then the first at or after every 1/R s); shot detection still sees\n"
                 "every frame (default: encode every frame, as MovieCLIP)",
         .min = 1e-6, .max = 1000},
        {ARG_INT, "--every", 0, &o->every, "N",
         .help = "streams: encode frames 0, N, 2N, ... of each shot", .min = 1, .max = 1e9},
        {ARG_STRING, "--shard", 0, &o->shard, "I/N",
         .help = "take share I of N (0 <= I < N) of the inputs: videos, images and the\n"
                 "images of folders, by a hash of the name (docs/scale.md); default:\n"
                 "the launcher's rank and size (mpirun, srun, a Slurm array), said on\n"
                 "stderr, else everything"},
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
        {ARG_STRING, "--out-jsonl", 0, &o->out_jsonl, "FILE",
         .help = "one JSON line per shot as it finishes, and one when an input ends;\n"
                 "'{shard}' in FILE becomes the shard's number.  Join shards with\n"
                 "  mcnn-classify merge FILE... --json tags.json --weak-labels weak.txt"},
        {ARG_FLAG, "--resume", 0, &o->resume, NULL,
         .help = "continue --out-jsonl FILE: inputs it holds complete are skipped, an\n"
                 "input cut off mid-way is redone (a new FILE is simply started)"},
        {ARG_FLAG, "--no-table", 0, &o->no_table, NULL, .help = "no table on stdout"},
        {ARG_FLAG, "--progress", 0, &o->progress, NULL,
         .help = "progress on stderr even when it is not a terminal"},
        {ARG_FLAG, "--quiet", 'q', &o->quiet, NULL, .help = "no progress"},
        {ARG_SECTION, .help = "Performance"},
        {ARG_INT, "--threads", 't', &o->threads, "N", .help = "threads (default: all cores)",
         .min = 1, .max = 4096},
        {ARG_INT, "--batch", 0, &o->batch, "N", .help = "frames encoded together (default 8)",
         .min = 1, .max = 4096},
        {ARG_STRING, "--precision", 0, &o->precision, "P",
         .help = "fp32 (default), bf16 or int8: the weights of the\ntransformer blocks / "
                 "residual blocks (docs/precision.md)"},
        {0}};
    int r = args_parse(specs, argc, argv, &o->inputs);
    if (r == ARGS_HELP) {
        args_help(stdout, usage, specs, epilog);
        exit(app_close_stdout() ? 1 : 0);
    }
    if (r == ARGS_ERROR) return -1;
    if (o->video_list && read_video_list(o)) return -1;
    return check_options(o);
}

static void options_free(options *o)
{
    args_strings_free(&o->inputs);
    args_strings_free(&o->videos);
    args_strings_free(&o->prompts);
    for (int i = 0; i < o->nlisted; i++) free(o->listed[i]);
    free(o->listed);
}

/* What the parser cannot see: combinations, and values of the string options. */
static int check_options(const options *o)
{
    if (o->inputs.count == 0 && o->videos.count == 0 && o->nlisted == 0) {
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
    if (o->every && o->sample_fps) {
        app_error("--every and --sample-fps both choose the frames to encode: give one");
        return -1;
    }
    if ((o->every || o->sample_fps) && !stdin_count && !o->videos.count && !o->nlisted) {
        app_error("--every and --sample-fps sample frame streams (--video, '-'): there is none");
        return -1;
    }
    if (o->resume && !o->out_jsonl) {
        app_error("--resume continues an --out-jsonl file: give one");
        return -1;
    }
    if (o->out_jsonl && (!*o->out_jsonl || !strcmp(o->out_jsonl, "-"))) {
        app_error("--out-jsonl needs a file (it is read back by --resume)");
        return -1;
    }
    if (o->resume && (o->json || o->weak || o->emb)) {
        app_error("--resume skips the inputs already done, so --json, --weak-labels and "
                  "--embeddings would miss them: make the JSON and weak labels from the file "
                  "with mcnn-classify merge");
        return -1;
    }
    if (o->truth && truth_source_parse(o->truth) == TRUTH_NONE) {
        app_error("--truth: '%s' is neither name nor dir", o->truth);
        return -1;
    }
    if (o->truth && (stdin_count || o->videos.count || o->nlisted)) {
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
    mcnn_precision p;
    if (rc == 0 && o->precision && (mcnn_precision_parse(o->precision, &p) != MCNN_OK ||
                                    (m->clip ? mcnn_clip_set_precision(m->clip, p)
                                             : mcnn_classifier_set_precision(m->cls, p)) != MCNN_OK))
        return lib_error();
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

/* The JSONL header: what the scores depend on, so that --resume and merge join only lines of
 * the same run.  The model by its file name (shards on other hosts keep it elsewhere). */
static char *run_header(const options *o, const model *m)
{
    char *text = NULL, sampling[128], *q;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) app_error("out of memory"), exit(1);
    const char *base = strrchr(m->path, '/');
    fputs("{\"mcnn_classify_tags\": 1, \"model\": ", f);
    fputs((q = json_quote(base ? base + 1 : m->path)) ? q : "\"\"", f), free(q);
    fprintf(f, ", \"kind\": \"%s\", \"labels\": [", m->kind == MODEL_CLIP ? "clip" : "classifier");
    for (int l = 0; l < m->labels.n; l++) {
        fputs(l ? ", " : "", f);
        fputs((q = json_quote(m->labels.v[l])) ? q : "\"\"", f), free(q);
    }
    fprintf(f, "], \"top\": %d, \"weak_top1\": %.17g, \"weak_rest\": %.17g", o->top, o->weak_top1,
            o->weak_rest);
    /* bf16 / int8 scores differ from fp32 ones: --resume and merge must not mix them */
    mcnn_precision prec = MCNN_PRECISION_FP32;
    if (o->precision) mcnn_precision_parse(o->precision, &prec); /* checked at load */
    fprintf(f, ", \"precision\": \"%s\"", mcnn_precision_name(prec));
    if (m->kind == MODEL_CLIP) {
        fputs(", \"prompts\": [", f);
        for (int i = 0; i < o->prompts.count; i++) {
            fputs(i ? ", " : "", f);
            fputs((q = json_quote(o->prompts.items[i])) ? q : "\"\"", f), free(q);
        }
        fprintf(f, "], \"scale\": %.17g", o->scale);
    } else {
        fprintf(f, ", \"activation\": \"%s\"", mcnn_classifier_multilabel(m->cls) ? "sigmoid" : "softmax");
    }
    const mcnn_preprocess_config *p = &m->pp;
    fprintf(f, ", \"preprocess\": \"resize %d crop %d filter %d mean %.9g,%.9g,%.9g std "
            "%.9g,%.9g,%.9g\"", p->resize, p->crop, (int)p->filter, p->mean[0], p->mean[1],
            p->mean[2], p->std[0], p->std[1], p->std[2]);
    sampling_describe(o, sampling, sizeof sampling);
    fprintf(f, ", \"shot_threshold\": %.17g, \"min_shot_len\": %d, \"fps\": ", o->shot_threshold,
            o->min_shot_len);
    if (o->fps_set) fprintf(f, "%.17g", o->fps);
    else fputs("null", f);
    fprintf(f, ", \"sampling\": \"%s\"}", sampling);
    if (fclose(f) || !text) app_error("out of memory"), exit(1);
    return text;
}

/* Sharding refuses what it cannot split, and outputs every process would write at once. */
static int check_shard(const shard *sh, const options *o)
{
    if (sh->count <= 1) return 0;
    for (int i = 0; i < o->inputs.count; i++)
        if (!strcmp(o->inputs.items[i], "-")) {
            app_error("shard %d/%d: stdin ('-') cannot be split between processes", sh->index,
                      sh->count);
            return -1;
        }
    const struct { const char *name, *path; } outs[] = {
        {"--json", o->json}, {"--weak-labels", o->weak}, {"--embeddings", o->emb},
        {"--out-jsonl", o->out_jsonl}};
    for (int i = 0; sh->automatic && i < 4; i++)
        if (outs[i].path && strcmp(outs[i].path, "-") && !strstr(outs[i].path, "{shard}")) {
            app_error("%s %s: each of the %d processes would write it; put {shard} in the name "
                      "(e.g. tags-{shard}.jsonl)", outs[i].name, outs[i].path, sh->count);
            return -1;
        }
    return 0;
}

/* A whole input (not the images of a folder, shared out one by one) of another shard. */
static int other_shards(const shard *sh, const options *o, const input *in)
{
    if (in->kind == INPUT_DIR && !o->shot_per_dir) return 0;
    return !shard_takes(sh, in->name);
}

int main(int argc, char **argv)
{
    app_name = "mcnn-classify";
    if (argc > 1 && !strcmp(argv[1], "merge")) return merge_main(argc - 1, argv + 1);
    options o;
    shard sh;
    if (parse_options(&o, argc, argv) || shard_choose(&sh, o.shard) || check_shard(&sh, &o)) {
        options_free(&o);
        return 2;
    }
    if (o.threads) mcnn_set_threads(o.threads);
    /* '{shard}' in an output's name: this shard's number */
    char *json = shard_path(o.json, &sh), *weak = shard_path(o.weak, &sh);
    char *emb = shard_path(o.emb, &sh), *out_jsonl = shard_path(o.out_jsonl, &sh);

    model m;
    run r = {.o = &o, .m = &m, .shard = &sh};
    input *ins = NULL;
    int *input_index = NULL;    /* each input's place in the unsharded list */
    char *emb_path = NULL;      /* --embeddings, links followed */
    char *header = NULL;
    int nin = 0, rc = 1, outputs_opened = 0;
    char err[1024];
    if (load_model(&m, &o)) goto done;

    const int L = m.labels.n;
    const int table = !o.no_table && !(json && !strcmp(json, "-")) &&
                      !(weak && !strcmp(weak, "-"));
    if (outputs_open(&r.out, m.labels.v, L, o.top, table, json, weak, o.weak_top1,
                     o.weak_rest, err, sizeof err)) {
        app_error("%s", err);
        goto done;
    }
    outputs_opened = 1;
    if (emb && !(emb_path = outfile_final_path(emb, err, sizeof err))) {
        app_error("--embeddings %s", err); /* written at the end: fail now, not then */
        goto done;
    }
    header = out_jsonl ? run_header(&o, &m) : NULL;
    if (out_jsonl && jsonl_open(&r.jsonl, out_jsonl, header, m.labels.v, L, o.top, o.resume, err,
                                sizeof err)) {
        app_error("%s", err);
        goto done;
    }
    if (o.truth) r.out.truth = truth_source_parse(o.truth);
    if (emb) embeddings_init(&r.emb, m.dim, L);
    r.batch = calloc((size_t)o.batch, sizeof *r.batch);
    r.slot_err = calloc((size_t)o.batch, sizeof *r.slot_err);
    r.images = malloc((size_t)o.batch * m.channels * m.size * m.size * sizeof(float));
    r.feats = malloc((size_t)o.batch * m.dim * sizeof(float));
    r.scores = malloc((size_t)o.batch * L * sizeof(float));
    const int all = o.inputs.count + o.videos.count + o.nlisted;
    ins = calloc((size_t)all, sizeof *ins);
    input_index = calloc((size_t)all, sizeof *input_index);
    if (!r.batch || !r.slot_err || !r.images || !r.feats || !r.scores || !ins || !input_index) {
        app_error("out of memory");
        goto done;
    }

    /* inputs: the positional ones in order, then the videos, then the listed ones; this
     * shard's, not yet done */
    int64_t total_images = 0;
    for (int i = 0; i < all; i++) {
        const int video = i >= o.inputs.count, listed = i >= o.inputs.count + o.videos.count;
        const char *arg = listed  ? o.listed[i - o.inputs.count - o.videos.count]
                          : video ? o.videos.items[i - o.inputs.count]
                                  : o.inputs.items[i];
        if (input_expand(&ins[nin], arg, video, err, sizeof err)) {
            if (shard_takes(&sh, arg)) failure(&r, "%s", err); /* one shard says it */
            input_free(&ins[nin]);
            continue;
        }
        if (other_shards(&sh, &o, &ins[nin]) ||
            (r.jsonl && jsonl_input_done(r.jsonl, ins[nin].name))) {
            input_free(&ins[nin]);
            continue;
        }
        total_images += ins[nin].nfiles;
        input_index[nin++] = i;
    }
    table_layout(&r.out, &o, ins, nin);
    progress_init(&r.prog, !o.quiet && (o.progress || progress_stderr_is_tty()), total_images);

    for (int i = 0; i < nin; i++) {
        const int fails = r.nfail;
        const int64_t shots = r.out.shots;
        r.input_index = input_index[i];
        run_input(&r, &ins[i]);
        if (r.jsonl && jsonl_input_end(r.jsonl, ins[i].name, input_index[i], r.out.shots - shots,
                                       r.nfail - fails)) {
            app_error("%s", jsonl_error(r.jsonl));
            goto done;
        }
    }
    progress_done(&r.prog, r.frames_done, r.out.shots);

    rc = 0;
    outputs_opened = 0;
    const int64_t shots = r.out.shots;
    if (outputs_close(&r.out, 1, err, sizeof err)) {
        app_error("%s", err);
        rc = 1;
    }
    if (r.jsonl && jsonl_close(r.jsonl, err, sizeof err)) {
        app_error("%s", err);
        rc = 1;
    }
    r.jsonl = NULL;
    if (emb && embeddings_save(&r.emb, emb_path, m.kind == MODEL_CLIP ? "embeddings" : "logits",
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
    jsonl_close(r.jsonl, NULL, 0); /* what was written stays: --resume continues it */
    if (app_close_stdout()) rc = 1;
    for (int i = 0; i < nin; i++) input_free(&ins[i]);
    free(ins), free(input_index), free(emb_path), free(header);
    free(json), free(weak), free(emb), free(out_jsonl);
    free(r.batch), free(r.slot_err), free(r.images), free(r.feats), free(r.scores);
    run_free(&r);
    if (emb) embeddings_free(&r.emb);
    model_free(&m);
    options_free(&o);
    return rc;
}
