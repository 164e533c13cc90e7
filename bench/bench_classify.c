/* Throughput of mcnn-classify's whole pipeline with a full-size CLIP ViT-B/32 (random weights:
 * speed does not depend on the values) at 224², in frames per second, at 1 and 2 threads.
 *
 *   build/bench/bench_classify [FRAMES]        (default 48)
 *
 * 1. The model is made with mcnn_clip_create and saved to /tmp/mcnn_bench_classify/ (kept and
 *    reused by later runs), with FRAMES frames of 640x360 as a binary PPM stream (a cut every
 *    16 frames), i.e. what `ffmpeg -f image2pipe -vcodec ppm -` writes.
 * 2. In process, stage by stage as the app runs them (batches of 8): decode (PPM stream),
 *    shot detection, preprocess (CLIP: bicubic resize to 224, crop, normalise; frames of a batch
 *    in parallel), encode (image tower + normalise), score (softmax(100 cos) over 179 labels).
 * 2b. The same at one thread for each inference precision (mcnn_clip_set_precision: fp32 packed,
 *    bf16, int8; docs/precision.md), two rounds, the precisions alternating, on a fresh model each.
 * 3. The app itself, end to end: `mcnn-classify --threads T - < frames.ppm` ($MCNN_BUILD, default
 *    build/), with the MovieCLIP labels and the BPE vocabulary from $MCNN_SHARED (default
 *    ../shared); frames/s from the difference between the whole stream and a one-frame run,
 *    so model loading and the (cached) text embeddings are not counted; the one-frame time is
 *    printed as the start-up cost.
 * The machine may be shared: run it when it is quiet, and read the numbers as a lower bound.
 * The CPU time per frame is printed too: on a busy machine it says what the work costs when a
 * core is really ours (1000 / cpu ms = the frames/s of one idle core, spin-waits aside; run with
 * OMP_WAIT_POLICY=passive so that waiting threads do not count). */
#define _POSIX_C_SOURCE 200809L
#include "mcnn.h"
#include "mcnn/shots.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#define DIR "/tmp/mcnn_bench_classify"
#define MODEL DIR "/clip-vit-b32-random.safetensors"
enum { W = 640, H = 360, BATCH = 8, LABELS = 179, E = 512 };

static void fail(const char *what)
{
    fprintf(stderr, "bench_classify: %s: %s\n", what, mcnn_last_error());
    exit(1);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void make_model(void)
{
    if (exists(MODEL)) return;
    mcnn_clip_config c = {.embed_dim = 512, .image_size = 224, .patch_size = 32,
                          .vision_width = 768, .vision_layers = 12, .vision_heads = 12,
                          .context_length = 77, .vocab_size = 49408, .text_width = 512,
                          .text_layers = 12, .text_heads = 8};
    mcnn_clip *m;
    fprintf(stderr, "creating %s ...\n", MODEL);
    if (mcnn_clip_create(&m, &c, 1) != MCNN_OK) fail("create");
    if (mcnn_clip_save(m, MODEL) != MCNN_OK) fail("save");
    mcnn_clip_free(m);
}

/* Frame f: a colour field that drifts, changing every 16 frames (a new "shot"), plus texture. */
static void make_frames(const char *path, int n)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail("frames");
    unsigned char *px = malloc((size_t)W * H * 3);
    mcnn_rng r;
    mcnn_rng_seed(&r, 3);
    for (int i = 0; i < n; i++) {
        const int shot = i / 16, t = i % 16;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                unsigned char *p = px + ((size_t)y * W + x) * 3;
                p[0] = (unsigned char)((x + 7 * t + 90 * shot) & 255);
                p[1] = (unsigned char)((y + 50 * shot) & 255);
                p[2] = (unsigned char)(((x ^ y) + 40 * shot + (mcnn_rng_next(&r) & 15)) & 255);
            }
        fprintf(f, "P6\n%d %d\n255\n", W, H);
        fwrite(px, 1, (size_t)W * H * 3, f);
    }
    free(px);
    fclose(f);
}

typedef struct stages {
    double decode, shots, preprocess, encode, score;
} stages;

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double children_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void in_process(mcnn_clip *m, const char *frames, int n, int threads, const char *label)
{
    mcnn_set_threads(threads);
    float *text = malloc((size_t)LABELS * E * sizeof(float)), norm[LABELS];
    mcnn_rng r;
    mcnn_rng_seed(&r, 9);
    for (int i = 0; i < LABELS * E; i++) text[i] = mcnn_rng_normal(&r);
    mcnn_l2_normalize_forward(text, norm, text, LABELS, E);
    const mcnn_preprocess_config pp = mcnn_preprocess_clip(224);
    float *images = malloc((size_t)BATCH * 3 * 224 * 224 * sizeof(float));
    float *feat = malloc((size_t)BATCH * E * sizeof(float));
    float *scores = malloc((size_t)BATCH * LABELS * sizeof(float));
    mcnn_image batch[BATCH];
    mcnn_shot_detector det;
    mcnn_shot_detector_init(&det, 27, 15);
    FILE *f = fopen(frames, "rb");
    mcnn_ppm_stream s;
    mcnn_ppm_stream_init(&s, f, frames);
    stages t = {0};
    int done = 0, cuts = 0;
    const double start = mcnn_seconds(), cpu0 = cpu_seconds();
    while (done < n) {
        int nb = 0, got = 1;
        while (nb < BATCH && got) {
            double t0 = mcnn_seconds();
            if (mcnn_ppm_stream_next(&s, &batch[nb], &got) != MCNN_OK) fail("decode");
            double t1 = mcnn_seconds();
            t.decode += t1 - t0;
            if (!got) break;
            int cut;
            if (mcnn_shot_detector_push(&det, &batch[nb], &cut) != MCNN_OK) fail("shots");
            cuts += cut;
            t.shots += mcnn_seconds() - t1;
            nb++;
        }
        if (nb == 0) break;
        double t0 = mcnn_seconds();
        int bad = 0;
        #pragma omp parallel for schedule(dynamic) reduction(+ : bad)
        for (int i = 0; i < nb; i++)
            bad += mcnn_preprocess(images + (size_t)i * 3 * 224 * 224, &batch[i], &pp) != MCNN_OK;
        if (bad) fail("preprocess");
        double t1 = mcnn_seconds();
        if (mcnn_clip_image_embeddings(m, feat, images, nb) != MCNN_OK) fail("encode");
        double t2 = mcnn_seconds();
        mcnn_clip_zeroshot_scores(scores, feat, text, nb, LABELS, E, 100.0f);
        double t3 = mcnn_seconds();
        t.preprocess += t1 - t0, t.encode += t2 - t1, t.score += t3 - t2;
        for (int i = 0; i < nb; i++) mcnn_image_free(&batch[i]);
        done += nb;
    }
    const double total = mcnn_seconds() - start, cpu = cpu_seconds() - cpu0;
    printf("in-process %-5s threads %d  %3d frames %2d cuts  ms/frame: decode %.2f  shots %.2f  "
           "preprocess %.2f  encode %.2f  score %.3f  ->  %.1f frames/s  (cpu %.1f ms/frame)\n",
           label, threads, done, cuts, 1e3 * t.decode / done, 1e3 * t.shots / done,
           1e3 * t.preprocess / done, 1e3 * t.encode / done, 1e3 * t.score / done, done / total,
           1e3 * cpu / done);
    fclose(f);
    mcnn_shot_detector_free(&det);
    free(text), free(images), free(feat), free(scores);
}

static double run_app(const char *app, const char *args, const char *frames, int threads)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s --threads %d --no-table --quiet %s - < '%s' > /dev/null", app,
             threads, args, frames);
    double t0 = mcnn_seconds();
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_classify: failed: %s\n", cmd);
        exit(1);
    }
    return mcnn_seconds() - t0;
}

int main(int argc, char **argv)
{
    const int n = argc > 1 ? atoi(argv[1]) : 48;
    if (n < 2) return fprintf(stderr, "usage: bench_classify [FRAMES >= 2]\n"), 2;
    mkdir(DIR, 0755);
    make_model();
    char frames[256], one[256];
    snprintf(frames, sizeof frames, DIR "/frames_%d.ppm", n);
    snprintf(one, sizeof one, DIR "/frames_1.ppm");
    if (!exists(frames)) make_frames(frames, n);
    if (!exists(one)) make_frames(one, 1);

    mcnn_clip *m;
    if (mcnn_clip_load(&m, MODEL, NULL) != MCNN_OK) fail("load");
    printf("CLIP ViT-B/32 (random weights) at 224x224, %d frames of %dx%d, batches of %d, "
           "GEMM kernel %s\n", n, W, H, BATCH, mcnn_gemm_kernel_name());
    for (int threads = 1; threads <= 2; threads++) in_process(m, frames, n, threads, "");
    mcnn_clip_free(m);
    for (int round = 0; round < 2; round++)
        for (int k = 0; k < 3; k++) {
            const mcnn_precision p = (mcnn_precision)((k + round) % 3); /* fp32, bf16, int8 */
            if (mcnn_clip_load(&m, MODEL, NULL) != MCNN_OK) fail("load");
            if (mcnn_clip_set_precision(m, p) != MCNN_OK) fail("precision");
            in_process(m, frames, n, 1, mcnn_precision_name(p));
            mcnn_clip_free(m);
        }

    const char *build = getenv("MCNN_BUILD"), *shared = getenv("MCNN_SHARED");
    char app[1024], args[4096];
    snprintf(app, sizeof app, "%s/mcnn-classify", build && *build ? build : "build");
    if (!shared || !*shared) shared = "../shared";
    snprintf(args, sizeof args, "--model " MODEL " --labels %s/data/movieclip/taxonomy-179.txt "
             "--vocab %s/data/clip/bpe_simple_vocab_16e6.txt.gz", shared, shared);
    if (!exists(app)) {
        printf("app: %s not built (make %s); end-to-end numbers skipped\n", app, app);
        return 0;
    }
    char vocab[1024];
    snprintf(vocab, sizeof vocab, "%s/data/clip/bpe_simple_vocab_16e6.txt.gz", shared);
    if (!exists(vocab)) {
        printf("app: %s absent; end-to-end numbers skipped\n", vocab);
        return 0;
    }
    double warm = run_app(app, args, one, 2); /* computes and caches the text embeddings */
    printf("app         first run (computes the 179 text embeddings unless already cached): "
           "%.2f s\n", warm);
    for (int threads = 1; threads <= 2; threads++) {
        double c0 = children_cpu_seconds();
        double t1 = run_app(app, args, one, threads);
        double c1 = children_cpu_seconds();
        double tn = run_app(app, args, frames, threads);
        double c2 = children_cpu_seconds();
        printf("app         threads %d  start-up %.2f s  %d frames %.2f s  ->  %.1f frames/s "
               "(%.1f with start-up)  (cpu %.1f ms/frame)\n", threads, t1, n, tn,
               (n - 1) / (tn - t1), n / tn, 1e3 * ((c2 - c1) - (c1 - c0)) / (n - 1));
    }
    return 0;
}
