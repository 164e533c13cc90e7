/* mcnn-shots features / frames: the sampled frames of every tagged shot, as per-frame features
 * in safetensors shards with an index (features), or as image files (frames).
 *
 * features writes into DIR:
 *   features-00000.safetensors, ...   "features" (F, D) F32: the frames of several shots, shot
 *                                     after shot; "lengths" (S) I32 and "offsets" (S) I64 per
 *                                     shot; metadata "keys" (a JSON array of the S shot keys),
 *                                     "kind", "model", "fps", "max_frames"
 *   index.tsv                         which shot is where (featindex.c)
 * A shard is written once it holds --shard-shots shots (at a video's end), then the index is
 * rewritten (atomically) naming the shard and its videos: a run stopped at any point resumes
 * with the videos the index does not list, and a shard the index does not name is rewritten. */
#define _XOPEN_SOURCE 700
#include "extract.h"
#include "walk.h"

#include "../common/args.h"
#include "../common/outfile.h"
#include "mcnn/json.h"

#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

typedef struct feat_options {
    arg_strings tags, splits;
    const char *model, *out, *videos, *output;
    double fps;
    int max_frames, batch, shard_shots, threads, quiet, size;
} feat_options;

static int parse(feat_options *o, int argc, char **argv, int frames_only)
{
    *o = (feat_options){.fps = 4, .max_frames = 20, .batch = 16, .shard_shots = 1000,
                        .output = "features"};
    const arg_spec specs[] = {
        {ARG_STRINGS, "--tags", 0, &o->tags, "FILE",
         .help = "mcnn-classify's --json or --out-jsonl (repeatable)"},
        {ARG_STRING, "--model", 'm', &o->model, "FILE",
         .help = "features: ViT (vit_b_16-c867db91.pth: 768), ResNet\n"
                 "(resnet50-0676ba61.pth: 2048), CLIP (512), or any mcnn-train model"},
        {ARG_STRING, "--output", 0, &o->output, "features|logits",
         .help = "features (default), or a classifier's logits (frame models:\n"
                 "`eval --frame-scores` averages their sigmoids per shot)"},
        {ARG_STRING, "--out", 'o', &o->out, "DIR", .help = "where shards and index go (created)"},
        {ARG_STRING, "--videos", 0, &o->videos, "DIR",
         .help = "find the tags' relative video names here (default: as given)"},
        {ARG_DOUBLE, "--fps", 0, &o->fps, "N", .help = "frames sampled per second (4)",
         .min = 1e-3, .max = 1000},
        {ARG_INT, "--max-frames", 'K', &o->max_frames, "K",
         .help = "frames kept per shot, the first ones (20)", .min = 1, .max = 100000},
        {ARG_INT, "--size", 0, &o->size, "S",
         .help = "frames: resize the shorter side to S (default: as decoded)", .min = 1,
         .max = 16384},
        {ARG_INT, "--batch", 0, &o->batch, "N", .help = "frames encoded together (16)", .min = 1,
         .max = 4096},
        {ARG_INT, "--shard-shots", 0, &o->shard_shots, "N", .help = "shots per shard (1000)",
         .min = 1, .max = 100000000},
        {ARG_INT, "--threads", 't', &o->threads, "N", .help = "threads (default: all cores)",
         .min = 1, .max = 4096},
        {ARG_STRINGS, "--split", 0, &o->splits, "FILE",
         .help = "frames: also write DIR/<its name>, one line per frame of its shots,\n"
                 "'<video>/<shot>/0000.ppm idx ...' (repeatable)"},
        {ARG_FLAG, "--quiet", 'q', &o->quiet, NULL, .help = "no line per video"},
        {0}};
    if (shots_args(specs, argc, argv,
                   frames_only
                  ? "usage: mcnn-shots frames --tags tags.json --fps 4 --max-frames 20 --out DIR\n\n"
                    "The sampled frames of every shot as DIR/<video>/<shot>/0000.ppm, ...: with\n"
                    "a split file of the same keys, mcnn-train --data train.txt --root DIR trains\n"
                    "a frame model, each frame a sample with its shot's labels.\n"
                  : "usage: mcnn-shots features --tags tags.json --model FILE --fps 4 "
                    "--max-frames 20 --out DIR\n\nPer-frame features of every shot as "
                    "safetensors shards with index.tsv;\nrerun the same command to resume.\n"))
        return -1;
    if (!o->tags.count || !o->out || (!frames_only && !o->model))
        return app_error("%s needs --tags%s and --out (try --help)", frames_only ? "frames" : "features",
                         frames_only ? "" : ", --model"), -1;
    if (strcmp(o->output, "features") && strcmp(o->output, "logits"))
        return app_error("--output: '%s' is neither features nor logits", o->output), -1;
    return 0;
}

/* ---- features ------------------------------------------------------------------------------ */
typedef struct shot_buf {
    char *key;
    int frames;
    int64_t row;                /* first row in the pending shard                            */
} shot_buf;

typedef struct feat_run {
    const feat_options *o;
    extractor ex;
    feat_index index;
    mcnn_image *frames;         /* the batch waiting to be encoded                           */
    int nb;
    float *feats;               /* pending shard: (rows, D)                                  */
    int64_t rows, cap_rows;
    shot_buf *shots;            /* pending shard's shots                                     */
    int nshots, cap_shots;
    char **videos;              /* pending shard's videos                                    */
    int nvideos;
    int64_t frames_done, shots_done;
} feat_run;

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static int encode_batch(feat_run *r, char *err, size_t errsize)
{
    if (!r->nb) return 0;
    const int D = r->ex.dim;
    if (r->rows + r->nb > r->cap_rows) {
        r->cap_rows = 2 * (r->rows + r->nb) + 64;
        r->feats = realloc(r->feats, (size_t)r->cap_rows * D * sizeof(float));
        if (!r->feats) app_error("out of memory"), exit(1);
    }
    const int rc = extractor_run(&r->ex, r->feats + (size_t)r->rows * D, r->frames, r->nb, err, errsize);
    for (int i = 0; i < r->nb; i++) mcnn_image_free(&r->frames[i]);
    r->rows += r->nb, r->frames_done += r->nb;
    r->nb = 0;
    return rc;
}

/* Frames come shot after shot (time order), so a shot's rows are contiguous: its entry is
 * opened at its first frame and counts the frames after it.  Encoding runs in batches of
 * --batch frames across shots. */
static int on_frame(void *ctx, const tag_shot *s, int n, const mcnn_image *img, char *err,
                    size_t errsize)
{
    feat_run *r = ctx;
    if (!img) { /* the video is over: this shot took -n-1 frames */
        if (n == -1)
            app_error("note: %s: no frame sampled at %g fps (the shot lasts %.3f s): left out",
                      s->key, r->o->fps, s->end_time - s->start_time);
        return 0;
    }
    if (stop_requested) return fail_with(err, errsize, "stopped");
    if (n == 0) {
        if (r->nshots == r->cap_shots) {
            r->cap_shots = r->cap_shots ? 2 * r->cap_shots : 256;
            r->shots = realloc(r->shots, (size_t)r->cap_shots * sizeof *r->shots);
            if (!r->shots) app_error("out of memory"), exit(1);
        }
        r->shots[r->nshots++] = (shot_buf){shots_strdup(s->key), 0, r->rows + r->nb};
    }
    r->shots[r->nshots - 1].frames++;
    mcnn_image *dst = &r->frames[r->nb++];
    const size_t bytes = (size_t)img->width * img->height * img->channels;
    *dst = (mcnn_image){img->width, img->height, img->channels, mcnn_alloc(bytes)};
    if (!dst->pixels) app_error("out of memory"), exit(1);
    memcpy(dst->pixels, img->pixels, bytes);
    return r->nb == r->o->batch ? encode_batch(r, err, errsize) : 0;
}

static int write_shard(feat_run *r)
{
    char err[1024];
    if (!r->nshots && !r->nvideos) return 0;
    feat_index *x = &r->index;
    char name[64], path[4096];
    snprintf(name, sizeof name, "features-%05d.safetensors", x->nshards);
    snprintf(path, sizeof path, "%s/%s", r->o->out, name);
    const int S = r->nshots;
    int32_t *len = shots_xmalloc((size_t)(S + 1) * sizeof *len);
    int64_t *off = shots_xmalloc((size_t)(S + 1) * sizeof *off);
    size_t jl = 3;
    for (int i = 0; i < S; i++) jl += mcnn_json_escape(NULL, r->shots[i].key, strlen(r->shots[i].key)) + 1;
    char *keys = shots_xmalloc(jl), *p = keys;
    *p++ = '[';
    for (int i = 0; i < S; i++) {
        len[i] = r->shots[i].frames, off[i] = r->shots[i].row;
        if (i) *p++ = ',';
        p += mcnn_json_escape(p, r->shots[i].key, strlen(r->shots[i].key));
    }
    *p++ = ']', *p = '\0';
    char fps[32], kf[32];
    snprintf(fps, sizeof fps, "%.9g", r->o->fps);
    snprintf(kf, sizeof kf, "%d", r->o->max_frames);
    const char *meta[] = {"keys", keys, "kind", x->kind, "model", x->model, "fps", fps,
                          "max_frames", kf};
    mcnn_st_entry t[3] = {
        {"features", MCNN_DTYPE_F32, 2, {r->rows, r->ex.dim}, r->feats},
        {"lengths", MCNN_DTYPE_I32, 1, {S}, len},
        {"offsets", MCNN_DTYPE_I64, 1, {S}, off}};
    int rc = 0;
    if (S && mcnn_safetensors_write(path, t, 3, meta, 5) != MCNN_OK)
        rc = -1, app_error("%s", mcnn_last_error());
    if (rc == 0) {
        /* the index names the shard only once it is on disk */
        if (S) {
            x->shards = realloc(x->shards, (size_t)(x->nshards + 1) * sizeof *x->shards);
            if (!x->shards) app_error("out of memory"), exit(1);
            x->shards[x->nshards++] = shots_strdup(name);
        }
        for (int i = 0; i < S; i++) {
            if (x->n == x->cap) {
                x->cap = x->cap ? 2 * x->cap : 1024;
                x->e = realloc(x->e, (size_t)x->cap * sizeof *x->e);
                if (!x->e) app_error("out of memory"), exit(1);
            }
            x->e[x->n++] = (feat_entry){r->shots[i].key, x->nshards - 1, r->shots[i].row,
                                        r->shots[i].frames};
            r->shots[i].key = NULL;
        }
        x->videos = realloc(x->videos, (size_t)(x->nvideos + r->nvideos + 1) * sizeof *x->videos);
        if (!x->videos) app_error("out of memory"), exit(1);
        for (int i = 0; i < r->nvideos; i++) x->videos[x->nvideos++] = r->videos[i];
        r->nvideos = 0;
        if (feat_index_write(x, err, sizeof err)) rc = -1, app_error("%s", err);
    }
    for (int i = 0; i < S; i++) free(r->shots[i].key);
    r->shots_done += S;
    r->nshots = 0, r->rows = 0;
    free(len), free(off), free(keys);
    return rc;
}

static int video_done(void *ctx, const char *video)
{
    feat_run *r = ctx;
    char *name = name_escape(video);
    int done = 0;
    for (int i = 0; i < r->index.nvideos && !done; i++) done = !strcmp(r->index.videos[i], name);
    free(name);
    return done;
}

int shots_features_main(int argc, char **argv)
{
    feat_options o;
    if (parse(&o, argc, argv, 0)) exit(2);
    if (o.threads) mcnn_set_threads(o.threads);
    char err[2048];
    tags t = {0};
    for (int i = 0; i < o.tags.count; i++)
        if (tags_read(&t, o.tags.items[i], err, sizeof err)) app_error("%s", err), exit(1);
    if (shots_mkdirs(o.out, err, sizeof err)) app_error("%s", err), exit(1);
    feat_run r = {.o = &o};
    if (extractor_load(&r.ex, o.model, o.output, o.batch)) exit(1);
    if (feat_index_read(&r.index, o.out, 1, err, sizeof err)) app_error("%s", err), exit(1);
    feat_index *x = &r.index;
    if (x->dim) { /* resuming: the same extraction, or refuse */
        if (x->dim != r.ex.dim || x->max_frames != o.max_frames || x->fps != o.fps ||
            strcmp(x->kind, r.ex.kind) || strcmp(x->model, o.model))
            app_error("%s holds features of another run (%s %d-d from %s, %g fps, %d frames"
                             "): use another --out", o.out, x->kind, x->dim, x->model, x->fps,
                             x->max_frames), exit(1);
        if (!o.quiet)
            fprintf(stderr, "resuming: %d videos (%d shots) already in %s\n", x->nvideos, x->n, o.out);
    } else {
        x->dim = r.ex.dim, x->max_frames = o.max_frames, x->fps = o.fps;
        snprintf(x->kind, sizeof x->kind, "%s", r.ex.kind);
        snprintf(x->model, sizeof x->model, "%s", o.model);
    }
    r.frames = shots_xcalloc((size_t)o.batch, sizeof *r.frames);
    signal(SIGINT, on_signal), signal(SIGTERM, on_signal);

    walk_config wc = {.fps = o.fps, .max_frames = o.max_frames, .videos_dir = o.videos};
    int failed = 0, rc = 0;
    /* one video at a time, so that the shard and the index change at video boundaries */
    for (int first = 0; first < t.nshots && !stop_requested;) {
        int end = first;
        while (end < t.nshots && !strcmp(t.shots[end].video, t.shots[first].video)) end++;
        tags one = {.nshots = end - first, .shots = t.shots + first};
        int f = 0;
        const double t0 = mcnn_seconds();
        const int64_t before = r.frames_done;
        const int nshots_before = r.nshots;
        walk_tags(&one, &wc, video_done, on_frame, &r, &f);
        if (!f && encode_batch(&r, err, sizeof err)) app_error("%s", err), f = 1;
        if (f) { /* the video's partial shots are dropped from the pending shard */
            failed++;
            for (int i = nshots_before; i < r.nshots; i++) free(r.shots[i].key);
            r.rows = r.nshots > nshots_before ? r.shots[nshots_before].row : r.rows;
            r.nshots = nshots_before;
            for (int i = 0; i < r.nb; i++) mcnn_image_free(&r.frames[i]);
            r.nb = 0;
        } else if (!video_done(&r, t.shots[first].video)) {
            r.videos = realloc(r.videos, (size_t)(r.nvideos + 1) * sizeof *r.videos);
            if (!r.videos) app_error("out of memory"), exit(1);
            r.videos[r.nvideos++] = name_escape(t.shots[first].video);
            if (!o.quiet)
                fprintf(stderr, "%s: %d shots, %lld frames (%.1f frames/s)\n", t.shots[first].video,
                        end - first, (long long)(r.frames_done - before),
                        (double)(r.frames_done - before) / (mcnn_seconds() - t0 + 1e-9));
            if (r.nshots >= o.shard_shots && write_shard(&r)) rc = 1;
        }
        first = end;
        if (rc) break;
    }
    if (rc == 0 && write_shard(&r)) rc = 1;
    if (stop_requested) {
        app_error("stopped: %s holds every finished video; run the same command to resume", o.out);
        rc = rc ? rc : 75;
    } else if (failed) {
        app_error("%d video%s failed (named above); the others are in %s", failed,
                  failed > 1 ? "s" : "", o.out);
        rc = 1;
    } else if (!o.quiet) {
        fprintf(stderr, "%s: %d shots of %d videos, %d-d %s\n", o.out, x->n, x->nvideos, x->dim,
                x->kind);
    }
    free(r.frames), free(r.feats), free(r.shots), free(r.videos);
    extractor_free(&r.ex);
    feat_index_free(x);
    tags_free(&t);
    args_strings_free(&o.tags);
    return rc;
}

/* ---- frames -------------------------------------------------------------------------------- */
typedef struct frames_run {
    const feat_options *o;
    int64_t written;
} frames_run;

static int save_frame(void *ctx, const tag_shot *s, int n, const mcnn_image *img, char *err,
                      size_t errsize)
{
    frames_run *r = ctx;
    if (!img) return 0;
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/%s", r->o->out, s->key);
    if (n == 0 && shots_mkdirs(dir, err, errsize)) return -1;
    snprintf(path, sizeof path, "%s/%04d.ppm", dir, n);
    mcnn_image small = {0};
    const mcnn_image *out = img;
    if (r->o->size) {
        if (mcnn_image_resize_shorter(&small, img, r->o->size, MCNN_RESAMPLE_BICUBIC) != MCNN_OK)
            return fail_with(err, errsize, "%s", mcnn_last_error());
        out = &small;
    }
    const mcnn_status st = mcnn_ppm_write(path, out);
    mcnn_image_free(&small);
    if (st != MCNN_OK) return fail_with(err, errsize, "%s", mcnn_last_error());
    r->written++;
    return 0;
}

/* A split of shots as a split of their frames: each frame a sample with its shot's labels
 * (frames that were written: DIR/<key>/0000.ppm, 0001.ppm, ...). */
static int frame_split(const char *split_path, const char *dir)
{
    FILE *in = fopen(split_path, "r");
    if (!in) return app_error("%s: cannot open", split_path), -1;
    const char *base = strrchr(split_path, '/');
    char out_path[4096], err[1024];
    snprintf(out_path, sizeof out_path, "%s/%s", dir, base ? base + 1 : split_path);
    outfile o;
    if (outfile_open(&o, out_path, err, sizeof err)) return fclose(in), app_error("%s", err), -1;
    char *line = NULL;
    size_t cap = 0;
    int64_t shots = 0, frames = 0, missing = 0;
    while (getline(&line, &cap, in) >= 0) {
        line[strcspn(line, "\r\n")] = '\0';
        char *sp = strpbrk(line, " \t");
        if (!line[0] || line[0] == '#' || !sp) continue;
        *sp = '\0';
        int n = 0;
        for (;; n++) {
            char path[4200];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s/%04d.ppm", dir, line, n);
            if (stat(path, &st) != 0) break;
            fprintf(o.f, "%s/%04d.ppm %s\n", line, n, sp + 1);
        }
        shots++, frames += n, missing += n == 0;
    }
    free(line);
    fclose(in);
    outfile_check(&o);
    if (outfile_commit(&o, err, sizeof err)) return app_error("%s", err), -1;
    fprintf(stderr, "%s: %lld frames of %lld shots%s\n", out_path, (long long)frames,
            (long long)shots, missing ? " (some shots have no frames: left out)" : "");
    return 0;
}

int shots_frames_main(int argc, char **argv)
{
    feat_options o;
    if (parse(&o, argc, argv, 1)) return 2;
    char err[2048];
    tags t = {0};
    for (int i = 0; i < o.tags.count; i++)
        if (tags_read(&t, o.tags.items[i], err, sizeof err)) return app_error("%s", err), 1;
    if (shots_mkdirs(o.out, err, sizeof err)) return app_error("%s", err), 1;
    frames_run r = {.o = &o};
    walk_config wc = {.fps = o.fps, .max_frames = o.max_frames, .videos_dir = o.videos};
    int failed = 0;
    walk_tags(&t, &wc, NULL, save_frame, &r, &failed);
    if (!o.quiet) fprintf(stderr, "%s: %lld frames of %d shots\n", o.out, (long long)r.written, t.nshots);
    if (failed) app_error("%d video%s failed (named above)", failed, failed > 1 ? "s" : "");
    for (int i = 0; i < o.splits.count; i++)
        if (frame_split(o.splits.items[i], o.out)) failed++;
    args_strings_free(&o.splits);
    tags_free(&t);
    args_strings_free(&o.tags);
    return failed ? 1 : 0;
}
