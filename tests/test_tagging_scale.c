/* mcnn-classify at scale, end to end with the tiny CLIP (../shared/ref) on short videos made
 * here by ffmpeg (colour scenes of 20 frames at 10 fps: cuts at frames 20 and 40; skipped,
 * saying so, without ffmpeg):
 *   - frame sampling: the cuts stay where every frame puts them, each shot's encoded frames are
 *     the ones the rule names (worked out here by hand), and its scores the mean of those
 *     frames' scores in a run that encodes every frame;
 *   - sharding: 3 shards (explicit, and from Open MPI's, Slurm's and a Slurm array's variables)
 *     take disjoint shares that cover every input, and merge makes of them the JSON and weak
 *     labels of one process, byte for byte; what cannot be sharded is refused;
 *   - merge refuses duplicate and conflicting shots and mixed settings, names cut-off and
 *     missing inputs;
 *   - resume: SIGKILL at random moments (2 by default, 25 rounds of 1-3 with MCNN_TEST_LONG=1),
 *     each followed by --resume,
 *     ends with the records of an uninterrupted run; a cut-off last line is dropped, a damaged
 *     line refused. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE /* flock */
#include "mcnn_test.h"
#include "test_util.h"
#include "io/json.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char app[2200], tmp[256], base[4096], err_path[300];
static int have_ffmpeg;

static const char *tpath(const char *name) { return test_path_in(tmp, name); }

/* "<env> <app> <args>" in the test folder, stderr to a file, stdout discarded; exit status. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int run_env(const char *env, const char *fmt, ...)
{
    char args[8192], cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s %s %s >/dev/null 2>'%s'", tmp, env, app, args,
             err_path);
    return test_system(cmd);
}

#define RUN(...) run_env("", __VA_ARGS__)

static char *slurp(const char *path)
{
    unsigned char *d = NULL;
    size_t n;
    if (mcnn_read_file_maybe_gzip(&d, &n, path) != MCNN_OK) return NULL;
    return (char *)d;
}

static void expect_err(const char *what, const char *s)
{
    char *e = slurp(err_path);
    TEST_ASSERT(e && strstr(e, s), "%s: stderr lacks '%s':\n%s", what, s, e ? e : "(none)");
    free(e);
}

static int same_file(const char *a, const char *b)
{
    char *x = slurp(a), *y = slurp(b);
    const int same = x && y && strcmp(x, y) == 0;
    free(x), free(y);
    return same;
}

static int ready(void)
{
    if (!have_ffmpeg) TEST_SKIP("ffmpeg is not installed: no test videos");
    return have_ffmpeg;
}

/* ---- test videos ------------------------------------------------------------------------- */
/* name: 20 frames of each colour at 10 fps (a cut every 20 frames), lossless (FFV1); a fifth of
 * each frame is ffmpeg's moving test pattern, so that the frames of a shot differ. */
static void make_video(const char *name, const char *c1, const char *c2, const char *c3)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && ffmpeg -nostdin -v error -y "
             "-f lavfi -i color=c=%s:s=64x48:r=10:d=2 -f lavfi -i color=c=%s:s=64x48:r=10:d=2 "
             "-f lavfi -i color=c=%s:s=64x48:r=10:d=2 -f lavfi -i testsrc=s=64x48:r=10:d=2 "
             "-filter_complex '[3]split=3[t0][t1][t2];[0][t0]blend=all_opacity=0.2[a];"
             "[1][t1]blend=all_opacity=0.2[b];[2][t2]blend=all_opacity=0.2[c];"
             "[a][b][c]concat=n=3:v=1' -c:v ffv1 %s",
             tmp, c1, c2, c3, name);
    TEST_ASSERT(test_system(cmd) == 0, "ffmpeg could not make %s", name);
}

static int label_index(const char *const *labels, int L, const char *name)
{
    for (int i = 0; i < L; i++)
        if (!strcmp(labels[i], name)) return i;
    return -1;
}

/* ---- sampling -------------------------------------------------------------------------------- */
/* Each shot of json's "scenes.mkv": frames [20s, 20s + 19], encoded frames 20s + want[..] (the
 * offsets the rule gives), scores = the mean of those frames' scores in all.safetensors. */
static void check_sampled(const char *json, const char *video, const int *want, int nwant,
                          const float *all, const float *frame_of, size_t nframes,
                          const char *const *labels, int L)
{
    mcnn_json_doc doc;
    if (!test_parse_json_file(&doc, json)) return;
    const mcnn_json *v = mcnn_json_get(doc.root, video);
    TEST_ASSERT(v && v->count == 3, "%s: %zu shots, want 3 (cuts at 20 and 40)", json,
                v ? v->count : 0);
    int s = 0;
    for (const mcnn_json *shot = v ? v->child : NULL; shot; shot = shot->next, s++) {
        const int64_t a = mcnn_json_get(shot, "start_frame")->i, b = mcnn_json_get(shot, "end_frame")->i;
        TEST_ASSERT(a == 20 * s && b == 20 * s + 19, "shot %d: frames %lld-%lld", s, (long long)a,
                    (long long)b);
        const mcnn_json *sm = mcnn_json_get(shot, "sampled_frames");
        TEST_ASSERT(sm && (int)sm->count == nwant, "shot %d: %zu sampled frames, want %d", s,
                    sm ? sm->count : 0, nwant);
        int k = 0;
        for (const mcnn_json *e = sm ? sm->child : NULL; e && k < nwant; e = e->next, k++)
            TEST_ASSERT(e->i == a + want[k], "shot %d: sampled frame %d is %lld, want %lld", s, k,
                        (long long)e->i, (long long)(a + want[k]));
        for (const mcnn_json *lab = mcnn_json_get(shot, "labels")->child; lab; lab = lab->next) {
            const int id = label_index(labels, L, lab->key);
            double sum = 0;
            for (int q = 0; q < nwant; q++)
                for (size_t f = 0; f < nframes; f++)
                    if ((int64_t)frame_of[f] == a + want[q]) sum += all[f * (size_t)L + id];
            TEST_CLOSE("sampled shot mean", lab->num, sum / nwant, 1e-5, 1e-7);
        }
    }
    mcnn_json_free(&doc);
}

/* Each shot line's "embedding_row" R: rows R, R + 1, ... of the embeddings file are the shot's
 * sampled frames. */
static void check_embedding_rows(const char *jsonl, const char *emb, int nshots)
{
    size_t n = 0;
    float *frame_of = test_read_tensor(emb, "frame_index", &n);
    char *text = slurp(jsonl);
    int shots = 0;
    for (char *line = text ? strchr(text, '\n') : NULL; line && line[1]; line = strchr(line + 1, '\n')) {
        mcnn_json_doc doc;
        char *end = strchr(line + 1, '\n');
        if (!end || mcnn_json_parse(&doc, line + 1, (size_t)(end - line - 1)) != MCNN_OK) break;
        const mcnn_json *row = mcnn_json_get(doc.root, "embedding_row"),
                        *sm = mcnn_json_get(doc.root, "sampled_frames");
        if (sm) {
            shots++;
            TEST_ASSERT(row && row->is_int, "a shot line without its embedding_row");
            int q = 0;
            for (const mcnn_json *e = sm->child; row && frame_of && e; e = e->next, q++)
                TEST_ASSERT(row->i + q < (int64_t)n && (int64_t)frame_of[row->i + q] == e->i,
                            "row %lld + %d is not frame %lld", (long long)row->i, q, (long long)e->i);
        }
        mcnn_json_free(&doc);
    }
    TEST_ASSERT(shots == nshots, "%s: %d shot lines, want %d", jsonl, shots, nshots);
    free(text), free(frame_of);
}

static void test_sampling(void)
{
    if (!ready()) return;
    make_video("scenes.mkv", "red", "blue", "yellow");
    int rc = RUN("%s --no-table --embeddings all.safetensors --video scenes.mkv", base);
    TEST_ASSERT(rc == 0, "every frame: exit %d", rc);
    size_t n = 0, nf = 0;
    float *all = test_read_tensor(tpath("all.safetensors"), "scores", &n);
    float *frame_of = test_read_tensor(tpath("all.safetensors"), "frame_index", &nf);
    TEST_ASSERT(nf == 60, "%zu frames encoded without sampling, want 60", nf);
    char *labels_text = slurp(test_shared_path("data/movieclip/taxonomy-179.txt"));
    const char *labels[179];
    int L = 0;
    for (char *p = labels_text; p && *p && L < 179; L++) {
        labels[L] = p;
        char *e = strchr(p, '\n');
        if (!e) break;
        *e = '\0', p = e + 1;
    }
    if (!all || !frame_of || nf != 60 || L != 179) goto out;
    /* --every 7: offsets 0, 7, 14; the cut at 20 is still at 20 (not at 21, the first sampled
     * frame after it), so shot detection saw every frame */
    static const int every7[] = {0, 7, 14};
    rc = RUN("%s --no-table --every 7 --json e7.json --video scenes.mkv --out-jsonl e7.jsonl "
             "--embeddings e7.safetensors", base);
    TEST_ASSERT(rc == 0, "--every 7: exit %d", rc);
    check_sampled(tpath("e7.json"), "scenes.mkv", every7, 3, all, frame_of, nf, labels, L);
    check_embedding_rows(tpath("e7.jsonl"), tpath("e7.safetensors"), 3);
    /* --sample-fps 3 at 10 fps: the first frame at or after j/3 s, j/3 s = 3.33 j frames */
    static const int fps3[] = {0, 4, 7, 10, 14, 17};
    rc = RUN("%s --no-table --sample-fps 3 --json f3.json --video scenes.mkv", base);
    TEST_ASSERT(rc == 0, "--sample-fps 3: exit %d", rc);
    check_sampled(tpath("f3.json"), "scenes.mkv", fps3, 6, all, frame_of, nf, labels, L);
    /* a rule that would skip a whole shot still encodes its first frame */
    static const int first[] = {0};
    rc = RUN("%s --no-table --every 1000 --json e1000.json --video scenes.mkv", base);
    TEST_ASSERT(rc == 0, "--every 1000: exit %d", rc);
    check_sampled(tpath("e1000.json"), "scenes.mkv", first, 1, all, frame_of, nf, labels, L);
    /* stdin: the same frames as PPM, the same samples (keyed "stdin") */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && ffmpeg -nostdin -v error -i scenes.mkv -f image2pipe "
             "-vcodec ppm - > frames.ppm", tmp);
    TEST_ASSERT(test_system(cmd) == 0, "ffmpeg could not write PPM frames");
    rc = RUN("%s --no-table --fps 10 --every 7 --json stdin7.json - < frames.ppm", base);
    TEST_ASSERT(rc == 0, "stdin --every 7: exit %d", rc);
    check_sampled(tpath("stdin7.json"), "stdin", every7, 3, all, frame_of, nf, labels, L);
    /* what is refused */
    rc = RUN("%s --every 2 --sample-fps 1 --video scenes.mkv", base);
    TEST_ASSERT(rc == 2, "--every with --sample-fps: exit %d", rc);
    rc = RUN("%s --every 2 '%s'", base, test_shared_path("ref/clip_tiny_img0.ppm"));
    TEST_ASSERT(rc == 2, "--every without a stream: exit %d", rc);
    expect_err("--every without a stream", "sample frame streams");
out:
    free(all), free(frame_of), free(labels_text);
}

/* ---- sharding and merge ------------------------------------------------------------------------ */
static char inputs[2048]; /* a folder of 4 images (2 in a sub-folder), 2 images, a video */

static void make_collection(void)
{
    static int done;
    if (done) return;
    done = 1;
    make_video("a.mkv", "red", "blue", "yellow");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && mkdir -p stills/sub && cp '%s' '%s' stills/ && "
             "cp '%s' '%s' stills/sub/ && cp '%s' one.ppm && cp '%s' two.ppm", tmp,
             test_shared_path("ref/clip_tiny_img0.ppm"), test_shared_path("ref/clip_tiny_img1.ppm"),
             test_shared_path("ref/clip_tiny_img2.ppm"), test_shared_path("ref/clip_tiny_img3.ppm"),
             test_shared_path("ref/clip_tiny_img1.ppm"), test_shared_path("ref/clip_tiny_img2.ppm"));
    TEST_ASSERT(test_system(cmd) == 0, "could not copy the images");
    snprintf(inputs, sizeof inputs, "stills one.ppm two.ppm --video a.mkv");
}

/* Lines of a JSONL file after its header, sorted (the set of records). */
static char *sorted_records(const char *path)
{
    char cmd[1024], out[600];
    snprintf(out, sizeof out, "%s.sorted", path);
    snprintf(cmd, sizeof cmd, "tail -n +2 '%s' | LC_ALL=C sort > '%s'", path, out);
    if (test_system(cmd) != 0) return NULL;
    return slurp(out);
}

static void test_shards_merge_to_one_run(void)
{
    if (!ready()) return;
    make_collection();
    int rc = RUN("%s --no-table --every 3 %s --json one.json --weak-labels one.weak "
                 "--weak-top1 0.05 --weak-rest 0.01 --out-jsonl one.jsonl", base, inputs);
    TEST_ASSERT(rc == 0, "one process: exit %d", rc);
    /* the explicit shards */
    for (int i = 0; i < 3; i++) {
        rc = RUN("%s --no-table --every 3 %s --weak-top1 0.05 --weak-rest 0.01 --shard %d/3 "
                 "--out-jsonl s%d.jsonl", base, inputs, i, i);
        TEST_ASSERT(rc == 0, "shard %d/3: exit %d", i, rc);
    }
    /* disjoint, and together every shot of the single run (a folder ends in every shard) */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && for f in s0 s1 s2; do tail -n +2 $f.jsonl; done | "
             "grep -v '\"done\": true' | LC_ALL=C sort > shards.sorted && tail -n +2 one.jsonl | "
             "grep -v '\"done\": true' | LC_ALL=C sort > one.sorted && "
             "cmp -s shards.sorted one.sorted", tmp);
    TEST_ASSERT(test_system(cmd) == 0, "the shards' records are not the single run's (overlap or gap)");
    int nonempty = 0;
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "s%d.jsonl", i);
        char *t = slurp(tpath(name));
        nonempty += t && strstr(t, "\"start_frame\"") != NULL;
        free(t);
    }
    TEST_ASSERT(nonempty >= 2, "only %d of 3 shards got work: the hash does not spread", nonempty);
    rc = RUN("merge s2.jsonl s0.jsonl s1.jsonl --json merged.json --weak-labels merged.weak");
    TEST_ASSERT(rc == 0, "merge: exit %d", rc);
    TEST_ASSERT(same_file(tpath("merged.json"), tpath("one.json")),
                "merged JSON differs from the single run's");
    TEST_ASSERT(same_file(tpath("merged.weak"), tpath("one.weak")),
                "merged weak labels differ from the single run's");
    /* the launchers' variables shard the same way, and say so */
    static const struct { const char *env, *shard, *said; } launch[] = {
        {"OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=3", "1", "OMPI_COMM_WORLD_RANK"},
        {"PMI_RANK=2 PMI_SIZE=3", "2", "PMI_RANK"},
        {"SLURM_PROCID=0 SLURM_NTASKS=3", "0", "SLURM_PROCID"},
        {"SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_MIN=4", "1",
         "SLURM_ARRAY_TASK_ID"}};
    for (int i = 0; i < 4; i++) {
        rc = run_env(launch[i].env, "%s --no-table --every 3 %s --weak-top1 0.05 --weak-rest 0.01 "
                     "--out-jsonl 'env%d-{shard}.jsonl'", base, inputs, i);
        TEST_ASSERT(rc == 0, "%s: exit %d", launch[i].env, rc);
        expect_err(launch[i].env, launch[i].said);
        char mine[64], want[64];
        snprintf(mine, sizeof mine, "env%d-%s.jsonl", i, launch[i].shard);
        snprintf(want, sizeof want, "s%s.jsonl", launch[i].shard);
        TEST_ASSERT(same_file(tpath(mine), tpath(want)), "%s: not shard %s/3's records",
                    launch[i].env, launch[i].shard);
    }
    /* what sharding refuses */
    rc = run_env("OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2", "%s %s --out-jsonl x.jsonl",
                 base, inputs);
    TEST_ASSERT(rc == 2, "a shared output name under mpirun: exit %d", rc);
    expect_err("shared name", "{shard}");
    rc = RUN("%s --shard 0/2 - < '%s'", base, test_shared_path("ref/clip_tiny_img0.ppm"));
    TEST_ASSERT(rc == 2, "stdin sharded: exit %d", rc);
    expect_err("stdin sharded", "stdin");
    rc = RUN("%s --shard 2/2 one.ppm", base);
    TEST_ASSERT(rc == 2, "--shard 2/2: exit %d", rc);
    rc = run_env("SLURM_PROCID=4 SLURM_NTASKS=2", "%s one.ppm", base);
    TEST_ASSERT(rc == 2, "SLURM_PROCID out of range: exit %d", rc);
}

static void test_merge_refuses(void)
{
    if (!ready()) return;
    make_collection(); /* s0..s2.jsonl from the test above */
    struct stat st;
    int rc = RUN("merge s0.jsonl one.jsonl s1.jsonl --json dup.json");
    TEST_ASSERT(rc == 1, "duplicate: exit %d", rc);
    expect_err("duplicate", "duplicate records in ");
    TEST_ASSERT(stat(tpath("dup.json"), &st) != 0, "duplicate: a JSON was written");
    /* one score changed: a conflicting record */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && sed '2s/\"labels\": {\\(\"[^\"]*\"\\): 0\\.[0-9]*/"
             "\"labels\": {\\1: 0.5/' one.jsonl > bent.jsonl && ! cmp -s bent.jsonl one.jsonl", tmp);
    TEST_ASSERT(test_system(cmd) == 0, "could not bend a record");
    rc = RUN("merge one.jsonl bent.jsonl --json bent.json");
    TEST_ASSERT(rc == 1, "conflict: exit %d", rc);
    expect_err("conflict", "conflicting records in");
    TEST_ASSERT(stat(tpath("bent.json"), &st) != 0, "conflict: a JSON was written");
    /* another --top: other settings */
    rc = RUN("%s --no-table --top 3 one.ppm --out-jsonl top3.jsonl", base);
    rc = RUN("merge s0.jsonl top3.jsonl --json top.json");
    TEST_ASSERT(rc == 1, "other settings: exit %d", rc);
    expect_err("other settings", "\"top\" differs");
    snprintf(cmd, sizeof cmd, "cd '%s' && printf 'stills\\none.ppm\\ntwo.ppm\\na.mkv\\n"
             "d.mkv\\n' > expect.txt", tmp);
    TEST_ASSERT(test_system(cmd) == 0, "could not write expect.txt");
    /* an input cut off: the file stops before its end line */
    snprintf(cmd, sizeof cmd, "cd '%s' && grep -n '\"done\"' one.jsonl | tail -n 1 | "
             "cut -d: -f1 > last && head -n $(( $(cat last) - 1 )) one.jsonl > cut.jsonl", tmp);
    TEST_ASSERT(test_system(cmd) == 0, "could not cut the file");
    rc = RUN("merge cut.jsonl --json cut.json --expect expect.txt");
    TEST_ASSERT(rc == 1, "cut off: exit %d", rc);
    expect_err("cut off", "a.mkv was cut off mid-way");
    expect_err("cut off, expected", "missing: a.mkv");
    rc = RUN("merge s0.jsonl s1.jsonl s2.jsonl --json exp.json --expect expect.txt");
    TEST_ASSERT(rc == 1, "missing: exit %d", rc);
    expect_err("missing", "missing: d.mkv");
    expect_err("missing", "1 of the 5 inputs of expect.txt are missing");
    TEST_ASSERT(same_file(tpath("exp.json"), tpath("one.json")), "the JSON with a missing input "
                "is not the rest's");
}

/* ---- kill and resume --------------------------------------------------------------------------- */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Start the app with args, SIGKILL it after delay seconds (if still running). */
static void run_killed(const char *args, double delay)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "cd '%s' && exec %s %s >/dev/null 2>>'%s'", tmp, app, args, err_path);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    struct timespec d = {(time_t)delay, (long)((delay - (time_t)delay) * 1e9)};
    nanosleep(&d, NULL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void test_kill_and_resume(void)
{
    if (!ready()) return;
    make_collection();
    const int long_run = getenv("MCNN_TEST_LONG") != NULL, rounds = long_run ? 25 : 2;
    if (!long_run) fprintf(stderr, "  (2 rounds of one kill; MCNN_TEST_LONG=1 runs 25 of 1-3)\n");
    char args[8192];
    snprintf(args, sizeof args, "%s --no-table --batch 2 %s --out-jsonl killed.jsonl --resume",
             base, inputs);
    const double t0 = now();
    int rc = RUN("%s --no-table --batch 2 %s --out-jsonl whole.jsonl", base, inputs);
    const double whole = now() - t0;
    TEST_ASSERT(rc == 0, "uninterrupted run: exit %d", rc);
    char *want = sorted_records(tpath("whole.jsonl"));
    srand(12345);
    for (int k = 0; k < rounds; k++) {
        unlink(tpath("killed.jsonl"));
        /* one to three kills at random moments of a run, each followed by a resumed run */
        const int kills = long_run ? 1 + rand() % 3 : 1;
        for (int q = 0; q < kills; q++) run_killed(args, whole * (rand() / (RAND_MAX + 1.0)));
        rc = RUN("%s", args);
        char *e = rc ? slurp(err_path) : NULL;
        TEST_ASSERT(rc == 0, "round %d: the resumed run: exit %d:\n%s", k, rc, e ? e : "");
        free(e);
        char *got = sorted_records(tpath("killed.jsonl"));
        TEST_ASSERT(got && want && !strcmp(got, want),
                    "round %d (%d kills): the records differ from an uninterrupted run's", k, kills);
        free(got);
    }
    /* a cut-off last line is dropped, never read as half a record */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && grep -n '\"done\"' whole.jsonl | sed -n 4p | cut -d: -f1 "
             "> n3 && head -n $(( $(cat n3) - 2 )) whole.jsonl > half.jsonl && sed -n "
             "\"$(( $(cat n3) - 1 ))p\" whole.jsonl | head -c 57 >> half.jsonl", tmp);
    TEST_ASSERT(test_system(cmd) == 0, "could not cut a line");
    rc = RUN("%s --no-table --batch 2 %s --out-jsonl half.jsonl --resume", base, inputs);
    TEST_ASSERT(rc == 0, "resume after a cut-off line: exit %d", rc);
    expect_err("cut-off line", "a cut-off last line dropped");
    expect_err("cut-off line", "1 cut off mid-way (redone)");
    char *got = sorted_records(tpath("half.jsonl"));
    TEST_ASSERT(got && want && !strcmp(got, want), "resumed after a cut-off line: records differ");
    free(got);
    /* a damaged line in the middle is refused (not a crash's doing) */
    snprintf(cmd, sizeof cmd, "cd '%s' && sed '3s/\"video\"/\"vid/' whole.jsonl > bad.jsonl", tmp);
    test_system(cmd);
    rc = RUN("%s --no-table %s --out-jsonl bad.jsonl --resume", base, inputs);
    TEST_ASSERT(rc == 1, "damaged line: exit %d", rc);
    expect_err("damaged line", "bad.jsonl line 3");
    /* without --resume an existing file is not overwritten; other settings are refused */
    rc = RUN("%s --no-table %s --out-jsonl whole.jsonl", base, inputs);
    TEST_ASSERT(rc == 1, "existing file without --resume: exit %d", rc);
    expect_err("existing file", "add --resume");
    /* a file another process writes (two shards given one name) */
    const int fd = open(tpath("whole.jsonl"), O_RDONLY);
    TEST_ASSERT(fd >= 0 && flock(fd, LOCK_EX) == 0, "could not lock whole.jsonl");
    rc = RUN("%s --no-table --batch 2 %s --out-jsonl whole.jsonl --resume", base, inputs);
    TEST_ASSERT(rc == 1, "a file being written: exit %d", rc);
    expect_err("a file being written", "another process is writing it");
    if (fd >= 0) close(fd);
    rc = RUN("%s --no-table --top 2 --batch 2 %s --out-jsonl whole.jsonl --resume", base, inputs);
    TEST_ASSERT(rc == 1, "other settings: exit %d", rc);
    expect_err("other settings", "\"top\" differs");
    free(want);
}

int main(void)
{
    setenv("OMP_WAIT_POLICY", "passive", 0);
    /* a test run under a launcher must not shard the app's runs itself */
    static const char *const launcher_vars[] = {
        "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "SLURM_PROCID",
        "SLURM_NTASKS", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"};
    for (size_t i = 0; i < sizeof launcher_vars / sizeof *launcher_vars; i++)
        unsetenv(launcher_vars[i]);
    const char *b = getenv("MCNN_BUILD");
    char cwd[1024];
    if (!getcwd(cwd, sizeof cwd)) return 1;
    snprintf(app, sizeof app, "%s/%s/mcnn-classify", b && *b == '/' ? "" : cwd, b && *b ? b : "build");
    snprintf(tmp, sizeof tmp, "/tmp/mcnn_test_tagging_%d", (int)getpid());
    mkdir(tmp, 0755);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", tmp);
    if (access(app, X_OK) != 0) {
        fprintf(stderr, "  %s not found: build it first\n", app);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    have_ffmpeg = test_system("command -v ffmpeg >/dev/null 2>&1") == 0;
    const char *model = test_shared_path("ref/clip_tiny.safetensors");
    if (access(model, R_OK) != 0) {
        fprintf(stderr, "  skipped: the tiny CLIP is absent from %s\n", test_shared_path(""));
        printf("0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    /* the model through a link, so that its text-embedding cache is written here */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/model' && ln -sf '%s' '%s/model/clip_tiny.safetensors'",
             tmp, model, tmp);
    test_system(cmd);
    snprintf(base, sizeof base, "--model '%s/model/clip_tiny.safetensors' --labels '%s' --vocab '%s'",
             tmp, test_shared_path("data/movieclip/taxonomy-179.txt"),
             test_shared_path("data/clip/bpe_simple_vocab_16e6.txt.gz"));
    TEST_RUN(test_sampling);
    TEST_RUN(test_shards_merge_to_one_run);
    TEST_RUN(test_merge_refuses);
    TEST_RUN(test_kill_and_resume);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (!test_failed) test_system(cmd); /* kept for inspection when something failed */
    return test_summary();
}
