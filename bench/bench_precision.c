/* Whole models at each inference precision, side by side in one run (docs/precision.md).
 *
 *   build/bench/bench_precision [ROUNDS [THREADS [MODEL]]]      MODEL: vit_b16 or resnet50 only
 *
 * Workloads: ViT-B/16 and ResNet-50 (full size, 1000 classes, random weights: speed does not
 * depend on the values), batch 1 and batch 8, each at
 *   fp32    the default: unpacked, every GEMM packs its weight again (as before issue 10)
 *   fp32p   mcnn_*_set_precision(FP32): weights packed once, the same bits
 *   bf16    packed once in bf16
 *   int8    packed once in int8
 * Every (workload, precision) runs in a child process of its own (this program again, with
 * --child), so that its peak RSS (getrusage ru_maxrss) is its own; the rounds go through every
 * workload and precision in turn, so the sides alternate and a busy moment of the shared
 * machine does not land on one side only.  Reported: the best images/s over the rounds, peak
 * RSS, and how much the resident set grew at mcnn_*_set_precision (the packed copy: the fp32
 * weights stay in the model, which training, saving and the fp32 layers still read).
 *
 *   build/bench/bench_precision memory [DIR [MODEL]]    MODEL: vit_b16, resnet50 or clip_b32 only
 *
 * Memory of an inference-only model (docs/precision.md "Memory"): ViT-B/16, ResNet-50 and CLIP
 * ViT-B/32 with random weights are saved once to DIR (default /tmp), then each is loaded in a
 * child process of its own: plainly (fp32, the default), plainly followed by
 * mcnn_*_set_precision (the fp32 weights kept: "kept"), and with the load options
 * {precision, inference_only = 1} (each matrix packed as read, its fp32 copy never kept).
 * Reported per child: the resident bytes the load added (the weights), the process's peak RSS
 * (getrusage ru_maxrss) after one batch-1 forward (CLIP: one image and 8 prompts), and both
 * relative to the plain fp32 load.
 * Hold the CPU lock for the whole run:  flock /tmp/mcnn-cpu.lock build/bench/bench_precision */
#define _POSIX_C_SOURCE 200809L
#include "mcnn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const precisions[] = {"fp32", "fp32p", "bf16", "int8"};
enum { NPREC = 4 };

typedef struct workload {
    const char *model;
    int batch, iters;
} workload;

static const workload workloads[] = {
    {"vit_b16", 1, 6}, {"vit_b16", 8, 2}, {"resnet50", 1, 10}, {"resnet50", 8, 3}};
enum { NWORK = 4 };

static double rss_mb(void) /* the current resident set, from /proc */
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

static void fail(const char *what)
{
    fprintf(stderr, "bench_precision: %s: %s\n", what, mcnn_last_error());
    exit(1);
}

/* ---- the child: one workload at one precision --------------------------------------------- */
static int child(const char *model, int B, const char *prec, int iters)
{
    mcnn_vit *vit = NULL;
    mcnn_resnet *resnet = NULL;
    if (strcmp(model, "vit_b16") == 0) {
        const mcnn_vit_config cfg = mcnn_vit_b16_config(1000);
        if (mcnn_vit_create(&vit, &cfg, 1) != MCNN_OK) fail("vit_create");
    } else {
        const mcnn_resnet_config cfg = mcnn_resnet_config_standard(50, 1000);
        if (mcnn_resnet_create(&resnet, &cfg, 1) != MCNN_OK) fail("resnet_create");
    }
    const double before = rss_mb();
    if (strcmp(prec, "fp32") != 0) {
        mcnn_precision p;
        if (mcnn_precision_parse(strcmp(prec, "fp32p") == 0 ? "fp32" : prec, &p) != MCNN_OK)
            fail(prec);
        if ((vit ? mcnn_vit_set_precision(vit, p) : mcnn_resnet_set_precision(resnet, p)) !=
            MCNN_OK)
            fail("set_precision");
    }
    const double packed = rss_mb() - before;
    const size_t in = (size_t)B * 3 * 224 * 224;
    float *images = malloc(in * sizeof(float)), *logits = malloc((size_t)B * 1000 * 4);
    mcnn_rng r;
    mcnn_rng_seed(&r, 7);
    for (size_t i = 0; i < in; i++) images[i] = mcnn_rng_normal(&r);
    double best = 1e30;
    for (int it = 0; it <= iters; it++) { /* the first is the warm-up */
        const double t0 = mcnn_seconds();
        mcnn_status s = vit ? mcnn_vit_forward(vit, logits, images, B, 0)
                            : mcnn_resnet_forward(resnet, logits, images, B, 224, 224,
                                                  MCNN_RESNET_EVAL);
        if (s != MCNN_OK) fail("forward");
        const double t = mcnn_seconds() - t0;
        if (it > 0 && t < best) best = t;
    }
    printf("%.3f %.1f %.1f\n", B / best, peak_rss_mb(), packed);
    free(images);
    free(logits);
    mcnn_vit_free(vit);
    mcnn_resnet_free(resnet);
    return 0;
}

/* ---- memory: one load in a child ------------------------------------------------------------ */
static const char *const memory_models[] = {"vit_b16", "resnet50", "clip_b32"};
/* how each child loads: plainly, plainly + set_precision (fp32 kept), or inference only */
static const char *const memory_modes[] = {"fp32",     "bf16-kept", "int8-kept",
                                           "fp32-only", "bf16-only", "int8-only"};
enum { NMEM_MODELS = 3, NMEM_MODES = 6 };

static mcnn_clip_config clip_b32_config(void)
{
    return (mcnn_clip_config){.embed_dim = 512, .image_size = 224, .patch_size = 32,
                              .vision_width = 768, .vision_layers = 12, .vision_heads = 12,
                              .context_length = 77, .vocab_size = 49408, .text_width = 512,
                              .text_layers = 12, .text_heads = 8};
}

static int memory_child(const char *model, const char *path, const char *mode)
{
    char name[8];
    snprintf(name, sizeof name, "%.4s", mode);
    mcnn_precision p;
    if (mcnn_precision_parse(name, &p) != MCNN_OK) fail(mode);
    const int only = strstr(mode, "-only") != NULL, kept = strstr(mode, "-kept") != NULL;
    const mcnn_precision load_p = only ? p : MCNN_PRECISION_FP32;
    mcnn_vit *vit = NULL;
    mcnn_resnet *resnet = NULL;
    mcnn_clip *clip = NULL;
    const double before = rss_mb();
    mcnn_status s;
    if (strcmp(model, "vit_b16") == 0) {
        const mcnn_vit_load_options o = {.precision = load_p, .inference_only = only};
        s = mcnn_vit_load(&vit, path, &o);
        if (s == MCNN_OK && kept) s = mcnn_vit_set_precision(vit, p);
    } else if (strcmp(model, "resnet50") == 0) {
        const mcnn_resnet_load_options o = {.precision = load_p, .inference_only = only};
        s = mcnn_resnet_load(&resnet, path, &o);
        if (s == MCNN_OK && kept) s = mcnn_resnet_set_precision(resnet, p);
    } else {
        const mcnn_clip_load_options o = {.precision = load_p, .inference_only = only};
        s = mcnn_clip_load(&clip, path, &o);
        if (s == MCNN_OK && kept) s = mcnn_clip_set_precision(clip, p);
    }
    if (s != MCNN_OK) fail("load");
    const double weights = rss_mb() - before;
    const size_t in = (size_t)3 * 224 * 224;
    float *images = malloc(in * sizeof(float)), out[8 * 1000];
    mcnn_rng r;
    mcnn_rng_seed(&r, 7);
    for (size_t i = 0; i < in; i++) images[i] = mcnn_rng_normal(&r);
    if (vit) s = mcnn_vit_forward(vit, out, images, 1, 0);
    else if (resnet) s = mcnn_resnet_forward(resnet, out, images, 1, 224, 224, MCNN_RESNET_EVAL);
    else {
        int32_t tokens[8 * 77] = {0};
        for (int t = 0; t < 8; t++) tokens[t * 77] = 49406, tokens[t * 77 + 1] = 320 + t,
                                   tokens[t * 77 + 2] = 49407;
        s = mcnn_clip_encode_image(clip, out, images, 1);
        if (s == MCNN_OK) s = mcnn_clip_encode_text(clip, out, tokens, 8);
    }
    if (s != MCNN_OK) fail("forward");
    printf("%.1f %.1f\n", weights, peak_rss_mb() * 1024 * 1024 / 1e6); /* both in 1e6 bytes */
    free(images);
    mcnn_vit_free(vit);
    mcnn_resnet_free(resnet);
    mcnn_clip_free(clip);
    return 0;
}

/* Random full-size weights saved once for the memory children. */
static void save_model(const char *model, const char *path)
{
    mcnn_status s;
    if (strcmp(model, "vit_b16") == 0) {
        const mcnn_vit_config cfg = mcnn_vit_b16_config(1000);
        mcnn_vit *m;
        s = mcnn_vit_create(&m, &cfg, 1);
        if (s == MCNN_OK) s = mcnn_vit_save(m, path);
        mcnn_vit_free(m);
    } else if (strcmp(model, "resnet50") == 0) {
        const mcnn_resnet_config cfg = mcnn_resnet_config_standard(50, 1000);
        mcnn_resnet *m;
        s = mcnn_resnet_create(&m, &cfg, 1);
        if (s == MCNN_OK) s = mcnn_resnet_save(m, path);
        mcnn_resnet_free(m);
    } else {
        const mcnn_clip_config cfg = clip_b32_config();
        mcnn_clip *m;
        s = mcnn_clip_create(&m, &cfg, 1);
        if (s == MCNN_OK) s = mcnn_clip_save(m, path);
        mcnn_clip_free(m);
    }
    if (s != MCNN_OK) fail(path);
}

static int run_memory(const char *dir, const char *only)
{
    printf("| model (batch 1) | load | weights resident (MB) | weights / fp32 | peak RSS (MB) | "
           "peak / fp32 |\n|---|---|---|---|---|---|\n");
    for (int mo = 0; mo < NMEM_MODELS; mo++) {
        if (only && strcmp(only, memory_models[mo]) != 0) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/bench_precision_%s.safetensors", dir, memory_models[mo]);
        save_model(memory_models[mo], path);
        double w0 = 0, p0 = 0;
        for (int k = 0; k < NMEM_MODES; k++) {
            char cmd[1024], line[256] = {0};
            snprintf(cmd, sizeof cmd, "/proc/%d/exe --memory %s %s %s", (int)getpid(),
                     memory_models[mo], path, memory_modes[k]);
            FILE *f = popen(cmd, "r");
            double w = 0, peak = 0;
            const int ok = f && fgets(line, sizeof line, f) && sscanf(line, "%lf %lf", &w, &peak) == 2;
            if (f) pclose(f);
            if (!ok) {
                fprintf(stderr, "bench_precision: %s failed\n", cmd);
                return 1;
            }
            if (k == 0) w0 = w, p0 = peak;
            printf("| %s | %s | %.0f | %.2fx | %.0f | %.2fx |\n", memory_models[mo],
                   memory_modes[k], w, w / w0, peak, peak / p0);
            fflush(stdout);
        }
        remove(path);
    }
    return 0;
}

/* ---- the parent: rounds of children --------------------------------------------------------- */
typedef struct result {
    double ips, peak, packed;
} result;

static int run_child(const char *self, const workload *w, const char *prec, result *out)
{
    char batch[16], iters[16];
    snprintf(batch, sizeof batch, "%d", w->batch);
    snprintf(iters, sizeof iters, "%d", w->iters);
    int fd[2];
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execl(self, self, "--child", w->model, batch, prec, iters, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char line[256] = {0};
    FILE *f = fdopen(fd[0], "r");
    const int got = f && fgets(line, sizeof line, f) != NULL;
    if (f) fclose(f);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    return sscanf(line, "%lf %lf %lf", &out->ips, &out->peak, &out->packed) == 3 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], atoi(argv[3]), argv[4], atoi(argv[5]));
    if (argc == 5 && strcmp(argv[1], "--memory") == 0)
        return memory_child(argv[2], argv[3], argv[4]);
    if (argc >= 2 && strcmp(argv[1], "memory") == 0)
        return run_memory(argc > 2 ? argv[2] : "/tmp", argc > 3 ? argv[3] : NULL);
    const int rounds = argc > 1 ? atoi(argv[1]) : 2;
    if (argc > 2) setenv("OMP_NUM_THREADS", argv[2], 1);
    const char *only = argc > 3 ? argv[3] : NULL;
    result best[NWORK][NPREC] = {{{0}}};
    for (int round = 0; round < rounds; round++)
        for (int w = 0; w < NWORK; w++)
            for (int p = 0; p < NPREC && (!only || !strcmp(only, workloads[w].model)); p++) {
                /* alternate the order of the precisions from round to round */
                const int q = round % 2 ? NPREC - 1 - p : p;
                result r;
                if (run_child("/proc/self/exe", &workloads[w], precisions[q], &r) != 0) {
                    fprintf(stderr, "bench_precision: %s b%d %s failed\n", workloads[w].model,
                            workloads[w].batch, precisions[q]);
                    return 1;
                }
                fprintf(stderr, "round %d  %-8s b%d  %-5s  %8.2f images/s  peak %7.1f MB  "
                        "packed +%6.1f MB\n", round + 1, workloads[w].model, workloads[w].batch,
                        precisions[q], r.ips, r.peak, r.packed);
                result *b = &best[w][q];
                if (r.ips > b->ips) b->ips = r.ips;
                if (r.peak > b->peak) b->peak = r.peak;
                b->packed = r.packed;
            }
    printf("| workload | batch | fp32 (images/s) | fp32 packed | bf16 | int8 | packed / fp32 | "
           "bf16 / fp32 | int8 / fp32 | peak RSS MB fp32 / packed / bf16 / int8 | packed copy MB "
           "fp32 / bf16 / int8 |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int w = 0; w < NWORK; w++) {
        const result *b = best[w];
        if (b[0].ips == 0) continue;
        printf("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2fx | %.2fx | %.2fx | %.0f / %.0f / %.0f "
               "/ %.0f | %.0f / %.0f / %.0f |\n",
               workloads[w].model, workloads[w].batch, b[0].ips, b[1].ips, b[2].ips, b[3].ips,
               b[1].ips / b[0].ips, b[2].ips / b[0].ips, b[3].ips / b[0].ips, b[0].peak,
               b[1].peak, b[2].peak, b[3].peak, b[1].packed, b[2].packed, b[3].packed);
    }
    return 0;
}
