/* The MovieCLIP pipeline end to end (issue 12), run as a user runs it:
 *   four short videos made here with ffmpeg (colour scenes with hard cuts at known frames)
 *   -> mcnn-classify tags them with the tiny CLIP of ../shared/ref: the shots match the cuts
 *   -> mcnn-shots split: the weak labels follow MovieCLIP's rule (checked from the tags JSON
 *      by this test's own reading of the rule), the merges, the 150-label order; splits by video
 *   -> mcnn-shots features: the index's frame counts, the features equal mcnn-classify's own
 *      embeddings of the same frames, resuming after a lost video
 *   -> mcnn-shots train: LSTM / transformer / mean-pool models train, checkpoint, resume bit for
 *      bit, and evaluate; eval agrees with train's evaluation
 *   -> mcnn-shots frames + mcnn-train + eval --frame-scores: a frame model on the shots' frames
 *   and the evaluation's numbers against numpy goldens (tests/ref/gen_movieclip_eval.py):
 *   AP, mAP, F1, top-k, pooled kappa and kappa against human-verified labels.
 * Without ffmpeg or the shared data the video part is skipped, saying so. */
#define _XOPEN_SOURCE 700
#include "mcnn_test.h"
#include "test_util.h"
#include "io/json.h"

#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { W = 64, H = 64, FPS = 10, NV = 4, NLAB = 150 };

static char shots_app[1024], classify_app[1024], train_app[1024], tmp[256], cbase[4096];
static int have_videos; /* ffmpeg and the shared data are there and the videos were made */

/* The scenes: colours whose OpenCV-HSV differences are far above the detector's 27 */
static const unsigned char scene_rgb[4][3] = {
    {220, 40, 40}, {40, 40, 220}, {30, 120, 30}, {240, 240, 240}};
/* each video: its scenes and where each starts; the last entry is the frame count */
static const struct { int n; int scene[3]; int start[4]; } videos[NV] = {
    {3, {0, 1, 2}, {0, 12, 24, 36}},
    {2, {3, 0}, {0, 15, 30}},
    {3, {2, 3, 1}, {0, 10, 22, 32}},
    {2, {1, 2}, {0, 18, 30}},
};

static const char *tpath(const char *name) { return test_path_in(tmp, name); }

/* A command in the test's folder, output to out.txt / err.txt there; its exit status. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static int run(const char *fmt, ...)
{
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s >out.txt 2>err.txt", tmp, args);
    return test_system(cmd); /* err.txt stays in tmp, which is kept when a test fails */
}

static char *slurp(const char *path)
{
    unsigned char *d = NULL;
    size_t n;
    if (mcnn_read_file_maybe_gzip(&d, &n, path) != MCNN_OK) return NULL;
    return (char *)d;
}

static double json_num(const mcnn_json *o, const char *key)
{
    const mcnn_json *v = mcnn_json_get(o, key);
    return v && v->type == MCNN_JSON_NUMBER ? v->num : NAN;
}

/* lines of a text file (a copy; free with free_lines) */
static int read_lines(const char *path, char ***out)
{
    char *text = slurp(path);
    int n = 0;
    *out = NULL;
    for (char *p = text; p && *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = '\0';
        *out = realloc(*out, (size_t)(n + 1) * sizeof **out);
        (*out)[n++] = strdup(p);
        if (!e) break;
        p = e + 1;
    }
    mcnn_free(text);
    return n;
}

static void free_lines(char **l, int n)
{
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

/* ---- the videos ------------------------------------------------------------------------------ */
static int make_videos(void)
{
    static unsigned char px[W * H * 3];
    for (int v = 0; v < NV; v++) {
        char ppm[600], cmd[2000];
        snprintf(ppm, sizeof ppm, "%s/v%d.ppm", tmp, v);
        FILE *f = fopen(ppm, "wb");
        if (!f) return -1;
        for (int s = 0; s < videos[v].n; s++)
            for (int fr = videos[v].start[s]; fr < videos[v].start[s + 1]; fr++) {
                for (int i = 0; i < W * H; i++) memcpy(px + 3 * i, scene_rgb[videos[v].scene[s]], 3);
                fprintf(f, "P6\n%d %d\n255\n", W, H);
                fwrite(px, 1, sizeof px, f);
            }
        fclose(f);
        snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -y -f image2pipe -vcodec ppm "
                 "-framerate %d -i '%s' -c:v ffv1 -pix_fmt bgr0 '%s/v%d.mkv'", FPS, ppm, tmp, v);
        if (test_system(cmd) != 0) return -1;
    }
    return 0;
}

/* ---- tagging: the shots are the scenes ------------------------------------------------------- */
static void test_tags_find_the_cuts(void)
{
    if (!have_videos) {
        TEST_SKIP("ffmpeg or the shared data (MCNN_SHARED) is missing: the pipeline is not run");
        return;
    }
    int rc = run("%s %s --no-table --min-shot-len 5 --json tags.json --video v0.mkv --video v1.mkv "
                 "--video v2.mkv --video v3.mkv", classify_app, cbase);
    TEST_ASSERT(rc == 0, "mcnn-classify exit %d", rc);
    mcnn_json_doc doc;
    if (!test_parse_json_file(&doc, tpath("tags.json"))) return;
    for (int v = 0; v < NV; v++) {
        char name[16];
        snprintf(name, sizeof name, "v%d.mkv", v);
        const mcnn_json *vid = mcnn_json_get(doc.root, name);
        TEST_ASSERT(vid && (int)vid->count == videos[v].n, "%s: %zu shots, want %d", name,
                    vid ? vid->count : 0, videos[v].n);
        int s = 0;
        for (const mcnn_json *shot = vid ? vid->child : NULL; shot && s < videos[v].n; shot = shot->next, s++) {
            TEST_ASSERT(json_num(shot, "start_frame") == videos[v].start[s] &&
                        json_num(shot, "end_frame") == videos[v].start[s + 1] - 1,
                        "%s shot %d: frames %g-%g, want %d-%d", name, s, json_num(shot, "start_frame"),
                        json_num(shot, "end_frame"), videos[v].start[s], videos[v].start[s + 1] - 1);
        }
    }
    mcnn_json_free(&doc);
}

/* ---- weak labels and splits ------------------------------------------------------------------ */
/* The weak labels of every shot by MovieCLIP's rule, read from the tags JSON here: top-1 >= t1;
 * then top-1 and ranks 2-5 >= t2; names merged and looked up in labels-150.txt. */
static int expected_weak(char ***lines_out, double t1, double t2, char **labels, int K)
{
    mcnn_json_doc doc;
    int n = 0;
    *lines_out = NULL;
    if (!test_parse_json_file(&doc, tpath("tags.json"))) return 0;
    for (const mcnn_json *v = doc.root->child; v; v = v->next)
        for (const mcnn_json *s = v->child; s; s = s->next) {
            const mcnn_json *lab = mcnn_json_get(s, "labels");
            const char *name[8];
            double score[8];
            int m = 0;
            for (const mcnn_json *l = lab->child; l && m < 8; l = l->next) name[m] = l->key, score[m++] = l->num;
            for (int i = 1; i < m; i++) /* ranked (the JSON is, already) */
                TEST_ASSERT(score[i] <= score[i - 1], "tags not ranked");
            if (m == 0 || score[0] < t1) continue;
            char line[512];
            int len = snprintf(line, sizeof line, "%s/%s", v->key, s->key), used[NLAB] = {0}, any = 0;
            for (int r = 0; r < m && r < 5; r++) {
                if (r > 0 && score[r] < t2) continue;
                const char *nm = !strcmp(name[r], "interrogation room") ? "room"
                               : !strcmp(name[r], "phone booth") ? "booth" : name[r];
                for (int k = 0; k < K; k++)
                    if (!strcmp(labels[k], nm) && !used[k]) {
                        used[k] = 1, any = 1;
                        len += snprintf(line + len, sizeof line - (size_t)len, " %d", k);
                    }
            }
            if (!any) continue;
            *lines_out = realloc(*lines_out, (size_t)(n + 1) * sizeof **lines_out);
            (*lines_out)[n++] = strdup(line);
        }
    mcnn_json_free(&doc);
    return n;
}

static void check_split(const char *dir, double t1, double t2, char **labels, int K)
{
    char path[700];
    char **want, **got;
    const int nw = expected_weak(&want, t1, t2, labels, K);
    snprintf(path, sizeof path, "%s/%s/all.txt", tmp, dir);
    const int ng = read_lines(path, &got);
    TEST_ASSERT(ng == nw, "%s: %d weak-labelled shots, the rule gives %d", dir, ng, nw);
    for (int i = 0; i < ng && i < nw; i++)
        TEST_ASSERT(!strcmp(got[i], want[i]), "%s line %d: '%s', the rule gives '%s'", dir, i + 1,
                    got[i], want[i]);
    /* every kept shot in exactly one split, every video in one split only */
    const char *names[3] = {"train", "val", "test"};
    int split_of_video[NV], count[3] = {0}, seen = 0;
    for (int v = 0; v < NV; v++) split_of_video[v] = -1;
    for (int s = 0; s < 3; s++) {
        char **l;
        snprintf(path, sizeof path, "%s/%s/%s.txt", tmp, dir, names[s]);
        const int n = read_lines(path, &l);
        for (int i = 0; i < n; i++) {
            int v = -1;
            TEST_ASSERT(sscanf(l[i], "v%d.mkv/", &v) == 1 && v >= 0 && v < NV, "bad key '%s'", l[i]);
            if (v < 0 || v >= NV) continue;
            TEST_ASSERT(split_of_video[v] == -1 || split_of_video[v] == s,
                        "v%d.mkv is in %s and %s", v, names[split_of_video[v]], names[s]);
            split_of_video[v] = s;
            int found = 0;
            for (int j = 0; j < ng; j++) found += !strcmp(got[j], l[i]);
            TEST_ASSERT(found == 1, "%s: '%s' is not one line of all.txt", names[s], l[i]);
        }
        count[s] = n, seen += n;
        free_lines(l, n);
    }
    TEST_ASSERT(seen == ng, "%s: the splits hold %d shots, all.txt %d", dir, seen, ng);
    /* pos_weight = negatives / positives over the training shots (1 without positives) */
    char **pw, **tr;
    snprintf(path, sizeof path, "%s/%s/pos_weight.txt", tmp, dir);
    const int npw = read_lines(path, &pw);
    snprintf(path, sizeof path, "%s/%s/train.txt", tmp, dir);
    const int ntr = read_lines(path, &tr);
    TEST_ASSERT(npw == K, "%d pos_weight lines", npw);
    for (int k = 0; k < K && k < npw; k++) {
        int p = 0;
        for (int i = 0; i < ntr; i++) {
            char *save = NULL, *copy = strdup(tr[i]);
            strtok_r(copy, " ", &save);
            for (char *t; (t = strtok_r(NULL, " ", &save));) p += atoi(t) == k;
            free(copy);
        }
        TEST_CLOSE("pos_weight", atof(pw[k]), p ? (double)(ntr - p) / p : 1.0, 1e-6, 0);
    }
    free_lines(pw, npw), free_lines(tr, ntr), free_lines(want, nw), free_lines(got, ng);
    (void)count;
}

static char **labels150;
static int nlabels150;
static char l150[1024]; /* its absolute path */

static void test_weak_labels_and_splits(void)
{
    if (!have_videos) {
        TEST_SKIP("no videos");
        return;
    }
    int rc = run("%s split --tags tags.json --labels '%s' --out splits --top1 0.1 --rest 0.05 "
                 "--val 0.25 --test 0.25 --seed 3", shots_app,
                 l150);
    TEST_ASSERT(rc == 0, "split exit %d", rc);
    check_split("splits", 0.1, 0.05, labels150, nlabels150);
    /* each of the three splits got one video of four (0.25 each) */
    char **l;
    const int n = read_lines(tpath("splits/videos.tsv"), &l);
    int per[3] = {0};
    for (int i = 1; i < n; i++) per[!strncmp(l[i], "val", 3) ? 1 : !strncmp(l[i], "test", 4) ? 2 : 0]++;
    TEST_ASSERT(n == 1 + NV && per[0] == 2 && per[1] == 1 && per[2] == 1,
                "videos per split %d/%d/%d", per[0], per[1], per[2]);
    free_lines(l, n);
    /* MovieCLIP's own thresholds (0.4, 0.1) on the same tags */
    rc = run("%s split --tags tags.json --labels '%s' --out splits_default", shots_app,
             l150);
    TEST_ASSERT(rc == 0 || rc == 1, "split exit %d", rc); /* 1: nothing met them */
    if (rc == 0) check_split("splits_default", 0.4, 0.1, labels150, nlabels150);
    /* the same seed, the same splits */
    rc = run("%s split --tags tags.json --labels '%s' --out splits_again --top1 0.1 --rest 0.05 "
             "--val 0.25 --test 0.25 --seed 3 && cmp splits/test.txt splits_again/test.txt && "
             "cmp splits/train.txt splits_again/train.txt", shots_app,
             l150);
    TEST_ASSERT(rc == 0, "a second split with the same seed differs");
}

/* 1 when the file (in the test's folder) contains text. */
static int err_says(const char *name, const char *text)
{
    size_t n = 0;
    unsigned char *s = test_read_file(tpath(name), &n);
    const int yes = s && strstr((const char *)s, text) != NULL;
    free(s);
    return yes;
}

/* The same splits straight from mcnn-classify's --out-jsonl shards (no merge), as from its JSON;
 * a shard cut off, or missing a video's end line, is refused. */
static void test_splits_from_jsonl_shards(void)
{
    if (!have_videos) {
        TEST_SKIP("no videos");
        return;
    }
    for (int s = 0; s < 2; s++) {
        int rc = run("%s %s --no-table --min-shot-len 5 --shard %d/2 --out-jsonl tags-%d.jsonl "
                     "--video v0.mkv --video v1.mkv --video v2.mkv --video v3.mkv", classify_app,
                     cbase, s, s);
        TEST_ASSERT(rc == 0, "mcnn-classify --shard %d/2 exit %d", s, rc);
    }
    int rc = run("%s split --tags tags-0.jsonl --tags tags-1.jsonl --labels '%s' --out splits_jsonl "
                 "--top1 0.1 --rest 0.05 --val 0.25 --test 0.25 --seed 3", shots_app, l150);
    TEST_ASSERT(rc == 0, "split from the JSONL shards: exit %d", rc);
    const char *const names[] = {"train", "val", "test"};
    for (int i = 0; i < 3; i++) {
        rc = run("sort splits/%s.txt > a.sorted && sort splits_jsonl/%s.txt > b.sorted && "
                 "cmp -s a.sorted b.sorted", names[i], names[i]);
        TEST_ASSERT(rc == 0, "%s.txt from the JSONL shards differs from the one from the JSON",
                    names[i]);
    }
    /* a shard whose run was cut off: the end lines dropped, then a line cut in half */
    rc = run("{ for f in tags-0.jsonl tags-1.jsonl; do [ $(wc -l < $f) -gt 1 ] && g=$f; done; "
             "grep -v '\"done\": true' $g > cut.jsonl && cp $g half.jsonl && "
             "printf '{\"video\": \"v9' >> half.jsonl; }");
    TEST_ASSERT(rc == 0, "making the cut-off shards");
    int out = run("%s split --tags cut.jsonl --labels '%s' --out bad_cut", shots_app,
                  l150);
    TEST_ASSERT(out != 0 && err_says("err.txt", "no end line"),
                "a shard without end lines: exit %d", out);
    out = run("%s split --tags half.jsonl --labels '%s' --out bad_half", shots_app,
              l150);
    TEST_ASSERT(out != 0 && err_says("err.txt", "cut off"),
                "a shard whose last line is cut: exit %d", out);
}

/* ---- features ------------------------------------------------------------------------------- */
static void test_features_export(void)
{
    if (!have_videos) {
        TEST_SKIP("no videos");
        return;
    }
    int rc = run("%s features --tags tags.json --model model/clip_tiny.safetensors --fps %d "
                 "--max-frames 8 --shard-shots 4 --out feats --quiet", shots_app, FPS);
    TEST_ASSERT(rc == 0, "features exit %d", rc);
    /* the index: every shot, min(8, its frames) frames */
    char **l;
    const int n = read_lines(tpath("feats/index.tsv"), &l);
    int shots = 0, vids = 0;
    for (int i = 0; i < n; i++) {
        char key[64];
        int shard, frames;
        long long row;
        if (!strncmp(l[i], "video\t", 6)) vids++;
        if (sscanf(l[i], "shot\t%63s\t%d\t%lld\t%d", key, &shard, &row, &frames) != 4) continue;
        int v, s;
        TEST_ASSERT(sscanf(key, "v%d.mkv/%d", &v, &s) == 2 && v >= 0 && v < NV && s >= 0 &&
                    s < videos[v].n, "key %s", key);
        if (!(v >= 0 && v < NV && s >= 0 && s < videos[v].n)) continue;
        const int len = videos[v].start[s + 1] - videos[v].start[s];
        TEST_ASSERT(frames == (len < 8 ? len : 8), "%s: %d frames, want %d", key, frames, len < 8 ? len : 8);
        shots++;
    }
    TEST_ASSERT(shots == 10 && vids == NV, "index: %d shots, %d videos", shots, vids);
    free_lines(l, n);
    /* the features are CLIP's embeddings of those frames: as mcnn-classify computes them */
    rc = run("%s %s --no-table --min-shot-len 5 --embeddings emb0.safetensors --video v0.mkv",
             classify_app, cbase);
    size_t ne = 0, nf = 0;
    float *emb = test_read_tensor(tpath("emb0.safetensors"), "embeddings", &ne);
    float *feat = test_read_tensor(tpath("feats/features-00000.safetensors"), "features", &nf);
    if (emb && feat && ne == 36 * 64 && nf >= 24 * 64) {
        /* shard 0 starts with v0's shots: frames 0-7, 12-19, 24-31 */
        const int first[3] = {0, 12, 24};
        for (int s = 0; s < 3; s++)
            test_close_rel("features vs classify embeddings", feat + (size_t)s * 8 * 64,
                           emb + (size_t)first[s] * 64, 8 * 64, 1e-6);
    } else {
        TEST_ASSERT(0, "embeddings %zu, features %zu", ne, nf);
    }
    free(emb), free(feat);
    /* resuming: the index loses its last video (as if stopped before it), the run redoes it */
    rc = run("grep -v 'v3.mkv' feats/index.tsv > feats/index.cut && mv feats/index.cut feats/index.tsv && "
             "%s features --tags tags.json --model model/clip_tiny.safetensors --fps %d "
             "--max-frames 8 --shard-shots 4 --out feats", shots_app, FPS);
    TEST_ASSERT(rc == 0, "resume exit %d", rc);
    char *err = slurp(tpath("err.txt"));
    TEST_ASSERT(err && strstr(err, "resuming: 3 videos") && strstr(err, "10 shots of 4 videos") &&
                !strstr(err, "v0.mkv:"), "resume said:\n%s", err ? err : "");
    mcnn_free(err);
    /* another model into the same folder is refused */
    rc = run("%s features --tags tags.json --model model/clip_tiny.safetensors --fps 2 --out feats",
             shots_app);
    TEST_ASSERT(rc == 1, "a second extraction into feats: exit %d", rc);
}

/* ---- training and evaluation ---------------------------------------------------------------- */
static void test_train_resume_eval(void)
{
    if (!have_videos) {
        TEST_SKIP("no videos");
        return;
    }
    const char *common = "--features feats --splits splits --arch lstm --hidden 16 --epochs 4 "
                         "--batch 2 --step-epochs 2 --quiet";
    int rc = run("%s train %s --out run_a", shots_app, common);
    TEST_ASSERT(rc == 0, "train exit %d", rc);
    /* stopped after epoch 2, resumed: the same model, bit for bit */
    rc = run("%s train %s --out run_b --stop-after 2", shots_app, common);
    TEST_ASSERT(rc == 75, "stop-after exit %d", rc);
    rc = run("%s train %s --out run_b --resume && cmp run_a/model.safetensors run_b/model.safetensors",
             shots_app, common);
    TEST_ASSERT(rc == 0, "resumed model differs from the uninterrupted one (%d)", rc);
    rc = run("%s train %s --out run_b --resume --lr 0.5", shots_app, common);
    TEST_ASSERT(rc == 2, "resume with another --lr: exit %d", rc);
    /* the held-out evaluation written by train, and eval on the same model agree */
    mcnn_json_doc a, b;
    rc = run("printf 'v9.mkv/0 3\\n' > human.txt && cut -d' ' -f1,2 splits/test.txt >> human.txt && "
             "%s eval --model run_a/model.safetensors --features feats --data splits/test.txt "
             "--labels splits/labels.txt --human human.txt --json eval.json", shots_app);
    TEST_ASSERT(rc == 0, "eval exit %d", rc);
    if (test_parse_json_file(&a, tpath("run_a/eval.json"))) {
        if (test_parse_json_file(&b, tpath("eval.json"))) {
            TEST_CLOSE("mAP", json_num(b.root, "mAP"), json_num(a.root, "mAP"), 1e-6, 0);
            TEST_ASSERT(json_num(b.root, "mAP") >= 0 && json_num(b.root, "mAP") <= 1, "mAP");
            const mcnn_json *h = mcnn_json_get(b.root, "human");
            char **t;
            const int nt = read_lines(tpath("splits/test.txt"), &t);
            /* the human file holds the weak top-1 of every test shot: the weak labels agree */
            TEST_ASSERT(h && json_num(h, "shots") == nt && json_num(h, "weak_shots") == nt,
                        "human: %g shots", h ? json_num(h, "shots") : -1);
            TEST_CLOSE("weak kappa", json_num(h, "weak_kappa"), 1.0, 0, 1e-12);
            free_lines(t, nt);
            mcnn_json_free(&b);
        }
        mcnn_json_free(&a);
    }
    if (!getenv("MCNN_TEST_LONG")) {
        fprintf(stderr, "  the transformer and the probes: skipped (set MCNN_TEST_LONG=1)\n");
        return;
    }
    /* the other two kinds train and evaluate too */
    rc = run("%s train --features feats --splits splits --arch transformer --hidden 16 --heads 2 "
             "--layers 1 --epochs 2 --schedule cosine --quiet --out run_t && test -s run_t/eval.json",
             shots_app);
    TEST_ASSERT(rc == 0, "transformer exit %d", rc);
    rc = run("%s probe --features feats --train splits/all.txt --labels splits/labels.txt "
             "--test splits/test.txt --epochs 3 --quiet --out run_p && test -s run_p/eval.json",
             shots_app);
    TEST_ASSERT(rc == 0, "probe exit %d", rc);
    /* a video-level probe: one line per video, its shots' mean features as the sequence */
    rc = run("printf 'v0.mkv 1\\nv1.mkv 2\\nv2.mkv 1 2\\nv3.mkv 2\\n' > videos.txt && "
             "%s probe --features feats --train videos.txt --labels splits/labels.txt "
             "--test videos.txt --hidden 8 --epochs 3 --quiet --out run_v && test -s run_v/eval.json",
             shots_app);
    TEST_ASSERT(rc == 0, "video probe exit %d", rc);
}

/* ---- frame models on the shots' frames ---------------------------------------------------------- */
static void test_frame_model(void)
{
    if (!have_videos) {
        TEST_SKIP("no videos");
        return;
    }
    if (!getenv("MCNN_TEST_LONG")) {
        TEST_SKIP("a frame model through mcnn-train: set MCNN_TEST_LONG=1");
        return;
    }
    int rc = run("%s frames --tags tags.json --fps %d --max-frames 3 --out frames --quiet "
                 "--split splits/train.txt --split splits/test.txt", shots_app, FPS);
    TEST_ASSERT(rc == 0, "frames exit %d", rc);
    char **tr, **fr;
    const int nt = read_lines(tpath("splits/train.txt"), &tr), nf = read_lines(tpath("frames/train.txt"), &fr);
    TEST_ASSERT(nf == 3 * nt, "%d frame lines for %d shots", nf, nt);
    for (int i = 0; i < nf && i / 3 < nt; i++) { /* "<key>/000n.ppm <the shot's labels>" */
        const char *sp = strchr(tr[i / 3], ' ');
        char want[600];
        snprintf(want, sizeof want, "%.*s/%04d.ppm%s", (int)(sp - tr[i / 3]), tr[i / 3], i % 3, sp);
        TEST_ASSERT(!strcmp(fr[i], want), "frame line '%s', want '%s'", fr[i], want);
    }
    free_lines(tr, nt), free_lines(fr, nf);
    /* mcnn-train reads the frames as samples; the shot's score is the mean of its frames' */
    rc = run("%s --data frames/train.txt --labels splits/labels.txt --arch resnet-small --width 4 "
             "--image-size 32 --loss bce --epochs 1 --batch 2 --quiet --out run_frames && "
             "%s features --tags tags.json --model run_frames/model.safetensors --output logits "
             "--fps %d --max-frames 3 --out logits --quiet && "
             "%s eval --frame-scores --features logits --data splits/test.txt "
             "--labels splits/labels.txt --json frame_eval.json",
             train_app, shots_app, FPS, shots_app);
    TEST_ASSERT(rc == 0, "frame model exit %d", rc);
    mcnn_json_doc d;
    if (test_parse_json_file(&d, tpath("frame_eval.json"))) {
        TEST_ASSERT(json_num(d.root, "mAP") >= 0 && json_num(d.root, "mAP") <= 1, "frame mAP");
        mcnn_json_free(&d);
    }
}

/* ---- the metrics against numpy ---------------------------------------------------------------- */
static void test_metrics_against_numpy(void)
{
    mcnn_safetensors *g;
    if (mcnn_safetensors_open(&g, "tests/data/movieclip_eval.safetensors") != MCNN_OK) {
        TEST_ASSERT(0, "%s", mcnn_last_error());
        return;
    }
    const char *texts[3][2] = {{"data", "gold_data.txt"}, {"human", "gold_human.txt"},
                               {"labels", "gold_labels.txt"}};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(tpath(texts[i][1]), "w");
        if (f) fputs(mcnn_safetensors_meta(g, texts[i][0]), f), fclose(f);
    }
    /* the scores with their keys, as a user's precomputed file */
    size_t n = 0;
    float *scores = test_golden(g, "scores", &n);
    const char *keys = mcnn_safetensors_meta(g, "keys");
    const mcnn_st_tensor *t = mcnn_safetensors_find(g, "scores");
    if (scores && keys && t) {
        mcnn_st_entry e = {"scores", MCNN_DTYPE_F32, 2, {t->shape[0], t->shape[1]}, scores};
        const char *meta[] = {"keys", keys};
        TEST_OK(mcnn_safetensors_write(tpath("gold_scores.safetensors"), &e, 1, meta, 1));
    }
    int rc = run("%s eval --scores gold_scores.safetensors --data gold_data.txt --labels "
                 "gold_labels.txt --human gold_human.txt --json gold_eval.json", shots_app);
    TEST_ASSERT(rc == 0, "eval exit %d", rc);
    mcnn_json_doc d;
    if (rc == 0 && test_parse_json_file(&d, tpath("gold_eval.json"))) {
        const mcnn_json *h = mcnn_json_get(d.root, "human"), *k = mcnn_json_get(d.root, "top_k");
        const struct { const char *gold; double got; } checks[] = {
            {"map", json_num(d.root, "mAP")}, {"f1_micro", json_num(d.root, "f1_micro")},
            {"f1_macro", json_num(d.root, "f1_macro")}, {"top1", json_num(k, "1")},
            {"top3", json_num(k, "3")}, {"kappa_pooled", json_num(d.root, "kappa_pooled")},
            {"kappa_human", json_num(h, "kappa")}, {"agree_human", json_num(h, "agreement")},
            {"kappa_weak", json_num(h, "weak_kappa")}};
        for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
            float *want = test_golden(g, checks[i].gold, NULL);
            if (want) TEST_CLOSE(checks[i].gold, checks[i].got, want[0], 1e-5, 1e-6);
            free(want);
        }
        size_t L = 0;
        float *ap = test_golden(g, "ap", &L);
        int k2 = 0;
        for (const mcnn_json *c = mcnn_json_get(d.root, "per_class")->child; c && ap && k2 < (int)L;
             c = c->next, k2++) {
            const double got = json_num(c, "ap");
            if (isnan(ap[k2])) TEST_ASSERT(isnan(got), "AP of a label without positives: %g", got);
            else TEST_CLOSE("per-class AP", got, ap[k2], 1e-5, 1e-6);
        }
        TEST_ASSERT(k2 == (int)L, "%d per-class rows", k2);
        free(ap);
        mcnn_json_free(&d);
    }
    free(scores);
    mcnn_safetensors_close(g);
}

/* ---- bad input --------------------------------------------------------------------------------- */
static void test_bad_input(void)
{
    FILE *f = fopen(tpath("bad_tags.json"), "w");
    if (f) fputs("{\"a.mp4\": {\"0\": {\"start_frame\": 0}}}", f), fclose(f);
    int rc = run("%s split --tags bad_tags.json --labels no_such_labels.txt --out bad", shots_app);
    TEST_ASSERT(rc == 1, "a missing label file: exit %d", rc);
    f = fopen(tpath("labs.txt"), "w");
    if (f) fputs("room\nbooth\n", f), fclose(f);
    rc = run("%s split --tags bad_tags.json --labels labs.txt --out bad", shots_app);
    char *err = slurp(tpath("err.txt"));
    TEST_ASSERT(rc == 1 && err && strstr(err, "lacks start_frame"), "exit %d: %s", rc, err ? err : "");
    mcnn_free(err);
    rc = run("%s split --labels labs.txt --out bad", shots_app);
    TEST_ASSERT(rc == 2, "no --tags: exit %d", rc);
    rc = run("%s nonsense", shots_app);
    TEST_ASSERT(rc == 2, "unknown command: exit %d", rc);
    rc = run("%s train --features nowhere --train labs.txt --labels labs.txt --out bad", shots_app);
    TEST_ASSERT(rc == 1, "missing features: exit %d", rc);
}

int main(void)
{
    setenv("OMP_WAIT_POLICY", "passive", 0);
    const char *b = getenv("MCNN_BUILD");
    char cwd[512];
    if (!getcwd(cwd, sizeof cwd)) return 1;
    /* absolute: the commands run in the test's folder */
    snprintf(shots_app, sizeof shots_app, "%s/%s/mcnn-shots", cwd, b && *b ? b : "build");
    snprintf(classify_app, sizeof classify_app, "%s/%s/mcnn-classify", cwd, b && *b ? b : "build");
    snprintf(train_app, sizeof train_app, "%s/%s/mcnn-train", cwd, b && *b ? b : "build");
    snprintf(tmp, sizeof tmp, "/tmp/mcnn_test_movieclip_%d", (int)getpid());
    mkdir(tmp, 0755);
    if (access(shots_app, X_OK) != 0 || access(classify_app, X_OK) != 0) {
        fprintf(stderr, "  %s or %s not found: build them first (make)\n", shots_app, classify_app);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    const char *clip = test_shared_path("ref/clip_tiny.safetensors");
    char cmd[2048];
    if (access(clip, R_OK) == 0 && access(test_shared_path("data/movieclip/labels-150.txt"), R_OK) == 0 &&
        test_system("command -v ffmpeg >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd, "mkdir -p '%s/model' && ln -sf '%s%s%s' '%s/model/clip_tiny.safetensors'",
                 tmp, clip[0] == '/' ? "" : cwd, clip[0] == '/' ? "" : "/", clip, tmp);
        test_system(cmd);
        /* absolute paths to the shared data: the commands run in tmp */
        char tax[1024], voc[1024];
        const char *t1 = test_shared_path("data/movieclip/taxonomy-179.txt");
        const char *t2 = test_shared_path("data/clip/bpe_simple_vocab_16e6.txt.gz");
        snprintf(tax, sizeof tax, "%s%s%s", t1[0] == '/' ? "" : cwd, t1[0] == '/' ? "" : "/", t1);
        snprintf(voc, sizeof voc, "%s%s%s", t2[0] == '/' ? "" : cwd, t2[0] == '/' ? "" : "/", t2);
        snprintf(cbase, sizeof cbase, "--model model/clip_tiny.safetensors --labels '%s' --vocab '%s'",
                 tax, voc);
        const char *t3 = test_shared_path("data/movieclip/labels-150.txt");
        snprintf(l150, sizeof l150, "%s%s%s", t3[0] == '/' ? "" : cwd, t3[0] == '/' ? "" : "/", t3);
        have_videos = make_videos() == 0;
        if (mcnn_read_label_list(&labels150, &nlabels150, test_shared_path("data/movieclip/labels-150.txt")) != MCNN_OK)
            have_videos = 0;
    }
    TEST_RUN(test_tags_find_the_cuts);
    TEST_RUN(test_weak_labels_and_splits);
    TEST_RUN(test_splits_from_jsonl_shards);
    TEST_RUN(test_features_export);
    TEST_RUN(test_train_resume_eval);
    TEST_RUN(test_frame_model);
    TEST_RUN(test_metrics_against_numpy);
    TEST_RUN(test_bad_input);
    if (labels150) mcnn_free_label_list(labels150, nlabels150);
    snprintf(cmd, sizeof cmd, "rm -rf '%.200s'", tmp);
    if (!test_failed) test_system(cmd); /* kept for inspection when something failed */
    return test_summary();
}
