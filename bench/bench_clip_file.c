/* A CLIP model from a weights file (OpenAI's .pt archive, a converted .safetensors, ...):
 * how long it takes to load, and its image and text encoders' speed.
 *
 *   build/bench/bench_clip_file FILE load|image|text [BATCH [ITERS]]
 *
 * Prints one line, as bench_models does:
 *   workload batch threads ms_per_iter ms_per_item items_per_s peak_rss_mb load_ms
 * "load" times mcnn_clip_load alone (ms_per_iter is the load; peak RSS is the loaded model's);
 * "image" and "text" load, warm up once (untimed) and keep the best of ITERS encodes of BATCH
 * random images or prompts shaped like MovieCLIP's (15 tokens).  bench/compare_clip_files.py
 * runs the same in PyTorch, alternating the two sides. */
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

/* "a photo of a {label}, a type of background location" in token ids: start, 13 ids, end. */
static int32_t *prompts(int n, int context)
{
    int32_t *t = calloc((size_t)n * context, sizeof(int32_t));
    for (int i = 0; t && i < n; i++) {
        int32_t *p = t + (size_t)i * context;
        p[0] = 49406;
        for (int j = 1; j < 14; j++) p[j] = 320 + (i * 53 + j * 101) % 40000;
        p[14] = 49407;
    }
    return t;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s FILE load|image|text [BATCH [ITERS]]\n", argv[0]);
        return 2;
    }
    const char *file = argv[1], *what = argv[2];
    int batch = argc > 3 ? atoi(argv[3]) : 1, iters = argc > 4 ? atoi(argv[4]) : 3;
    int image = strcmp(what, "image") == 0, text = strcmp(what, "text") == 0;
    if ((!image && !text && strcmp(what, "load") != 0) || batch <= 0 || batch > 256 || iters <= 0) {
        fprintf(stderr, "bench_clip_file: load, image or text; batch 1..256 and iters > 0\n");
        return 2;
    }
    mcnn_clip *m = NULL;
    double t0 = mcnn_seconds();
    if (mcnn_clip_load(&m, file, NULL) != MCNN_OK) {
        fprintf(stderr, "bench_clip_file: %s\n", mcnn_last_error());
        return 1;
    }
    double load_ms = (mcnn_seconds() - t0) * 1e3;
    if (!image && !text) {
        printf("load 1 %d %.2f %.2f %.2f %.0f %.2f\n", mcnn_get_threads(), load_ms, load_ms,
               1e3 / load_ms, peak_rss_mb(), load_ms);
        mcnn_clip_free(m);
        return 0;
    }
    const mcnn_clip_config *c = mcnn_clip_get_config(m);
    size_t pixels = (size_t)batch * 3 * c->image_size * c->image_size;
    float *images = NULL, *feats = malloc((size_t)batch * c->embed_dim * sizeof(float));
    int32_t *tokens = NULL;
    if (image) {
        images = malloc(pixels * sizeof(float));
        mcnn_rng r;
        mcnn_rng_seed(&r, 2);
        for (size_t i = 0; images && i < pixels; i++) images[i] = mcnn_rng_normal(&r);
    } else {
        tokens = prompts(batch, c->context_length);
    }
    if (!feats || (image && !images) || (text && !tokens)) {
        fprintf(stderr, "bench_clip_file: out of memory\n");
        return 1;
    }
    double best = 1e30;
    for (int i = 0; i <= iters; i++) { /* i = 0: warm-up, plans the arena, faults pages in */
        double s = mcnn_seconds();
        mcnn_status st = image ? mcnn_clip_encode_image(m, feats, images, batch)
                               : mcnn_clip_encode_text(m, feats, tokens, batch);
        if (st != MCNN_OK) {
            fprintf(stderr, "bench_clip_file: %s\n", mcnn_last_error());
            return 1;
        }
        double t = mcnn_seconds() - s;
        if (i > 0 && t < best) best = t;
    }
    printf("%s %d %d %.2f %.2f %.2f %.0f %.2f\n", what, batch, mcnn_get_threads(), best * 1e3,
           best * 1e3 / batch, batch / best, peak_rss_mb(), load_ms);
    free(images);
    free(tokens);
    free(feats);
    mcnn_clip_free(m);
    return 0;
}
