/* mcnn-classify's command line: the option table, --video-list, and the checks of what the
 * parser cannot see (combinations, values of the string options). */
#define _XOPEN_SOURCE 700
#include "classify.h"

#include "../common/outfile.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int parse_interp(const char *s, mcnn_resample *out)
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

int parse_options(options *o, int argc, char **argv)
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

void options_free(options *o)
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
