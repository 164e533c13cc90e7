/* Whole-model benchmark: one workload per run, so its peak memory is its own.
 *
 *   build/bench/bench_models WORKLOAD [BATCH [ITERS]]
 *   WORKLOAD: vit_b16 | vit_b16_train | clip_image | clip_text | clip_train
 *             | resnet50 | resnet50_train
 *
 * Models are full size with random weights (speed does not depend on the values).  Prints one
 * line:  workload batch threads ms_per_iter ms_per_image images_per_s peak_rss_mb
 * Warm-up: one iteration, not timed.  bench/compare_torch.py runs the same workloads in PyTorch
 * and alternates the two sides. */
#define _POSIX_C_SOURCE 200809L /* getrusage */
#include "mcnn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux reports kilobytes */
}

static void fail(const char *what)
{
    fprintf(stderr, "bench_models: %s: %s\n", what, mcnn_last_error());
    exit(1);
}

static float *random_floats(size_t n, uint64_t seed)
{
    float *x = malloc(n * sizeof(float));
    mcnn_rng r;
    mcnn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = mcnn_rng_normal(&r);
    return x;
}

static mcnn_clip_config clip_b32(void)
{
    mcnn_clip_config c = {.embed_dim = 512, .image_size = 224, .patch_size = 32,
                          .vision_width = 768, .vision_layers = 12, .vision_heads = 12,
                          .context_length = 77, .vocab_size = 49408, .text_width = 512,
                          .text_layers = 12, .text_heads = 8};
    return c;
}

/* 179 prompts shaped like MovieCLIP's: start, 13 ids, end, padding (15 tokens, as measured). */
static int32_t *movieclip_like_tokens(int n)
{
    int32_t *t = calloc((size_t)n * 77, sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        int len = 13 + i % 3;
        t[i * 77] = 49406;
        for (int j = 1; j < len - 1; j++) t[i * 77 + j] = 300 + (i * 31 + j * 7) % 40000;
        t[i * 77 + len - 1] = 49407;
    }
    return t;
}

typedef struct workload {
    void *model;
    float *images, *logits;
    int32_t *tokens, *targets;
    int batch;
} workload;

static void run_once(const char *name, workload *w)
{
    const int B = w->batch;
    if (strcmp(name, "vit_b16") == 0) {
        if (mcnn_vit_forward(w->model, w->logits, w->images, B, 0)) fail(name);
    } else if (strcmp(name, "vit_b16_train") == 0) {
        mcnn_params *p = mcnn_vit_params(w->model);
        float probs[16 * 1000], dlogits[16 * 1000] = {0};
        mcnn_params_zero_grad(p);
        if (mcnn_vit_forward(w->model, w->logits, w->images, B, 1)) fail(name);
        mcnn_cross_entropy_forward(probs, w->logits, w->targets, B, 1000, 0.0f);
        mcnn_cross_entropy_backward(dlogits, probs, w->targets, B, 1000, 0.0f, 1.0f);
        if (mcnn_vit_backward(w->model, dlogits)) fail(name);
    } else if (strcmp(name, "resnet50") == 0) {
        if (mcnn_resnet_forward(w->model, w->logits, w->images, B, 224, 224, MCNN_RESNET_EVAL))
            fail(name);
    } else if (strcmp(name, "resnet50_train") == 0) {
        mcnn_params *p = mcnn_resnet_params(w->model);
        float probs[16 * 1000], dlogits[16 * 1000] = {0};
        mcnn_params_zero_grad(p);
        if (mcnn_resnet_forward(w->model, w->logits, w->images, B, 224, 224, MCNN_RESNET_TRAIN))
            fail(name);
        mcnn_cross_entropy_forward(probs, w->logits, w->targets, B, 1000, 0.0f);
        mcnn_cross_entropy_backward(dlogits, probs, w->targets, B, 1000, 0.0f, 1.0f);
        if (mcnn_resnet_backward(w->model, dlogits)) fail(name);
    } else if (strcmp(name, "clip_image") == 0) {
        if (mcnn_clip_encode_image(w->model, w->logits, w->images, B)) fail(name);
    } else if (strcmp(name, "clip_text") == 0) {
        if (mcnn_clip_encode_text(w->model, w->logits, w->tokens, B)) fail(name);
    } else if (strcmp(name, "clip_train") == 0) {
        float loss;
        mcnn_params_zero_grad(mcnn_clip_params(w->model));
        if (mcnn_clip_train_forward(w->model, &loss, NULL, w->images, w->tokens, B)) fail(name);
        if (mcnn_clip_train_backward(w->model, 1.0f)) fail(name);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORKLOAD [BATCH [ITERS]]\n", argv[0]);
        return 2;
    }
    const char *name = argv[1];
    workload w = {0};
    w.batch = argc > 2 ? atoi(argv[2]) : 1;
    int iters = argc > 3 ? atoi(argv[3]) : 3;
    if (w.batch <= 0 || w.batch > 256 || iters <= 0) {
        fprintf(stderr, "bench_models: batch 1..256 and iters > 0\n");
        return 2;
    }
    if (strncmp(name, "vit_b16", 7) == 0) {
        mcnn_vit_config c = mcnn_vit_b16_config(1000);
        if (mcnn_vit_create((mcnn_vit **)&w.model, &c, 1)) fail("vit_create");
        w.images = random_floats((size_t)w.batch * 3 * 224 * 224, 2);
        w.logits = malloc((size_t)w.batch * 1000 * sizeof(float));
        w.targets = calloc((size_t)w.batch, sizeof(int32_t));
        if (w.batch > 16) {
            fprintf(stderr, "bench_models: batch <= 16 for vit_b16_train\n");
            return 2;
        }
    } else if (strncmp(name, "resnet50", 8) == 0) {
        mcnn_resnet_config c = mcnn_resnet_config_standard(50, 1000);
        if (mcnn_resnet_create((mcnn_resnet **)&w.model, &c, 1)) fail("resnet_create");
        w.images = random_floats((size_t)w.batch * 3 * 224 * 224, 2);
        w.logits = malloc((size_t)w.batch * 1000 * sizeof(float));
        w.targets = calloc((size_t)w.batch, sizeof(int32_t));
        if (w.batch > 16) {
            fprintf(stderr, "bench_models: batch <= 16 for resnet50\n");
            return 2;
        }
    } else if (strncmp(name, "clip_", 5) == 0) {
        mcnn_clip_config c = clip_b32();
        if (mcnn_clip_create((mcnn_clip **)&w.model, &c, 1)) fail("clip_create");
        w.images = random_floats((size_t)w.batch * 3 * 224 * 224, 2);
        w.tokens = movieclip_like_tokens(w.batch);
        w.logits = malloc((size_t)w.batch * 512 * sizeof(float));
    } else {
        fprintf(stderr, "bench_models: unknown workload '%s'\n", name);
        return 2;
    }
    run_once(name, &w); /* warm-up: plans the arena, faults the pages in */
    double best = 1e30;
    for (int i = 0; i < iters; i++) {
        double t0 = mcnn_seconds();
        run_once(name, &w);
        double t = mcnn_seconds() - t0;
        if (t < best) best = t;
    }
    printf("%s %d %d %.2f %.2f %.2f %.0f\n", name, w.batch, mcnn_get_threads(), best * 1e3,
           best * 1e3 / w.batch, w.batch / best, peak_rss_mb());
    if (strncmp(name, "vit_b16", 7) == 0) mcnn_vit_free(w.model);
    else if (strncmp(name, "resnet50", 8) == 0) mcnn_resnet_free(w.model);
    else mcnn_clip_free(w.model);
    free(w.images);
    free(w.logits);
    free(w.tokens);
    free(w.targets);
    return 0;
}
