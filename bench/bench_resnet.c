/* ResNet benchmark: milliseconds per image of a full-size model at 224x224 (random weights:
 * speed does not depend on the values).
 *
 *   build/bench/bench_resnet [-d DEPTH] [-i ITERS] [-s SIZE] [train] [BATCH ...]
 *     DEPTH 18/34/50/101/152 (default 50), ITERS timed iterations after one warm-up (3),
 *     SIZE the image side (224), BATCH sizes to run (default 1 16).  "train" times a training
 *     step instead (forward with batch statistics + backward; the optimizer is not included).
 *
 * One line per batch: depth mode batch threads best_ms_per_iter best_ms_per_image mean_ms
 * arena_mb.  The best of ITERS is the figure to quote on a shared machine. */
#include "mcnn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what)
{
    fprintf(stderr, "bench_resnet: %s: %s\n", what, mcnn_last_error());
    exit(1);
}

int main(int argc, char **argv)
{
    int depth = 50, iters = 3, size = 224, train = 0, batches[16], nb = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) depth = atoi(argv[++i]);
        else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc) iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) size = atoi(argv[++i]);
        else if (strcmp(argv[i], "train") == 0) train = 1;
        else if (nb < 16 && atoi(argv[i]) > 0) batches[nb++] = atoi(argv[i]);
        else {
            fprintf(stderr, "usage: %s [-d DEPTH] [-i ITERS] [-s SIZE] [train] [BATCH ...]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!nb) batches[nb++] = 1, batches[nb++] = 16;
    if (iters < 1) iters = 1;

    mcnn_resnet_config cfg = mcnn_resnet_config_standard(depth, 1000);
    mcnn_resnet *m;
    if (mcnn_resnet_create(&m, &cfg, 1) != MCNN_OK) fail("create");
    printf("# resnet%d %s at %dx%d, %d threads; best and mean of %d after a warm-up\n", depth,
           train ? "train step (forward + backward)" : "eval forward", size, size,
           mcnn_get_threads(), iters);
    for (int k = 0; k < nb; k++) {
        const int N = batches[k];
        const size_t n = (size_t)N * 3 * size * size;
        float *x = malloc(n * sizeof *x), *logits = malloc((size_t)N * 1000 * sizeof *logits);
        float *dlogits = malloc((size_t)N * 1000 * sizeof *dlogits);
        if (!x || !logits || !dlogits) {
            fprintf(stderr, "bench_resnet: out of memory\n");
            return 1;
        }
        mcnn_rng r;
        mcnn_rng_seed(&r, 7);
        for (size_t i = 0; i < n; i++) x[i] = mcnn_rng_normal(&r);
        for (size_t i = 0; i < (size_t)N * 1000; i++) dlogits[i] = 1e-3f;
        double best = 1e30, total = 0;
        for (int it = 0; it <= iters; it++) {
            double t0 = mcnn_seconds();
            if (mcnn_resnet_forward(m, logits, x, N, size, size,
                                    train ? MCNN_RESNET_TRAIN : MCNN_RESNET_EVAL) != MCNN_OK)
                fail("forward");
            if (train) {
                mcnn_params_zero_grad(mcnn_resnet_params(m));
                if (mcnn_resnet_backward(m, dlogits) != MCNN_OK) fail("backward");
            }
            double dt = mcnn_seconds() - t0;
            if (it == 0) continue; /* warm-up: plans the arena, faults the pages in */
            total += dt;
            if (dt < best) best = dt;
        }
        printf("resnet%d %s batch %d threads %d: %.1f ms/iter, %.1f ms/image (mean %.1f ms/iter), "
               "arena %.0f MB\n",
               depth, train ? "train" : "eval", N, mcnn_get_threads(), best * 1e3, best * 1e3 / N,
               total * 1e3 / iters, mcnn_resnet_activation_bytes(m) / 1e6);
        fflush(stdout);
        free(x);
        free(logits);
        free(dlogits);
    }
    mcnn_resnet_free(m);
    return 0;
}
